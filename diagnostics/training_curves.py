"""The rules on the training-loss curve: non_finite, divergence, loss_spike, oscillation,
plateau and lr_too_low, with their thresholds (diagnostics.curves lists every rule and its
numbers, and runs them all).

Each rule reads y = log(loss - floor) (see curve_measures) and runs under
np.errstate(all="ignore"): extreme inputs overflow to inf or NaN, which the rules skip.
"""

from __future__ import annotations

import numpy as np

from diagnostics.curve_measures import (
    _as_arrays, _block_median, _curve, _final_level, _initial_level, _loss, _noise_sd, _ratio, _running_median,
    _runs, _slope_and_t, _step, _windows,
)
from diagnostics.findings import Finding

# Running-median window for the smoothed loss: robust to spikes and to single batches.
LEVEL_WINDOW = 51
# fastai's LR finder stops when the smoothed loss passes 4x its best (torch-lr-finder uses 5x).
# The short window lets a blow-up of 6 entries at the very end of a run count.
DIVERGENCE_FACTOR = 4.0
DIVERGENCE_WINDOW = 11
DIVERGENCE_NOISE_SDS = 3.0
# Iglewicz & Hoaglin (1993) call a modified z-score above 3.5 an outlier, in one sample. A curve
# has thousands of points and its noise scale is itself estimated: on simulated healthy curves
# (5-30 % noise) 3.5 flags one entry in 3,000, 5 one in 300,000, 6 none in 1.5 million; 7 leaves
# room for real noise's heavier tails. The 1.25x keeps tiny wiggles of a smooth curve out.
SPIKE_Z = 7.0
SPIKE_MIN_RATIO = 1.25
SPIKE_RECOVERY_POINTS = 250
# Turning points of i.i.d. noise in m values: mean 2(m-2)/3, variance (16m-29)/90 (Kendall,
# "Time-Series", 1973). Gradient descent past its stability limit zigzags: a turn at every step.
OSCILLATION_WINDOW_FRACTION = 0.1
OSCILLATION_MIN_WINDOW = 50
OSCILLATION_MIN_RATE = 0.85
OSCILLATION_Z = 5.0
OSCILLATION_MIN_SWING = 0.1
# A slope is "indistinguishable from zero" when |slope / standard error| < 2 (about 95 %).
SLOPE_T = 2.0
# Plateau windows are 10 % of the run; a flat one must have been able to see a 10 % change, and
# an escape means a later fall to half the plateau. (Our choices; no published rule to cite.)
PLATEAU_WINDOW_FRACTION = 0.1
PLATEAU_MIN_POINTS = 20
PLATEAU_RESOLUTION = 0.1
PLATEAU_ESCAPE_FRACTION = 0.5
# "Far from converged": the loss above the floor has not yet halved from its initial value.
REMAINING_FRACTION = 0.5
# Last-third slope / first-third slope: a few % for a healthy run (fast, then flat), 1 for a
# straight line in log, give or take the noise of two slopes (at t = 4 the ratio wanders 0.5-2).
LR_LOW_MIN_SLOPE_RATIO = 1 / 3
LR_LOW_MIN_POINTS = 30


@np.errstate(all="ignore")
def detect_non_finite(loss, steps=None) -> list[Finding]:
    """The first Inf loss, or the first NaN of the run of NaNs the losses end with (the run died).

    NaN also means "not recorded at this step" (the History convention), and a log written every
    k steps may end between two records; so the final NaN run counts only when it is longer than
    every gap between earlier finite losses.
    """
    loss, steps = _as_arrays(loss, steps)
    finite_at = np.flatnonzero(np.isfinite(loss))
    longest_gap = int((np.diff(finite_at, prepend=-1) - 1).max()) if finite_at.size else 0
    last_finite = int(finite_at[-1]) if finite_at.size else -1
    died = len(loss) - 1 - last_finite > longest_gap
    bad = np.isinf(loss) | (np.isnan(loss) & (np.arange(len(loss)) > last_finite) & died)
    if not bad.any():
        return []
    first = int(np.argmax(bad))
    ending = " and no finite loss follows" if first > last_finite else ""
    return [Finding("non_finite", f"training loss is {loss[first]} at step {_step(steps[first])}{ending}",
                    severity="critical", step=_step(steps[first]),
                    evidence={"value": float(loss[first]), "non_finite_count": len(loss) - finite_at.size})]


@np.errstate(all="ignore")
def detect_divergence(loss, steps=None, *, divergence_factor=DIVERGENCE_FACTOR, divergence_window=DIVERGENCE_WINDOW,
                      divergence_noise_sds=DIVERGENCE_NOISE_SDS, floor=0.0) -> list[Finding]:
    """The smoothed loss ends the run more than `divergence_factor` x its running minimum, and
    more than `divergence_noise_sds` noise standard deviations of log-loss above it.

    level_t = running median of y, best_t = min over s <= t of level_s. Diverged when
    level_t - best_t >= max(log(factor), k * noise sd) at the last entry; reported where that
    excursion began. The noise term matters near a loss of 0, where small batches' losses
    swing by orders of magnitude (a batch of 8 examples: 1e-4 on one step, 1e-1 on the next)
    and a 4x wobble of the running median is noise, not divergence.
    """
    x, y, floor = _curve(loss, steps, floor)
    level = _running_median(y, divergence_window)
    rise_needed = max(np.log(divergence_factor), divergence_noise_sds * _noise_sd(y)) if len(y) else 0.0
    above = level - np.minimum.accumulate(level) >= rise_needed
    if not len(y) or not above[-1]:
        return []
    onset = int(np.flatnonzero(~above)[-1]) + 1  # above[0] is False: level_0 is best_0
    best, ratio = float(level[:onset].min()), _ratio(level[-1] - level[:onset].min())
    return [Finding("divergence",
                    f"loss diverged at step {_step(x[onset])}: smoothed loss {_loss(level[-1], floor):.3g} ends "
                    f"{ratio:.3g}x its running minimum {_loss(best, floor):.3g} (>= {divergence_factor:g}x)",
                    severity="critical", step=_step(x[onset]),
                    evidence={"ratio_to_minimum": ratio, "divergence_factor": divergence_factor,
                              "minimum": _loss(best, floor), "final": _loss(level[-1], floor), "floor": floor})]


@np.errstate(all="ignore")
def detect_spikes(loss, steps=None, *, spike_z=SPIKE_Z, spike_min_ratio=SPIKE_MIN_RATIO,
                  spike_recovery_points=SPIKE_RECOVERY_POINTS, level_window=LEVEL_WINDOW, floor=0.0) -> list[Finding]:
    """Entries far above the running median; one finding per run of consecutive such entries.

    z_t = (y_t - median_t) / sd_t, a modified z-score (Iglewicz & Hoaglin): median_t over the
    `level_window` entries around t; sd_t = median |y_s - y_(s-1)| / (0.6745 sqrt 2) over a block
    of twice that window (differences, because a median filter follows a steep first descent
    exactly and would see no noise there). A spike needs z_t > spike_z, loss_t >= spike_min_ratio
    x the median, and neighbours on both sides (the first and last half-windows are not judged).
    It recovered if the running median gets back to its pre-spike level (within its own noise)
    within `spike_recovery_points` entries; None if the run ends before it does or could.
    """
    x, y, floor = _curve(loss, steps, floor)
    level = _running_median(y, level_window)
    noise = _block_median(np.abs(np.diff(y, prepend=y[:1])), 2 * level_window) / (0.6745 * np.sqrt(2))
    above = y - level
    z = above / np.maximum(noise, 1e-12)
    judged = np.zeros(len(y), dtype=bool)
    judged[level_window // 2:len(y) - level_window // 2] = True
    findings = []
    for start, end in _runs(judged & (z > spike_z) & (above >= np.log(spike_min_ratio))):
        peak = start + int(np.argmax(above[start:end]))
        # Medians of the windows that end just before the spike and that start after it; "back"
        # allows 2 standard errors of a running median (1.2533 noise sd / sqrt(window)).
        half = level_window // 2
        before = level[max(start - 1 - half, 0)] + 2 * 1.2533 * noise[start] / np.sqrt(level_window)
        after = level[end + half:end + half + spike_recovery_points]
        back = np.flatnonzero(after <= before)
        if back.size:
            recovered, outcome = True, f"recovered {_step(x[end + half + back[0]] - x[start])} steps later"
        elif len(after) < spike_recovery_points:
            recovered, outcome = None, "the run ends before recovery can be judged"
        else:
            recovered, outcome = False, f"not recovered {_step(x[end + half - 1 + len(after)] - x[start])} steps later"
        ratio = _ratio(above[peak])
        findings.append(Finding(
            "loss_spike", f"loss spiked at step {_step(x[start])}: {_loss(y[peak], floor):.3g} is {ratio:.3g}x the "
                          f"running median (z = {z[peak]:.3g} > {spike_z:g}); {outcome}",
            severity="info" if recovered else "warning", step=_step(x[start]),
            evidence={"z": float(z[peak]), "spike_z": spike_z, "ratio_to_median": ratio,
                      "spike_min_ratio": spike_min_ratio, "recovered": recovered, "length": end - start}))
    return findings


@np.errstate(all="ignore")
def detect_oscillation(loss, steps=None, *, oscillation_window_fraction=OSCILLATION_WINDOW_FRACTION,
                       oscillation_min_window=OSCILLATION_MIN_WINDOW, oscillation_min_rate=OSCILLATION_MIN_RATE,
                       oscillation_z=OSCILLATION_Z, oscillation_min_swing=OSCILLATION_MIN_SWING,
                       floor=0.0) -> list[Finding]:
    """Consecutive changes keep reversing direction, with large swings (learning rate too high).

    In a window of m entries, d = diff(y) and T = #{t : d_t d_(t+1) < 0} turning points; for
    i.i.d. noise E[T] = 2(m-2)/3 and Var[T] = (16m-29)/90. Fires at the first window with
    T / (m-2) >= min_rate, z = (T - E[T]) / sqrt(Var[T]) >= oscillation_z and
    exp(median |d|) - 1 >= min_swing. A curve shorter than the minimum window is one window.
    """
    x, y, floor = _curve(loss, steps, floor)
    m = min(len(y), max(oscillation_min_window, int(oscillation_window_fraction * len(y))))
    for start in _windows(len(y), m) if m >= 4 else []:
        changes = np.diff(y[start:start + m])
        turns = int(np.sum(changes[:-1] * changes[1:] < 0))
        rate, z = turns / (m - 2), (turns - 2 * (m - 2) / 3) / np.sqrt((16 * m - 29) / 90)
        swing = _ratio(np.median(np.abs(changes))) - 1
        if rate >= oscillation_min_rate and z >= oscillation_z and swing >= oscillation_min_swing:
            return [Finding("oscillation",
                            f"loss oscillates from step {_step(x[start])}: {rate:.0%} of consecutive changes reverse "
                            f"direction (noise: 67%, z = {z:.3g} >= {oscillation_z:g}), median swing {swing:.0%}",
                            step=_step(x[start]),
                            evidence={"turning_rate": rate, "oscillation_min_rate": oscillation_min_rate, "z": float(z),
                                      "oscillation_z": oscillation_z, "median_swing": swing,
                                      "oscillation_min_swing": oscillation_min_swing, "window": m})]
    return []


@np.errstate(all="ignore")
def detect_plateau(loss, steps=None, *, plateau_window_fraction=PLATEAU_WINDOW_FRACTION,
                   plateau_min_points=PLATEAU_MIN_POINTS, slope_t=SLOPE_T, plateau_resolution=PLATEAU_RESOLUTION,
                   remaining_fraction=REMAINING_FRACTION, plateau_escape_fraction=PLATEAU_ESCAPE_FRACTION,
                   level_window=LEVEL_WINDOW, initial_loss=None, floor=0.0) -> list[Finding]:
    """A window where the loss does not move while it is far above the best it can reach.

    Flat: the Theil-Sen slope b of y has |t| < slope_t (t = b / se, se = noise sd / sqrt(sum
    (x - mean x)^2)), and the window is long or quiet enough to have seen a change:
    slope_t se (x range) <= log(1 + resolution); too noisy a window cannot tell a slow tail from
    a plateau. The best achievable loss is unknown, so "far above it" is either: the loss above
    the floor is still >= remaining_fraction of the initial loss, or the run's running median
    later falls to <= escape_fraction of the window's median (it escaped: a plateau, not
    convergence). The slow tail of a healthy run is neither. Reported at the first such window.
    """
    x, y, floor = _curve(loss, steps, floor)
    m = max(plateau_min_points, int(plateau_window_fraction * len(y)))
    if len(y) < max(m, 3):
        return []
    initial = _initial_level(y, initial_loss, floor)
    # best_later[i]: the lowest running median from entry i on (+inf past the end).
    best_later = np.append(np.minimum.accumulate(_running_median(y, level_window)[::-1])[::-1], np.inf)
    for start in _windows(len(y), m):
        window_x, window_y = x[start:start + m], y[start:start + m]
        slope, t, standard_error = _slope_and_t(window_x, window_y)
        span, level = float(window_x.max() - window_x.min()), float(np.median(window_y))
        of_initial, later = _ratio(level - initial), _ratio(best_later[start + m] - level)
        flat = abs(t) < slope_t and slope_t * standard_error * span <= np.log1p(plateau_resolution)
        if not flat or (of_initial < remaining_fraction and later > plateau_escape_fraction):
            continue
        why = (f"loss {_loss(level, floor):.3g} is {of_initial:.0%} of its initial value" if of_initial >= remaining_fraction
               else f"loss {_loss(level, floor):.3g} later falls to {later:.0%} of that: it escaped")
        return [Finding("plateau",
                        f"loss plateaued at step {_step(x[start])}: slope of log-loss {slope:.2g}/step over "
                        f"{_step(span)} steps, within noise (|t| = {abs(t):.2g} < {slope_t:g}); {why}",
                        step=_step(x[start]),
                        evidence={"slope": slope, "t": t, "slope_t": slope_t, "window_steps": span,
                                  "loss": _loss(level, floor), "fraction_of_initial": of_initial,
                                  "remaining_fraction": remaining_fraction, "later_fraction": later,
                                  "plateau_escape_fraction": plateau_escape_fraction, "floor": floor})]
    return []


@np.errstate(all="ignore")
def detect_lr_too_low(loss, steps=None, *, slope_t=SLOPE_T, lr_low_min_slope_ratio=LR_LOW_MIN_SLOPE_RATIO,
                      lr_low_min_points=LR_LOW_MIN_POINTS, remaining_fraction=REMAINING_FRACTION,
                      initial_loss=None, floor=0.0) -> list[Finding]:
    """A steady slow decline from the start that never bends and leaves the loss far from done.

    b1, b3: Theil-Sen slopes of y in the first and last thirds. Fires when both have
    t <= -slope_t (still falling at the end), ratio <= b3 / b1 <= 1 / ratio (log-loss falls
    along a straight line; a healthy run drops fast and then flattens, so b3 << b1), and the
    final loss above the floor is >= remaining_fraction of the initial loss.
    """
    x, y, floor = _curve(loss, steps, floor)
    if len(y) < max(lr_low_min_points, 9):
        return []
    third = len(y) // 3
    first_slope, first_t, _ = _slope_and_t(x[:third], y[:third])
    last_slope, last_t, _ = _slope_and_t(x[-third:], y[-third:])
    ratio = last_slope / first_slope if first_slope < 0 else float("nan")
    of_initial = _ratio(_final_level(y) - _initial_level(y, initial_loss, floor))
    if not (first_t <= -slope_t and last_t <= -slope_t and of_initial >= remaining_fraction
            and lr_low_min_slope_ratio <= ratio <= 1 / lr_low_min_slope_ratio):
        return []
    return [Finding("lr_too_low",
                    f"loss falls slowly and steadily from step {_step(x[0])}: slope of log-loss {first_slope:.2g}/step "
                    f"in the first third, {last_slope:.2g}/step in the last (ratio {ratio:.2g}: it never bends); "
                    f"loss {_loss(_final_level(y), floor):.3g} is still {of_initial:.0%} of its initial value",
                    step=_step(x[0]),
                    evidence={"first_slope": first_slope, "first_t": first_t, "last_slope": last_slope,
                              "last_t": last_t, "slope_ratio": ratio, "lr_low_min_slope_ratio": lr_low_min_slope_ratio,
                              "fraction_of_initial": of_initial, "remaining_fraction": remaining_fraction,
                              "floor": floor})]
