"""Loss-curve analysis: read a training (and validation) loss curve and say what went wrong.

Every rule reads y = log(loss - floor), with floor = 0 unless given (cross-entropy and MSE
cannot go below 0). Differences of y are ratios of losses, so no rule changes its answer when
the loss is multiplied by a positive constant. If some loss is at or below the floor (a negative
log-likelihood, a loss that reaches exactly 0), the floor is moved to 10 % of the curve's range
below its lowest value. Rules skip non-finite entries (a NaN validation loss means "not
evaluated at this step"). Windows count entries; steps are reported in the units of `steps`.
The initial loss is `initial_loss` if given, else the median of the first 5 entries; the final
loss is the median of the last 10 %.

The rules and their numbers (each constant can be overridden by keyword, in lower case):

non_finite     the first Inf training loss, or the first NaN of a final NaN run longer than any
               earlier gap between finite losses (a sparse log has gaps too).
divergence     the running median (DIVERGENCE_WINDOW = 11
DIVERGENCE_NOISE_SDS = 3.0) ends the run more than
               DIVERGENCE_FACTOR = 4x its running minimum, and more than DIVERGENCE_NOISE_SDS = 3
               noise sd of log-loss above it; reported where it last crossed that level.
loss_spike     (y - running median) / noise sd > SPIKE_Z = 7 and loss >= SPIKE_MIN_RATIO = 1.25x
               the running median (LEVEL_WINDOW = 51); recovered if the running median is back at
               its pre-spike level within SPIKE_RECOVERY_POINTS = 250 entries.
oscillation    in a window (10 % of the run, at least 50 entries), consecutive changes reverse
               direction at a rate >= OSCILLATION_MIN_RATE = 0.85 (noise: 2/3), turning-point
               z >= OSCILLATION_Z = 5, median swing >= OSCILLATION_MIN_SWING = 10 %.
plateau        in a window (10 % of the run, at least 20 entries) the Theil-Sen slope of y has
               |t| < SLOPE_T = 2, the window could have seen a PLATEAU_RESOLUTION = 10 % change,
               and the loss is far above its best: still >= REMAINING_FRACTION = 50 % of the
               initial loss, or later falling to <= PLATEAU_ESCAPE_FRACTION = 50 % of the plateau.
lr_too_low     the Theil-Sen slopes of y in the first and last thirds both have t <= -2 and are
               within a factor 1 / LR_LOW_MIN_SLOPE_RATIO = 3 of each other (it never bends), and
               the loss ends >= 50 % of the initial loss.
underfitting   the final training loss is >= UNDERFIT_NEAR_INITIAL = 80 % of the initial loss; or
               >= 50 % of it with the final validation loss within UNDERFIT_MAX_GAP = 10 % of it.
overfitting    the smoothed validation loss stays >= OVERFIT_MIN_RISE = 5 % (and 2 noise sd)
               above its minimum for the last OVERFIT_SUSTAINED = 3 evaluations while the training
               loss keeps falling (t <= -2); reported at the best evaluation before (where to stop).
double_descent the smoothed validation loss reaches a minimum, rises >= DOUBLE_DESCENT_MIN_RISE =
               10 % above it, then falls >= DOUBLE_DESCENT_MIN_GAIN = 5 % below it; reported at
               the peak, where the second descent starts.

analyze_curves judges a diverged run by the part before it diverged, and does not call a run
both lr_too_low and plateau: a slow steady decline looks flat in any one window.
"""

from __future__ import annotations

import inspect

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from diagnostics.findings import Finding

# Estimation settings, not thresholds (so not overridable): the shift of the floor below the
# lowest loss; the initial loss is the median of the first 5 entries (one lucky batch does not set it).
_LOG_SHIFT_FRACTION = 0.1
_INITIAL_POINTS = 5
# The final loss is the median of this fraction of the run (at least _INITIAL_POINTS entries).
_FINAL_FRACTION = 0.1
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
# Theil-Sen over all pairs costs m^2 / 2 slopes; longer series are first summarised by the
# medians of this many consecutive blocks (less noise per point, same trend).
_THEIL_SEN_MAX_POINTS = 200
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
# Underfitting ends within 20 % of where it started, or with train and validation both high and
# within 10 % of each other (the "high bias" reading of the two curves). Our choices.
UNDERFIT_NEAR_INITIAL = 0.8
UNDERFIT_MAX_GAP = 0.1
# Prechelt (1998), "Early stopping - but when?": stop once validation is 5 % above its best (GL_5).
OVERFIT_MIN_RISE = 0.05
OVERFIT_SUSTAINED = 3
# Validation rises and falls must also exceed this many noise standard deviations.
VALIDATION_NOISE_SD = 2.0
# Validation smoothing: neighbours weigh 0.5, 0.25, ... (about 3 evaluations).
VALIDATION_BETA = 0.5
# Double descent (Nakkiran et al., 2019) in one run: a rise of 10 %, twice the GL_5 margin above,
# and a second minimum 5 % below the first.
DOUBLE_DESCENT_MIN_RISE = 0.1
DOUBLE_DESCENT_MIN_GAIN = 0.05


# Every public function runs under np.errstate(all="ignore"): extreme inputs (1e308, 5e-324)
# overflow to inf or NaN, which the rules skip as missing; there is nothing to warn about.


@np.errstate(all="ignore")
def smooth_zero_lag(values, beta: float) -> np.ndarray:
    """Exponential smoothing that looks both ways, so peaks and minima stay where they are.

    s_t = sum_j beta^|t-j| v_j / sum_j beta^|t-j|, over the finite v_j. A causal EMA
    s_t = beta s_(t-1) + (1 - beta) v_t lags by about beta / (1 - beta) entries; weighing the
    past and the future alike cancels the lag. Dividing by the sum of the weights actually used is
    the bias correction (as in Adam): the ends are not pulled toward the zero the sums start from.
    Both sums run as recursions A_t = beta A_(t-1) + v_t, forward and backward: O(n).
    Within about 1 / (1 - beta) entries of either end only one side is seen, so a peak there
    drifts toward the end; further in, the weights are symmetric and nothing moves.
    Non-finite values get weight 0; where no finite value has weight left, the result is NaN.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"smooth_zero_lag: beta must be in [0, 1), got {beta}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    weight = np.isfinite(values).astype(np.float64)
    weighted = np.where(weight > 0, values, 0.0)
    sums, weights = np.zeros((2, len(values))), np.zeros((2, len(values)))
    for direction, order in enumerate((range(len(values)), reversed(range(len(values))))):
        total, total_weight = 0.0, 0.0
        for t in order:
            total, total_weight = beta * total + weighted[t], beta * total_weight + weight[t]
            sums[direction, t], weights[direction, t] = total, total_weight
    # Both directions include v_t itself; count it once.
    numerator, denominator = sums.sum(axis=0) - weighted, weights.sum(axis=0) - weight
    return np.where(denominator > 0, numerator / denominator, np.nan)


@np.errstate(all="ignore")
def theil_sen_slope(x, y) -> float:
    """Median of the pairwise slopes (y_j - y_i) / (x_j - x_i) (Theil 1950, Sen 1968).

    A robust straight-line slope: up to 29 % of the points can be arbitrarily wrong (spikes)
    without carrying it away, and for Gaussian noise it is nearly as precise as least squares.
    More than _THEIL_SEN_MAX_POINTS points are summarised by the medians of that many blocks.
    NaN when fewer than two finite points have distinct x.
    """
    x, y = _thin(*_finite_pairs(x, y))
    first, second = np.triu_indices(len(x), k=1)
    run = x[second] - x[first]
    slopes = (y[second] - y[first])[run != 0] / run[run != 0]
    return float(np.median(slopes)) if slopes.size else float("nan")


# ---------------------------------------------------------------- shared measurements


def _finite_pairs(x, y):
    x, y = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _thin(x, y):
    """At most _THEIL_SEN_MAX_POINTS points: the medians of as many consecutive blocks."""
    if len(x) <= _THEIL_SEN_MAX_POINTS:
        return x, y
    size = -(-len(x) // _THEIL_SEN_MAX_POINTS)  # entries per block, rounded up
    padded = np.full((2, size * -(-len(x) // size)), np.nan)  # the last block is padded with NaN
    padded[:, :len(x)] = x, y
    return np.nanmedian(padded.reshape(2, -1, size), axis=2)


def _as_arrays(loss, steps):
    loss = np.asarray(loss, dtype=np.float64).reshape(-1)
    steps = np.arange(len(loss), dtype=np.float64) if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    if len(steps) != len(loss):
        raise ValueError(f"curves: {len(steps)} steps for {len(loss)} losses; pass one step per loss")
    return loss, steps


def _floor_for(curves, floor) -> float:
    """`floor`, or, when some loss is at or below it, _LOG_SHIFT_FRACTION of the range lower."""
    finite = np.concatenate([curve[np.isfinite(curve)] for curve in curves])
    if finite.size == 0 or finite.min() > floor:
        return float(floor)
    lowest, span = float(finite.min()), float(finite.max() - finite.min())
    return lowest - _LOG_SHIFT_FRACTION * (span if 0 < span < np.inf else max(abs(lowest), 1.0))


def _log_curve(loss, steps, floor):
    """(steps, log(loss - floor)) at the finite entries: the curve every rule reads."""
    return _finite_pairs(steps, np.log(loss - floor))


def _curve(loss, steps, floor):
    """The steps, y = log(loss - floor) and the floor used, for a rule that reads one curve."""
    loss, steps = _as_arrays(loss, steps)
    floor = _floor_for([loss], floor)
    return *_log_curve(loss, steps, floor), floor


def _noise_sd(y) -> float:
    """Noise sd of a series, robustly: 1.4826 MAD of the first differences / sqrt(2).

    Differencing removes a slow trend; the difference of two noisy values has variance 2 sd^2.
    """
    differences = np.diff(y)
    if differences.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(differences - np.median(differences))) / np.sqrt(2))


def _slope_and_t(x, y):
    """Theil-Sen slope b of y over x, t = b / se with se = noise sd / sqrt(sum (x - mean x)^2), and se."""
    x, y = _thin(x, y)
    slope = theil_sen_slope(x, y)
    standard_error = _noise_sd(y) / np.sqrt(np.sum((x - x.mean()) ** 2)) if len(x) > 1 else np.nan
    t = slope / standard_error if standard_error > 0 else (0.0 if slope == 0 else np.copysign(np.inf, slope))
    return slope, float(t), float(standard_error)


def _running_median(y, window):
    """Median of the `window` entries centred on each point; near the ends, of the first or last
    `window` entries (padding would let one end value set the median)."""
    if len(y) <= window:
        return np.full(len(y), np.median(y) if len(y) else np.nan)
    medians = np.median(sliding_window_view(y, window), axis=1)
    return medians[np.clip(np.arange(len(y)) - window // 2, 0, len(medians) - 1)]


def _block_median(values, block):
    """Each entry gets the median of its block: consecutive blocks of at least `block` entries."""
    blocks = np.array_split(values, max(len(values) // block, 1))
    return np.concatenate([np.full(len(part), np.median(part) if len(part) else np.nan) for part in blocks])


def _initial_level(y, initial_loss, floor) -> float:
    if initial_loss is not None and initial_loss > floor:
        return float(np.log(initial_loss - floor))
    return float(np.median(y[:_INITIAL_POINTS]))


def _final_level(y) -> float:
    return float(np.median(y[-max(_INITIAL_POINTS, int(_FINAL_FRACTION * len(y))):]))


def _loss(level, floor) -> float:
    """Back from y = log(loss - floor) to the loss."""
    return float(np.exp(level) + floor)


def _ratio(log_difference) -> float:
    return float(np.exp(log_difference))


def _step(value):
    return int(value) if float(value).is_integer() else float(value)


def _windows(n, window):
    """Start indices of windows of `window` entries overlapping by half and covering all n."""
    if window < 1 or n < window:
        return []
    starts = list(range(0, n - window + 1, max(window // 2, 1)))
    return starts if starts[-1] == n - window else starts + [n - window]


def _runs(mask):
    """(start, end) of each run of consecutive True entries, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


# ---------------------------------------------------------------- the rules


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


@np.errstate(all="ignore")
def detect_underfitting(train_loss, val_loss=None, steps=None, *, underfit_near_initial=UNDERFIT_NEAR_INITIAL,
                        remaining_fraction=REMAINING_FRACTION, underfit_max_gap=UNDERFIT_MAX_GAP,
                        validation_beta=VALIDATION_BETA, initial_loss=None, floor=0.0) -> list[Finding]:
    """The model does not fit even the training data; a property of the whole run (step: its start).

    Either the final training loss above the floor is >= near_initial of the initial loss; or it
    is >= remaining_fraction of it and the final smoothed validation loss differs from it by at
    most max_gap (both high and close: more capacity or training, not regularisation, helps).
    """
    train, steps = _as_arrays(train_loss, steps)
    val = np.full(len(train), np.nan) if val_loss is None else _as_arrays(val_loss, steps)[0]
    floor = _floor_for([train, val], floor)
    x, y = _log_curve(train, steps, floor)
    val_y = _log_curve(val, steps, floor)[1]
    if len(y) < 2 * _INITIAL_POINTS:
        return []
    final = _final_level(y)
    of_initial = _ratio(final - _initial_level(y, initial_loss, floor))
    gap = _ratio(abs(smooth_zero_lag(val_y, validation_beta)[-1] - final)) - 1 if len(val_y) else np.nan
    if of_initial >= underfit_near_initial:
        why = f"(>= {underfit_near_initial:.0%}): it barely moved"
    elif of_initial >= remaining_fraction and gap <= underfit_max_gap:
        why = f"and validation loss is within {gap:.0%} of it: both high and close"
    else:
        return []
    return [Finding("underfitting",
                    f"training loss ends at {_loss(final, floor):.3g}, {of_initial:.0%} of its initial value {why}",
                    step=_step(x[0]),
                    evidence={"final": _loss(final, floor), "fraction_of_initial": of_initial,
                              "underfit_near_initial": underfit_near_initial, "remaining_fraction": remaining_fraction,
                              "validation_gap": float(gap), "underfit_max_gap": underfit_max_gap, "floor": floor})]


def _meaningful(val_y, fraction, noise_sds) -> float:
    """A change of y that is both >= log(1 + fraction) and >= noise_sds noise sd of val_y."""
    return max(float(np.log1p(fraction)), noise_sds * _noise_sd(val_y))


@np.errstate(all="ignore")
def detect_overfitting(train_loss, val_loss, steps=None, *, overfit_min_rise=OVERFIT_MIN_RISE,
                       overfit_sustained=OVERFIT_SUSTAINED, validation_noise_sd=VALIDATION_NOISE_SD,
                       validation_beta=VALIDATION_BETA, slope_t=SLOPE_T, floor=0.0) -> list[Finding]:
    """Validation loss passes its minimum and keeps rising while training loss keeps falling.

    v = zero-lag smoothed validation y, so one lucky or unlucky evaluation decides nothing.
    Fires when the last `sustained` values of v are all >= min v + max(log(1 + min_rise),
    noise_sd x validation noise sd), and the training y from the stop step on has Theil-Sen
    t <= -slope_t. The stop step is the lowest evaluation before that final rise: the one early
    stopping would have kept.
    """
    train, steps = _as_arrays(train_loss, steps)
    val = _as_arrays(val_loss, steps)[0]
    floor = _floor_for([train, val], floor)
    x, y = _log_curve(train, steps, floor)
    val_x, val_y = _log_curve(val, steps, floor)
    if len(val_y) < overfit_sustained + 2:
        return []
    smooth = smooth_zero_lag(val_y, validation_beta)
    needed = _meaningful(val_y, overfit_min_rise, validation_noise_sd)
    risen = smooth - smooth.min() >= needed
    rising_from = int(np.flatnonzero(~risen)[-1]) + 1  # the minimum itself has not risen
    if len(val_y) - rising_from < overfit_sustained:
        return []
    best = int(np.argmin(val_y[:rising_from]))
    after = x >= val_x[best]
    t = _slope_and_t(x[after], y[after])[1]
    if not t <= -slope_t:
        return []
    stop, rise = _step(val_x[best]), _ratio(smooth[-1] - smooth.min()) - 1
    return [Finding("overfitting",
                    f"validation loss bottomed out at {_loss(val_y[best], floor):.3g} at step {stop} and has risen "
                    f"{rise:.0%} since (>= {_ratio(needed) - 1:.0%} over the last {overfit_sustained} evaluations) "
                    f"while training loss kept falling (t = {t:.3g}); stop at step {stop}",
                    step=stop,
                    evidence={"stop_step": stop, "val_minimum": _loss(val_y[best], floor), "rise": rise,
                              "needed_rise": _ratio(needed) - 1, "overfit_min_rise": overfit_min_rise,
                              "train_t": t, "slope_t": slope_t})]


@np.errstate(all="ignore")
def detect_double_descent(val_loss, steps=None, *, double_descent_min_rise=DOUBLE_DESCENT_MIN_RISE,
                          double_descent_min_gain=DOUBLE_DESCENT_MIN_GAIN, validation_noise_sd=VALIDATION_NOISE_SD,
                          validation_beta=VALIDATION_BETA, floor=0.0) -> list[Finding]:
    """Validation loss falls, rises by a margin, then falls to a new, lower minimum.

    v = zero-lag smoothed validation y. The rise is the first v_t >= min(v_<=t) +
    max(log(1 + min_rise), noise); the first minimum the lowest v before it; the second minimum
    the lowest v after it, which must lie below the first by max(log(1 + min_gain), noise).
    Reported at the peak between the two minima, where the second descent starts.
    """
    val_x, val_y, floor = _curve(val_loss, steps, floor)
    if len(val_y) < 5:
        return []
    smooth = smooth_zero_lag(val_y, validation_beta)
    needed_rise = _meaningful(val_y, double_descent_min_rise, validation_noise_sd)
    risen = np.flatnonzero(smooth - np.minimum.accumulate(smooth) >= needed_rise)
    if not risen.size:
        return []
    first = int(np.argmin(smooth[:risen[0]]))
    second = int(risen[0] + np.argmin(smooth[risen[0]:]))
    if smooth[first] - smooth[second] < _meaningful(val_y, double_descent_min_gain, validation_noise_sd):
        return []
    peak = int(first + np.argmax(smooth[first:second]))
    rise, gain = _ratio(smooth[peak] - smooth[first]) - 1, 1 - _ratio(smooth[second] - smooth[first])
    return [Finding("double_descent",
                    f"validation loss fell to {_loss(smooth[first], floor):.3g} at step {_step(val_x[first])}, rose "
                    f"{rise:.0%} by step {_step(val_x[peak])}, then fell to a new minimum {_loss(smooth[second], floor):.3g} "
                    f"at step {_step(val_x[second])}: stopping at the first minimum would have stopped too soon",
                    severity="warning", step=_step(val_x[peak]),
                    evidence={"first_minimum_step": _step(val_x[first]), "peak_step": _step(val_x[peak]),
                              "second_minimum_step": _step(val_x[second]), "rise": rise, "gain": gain,
                              "double_descent_min_rise": double_descent_min_rise,
                              "double_descent_min_gain": double_descent_min_gain})]


# ---------------------------------------------------------------- all rules at once

_RULES = (detect_divergence, detect_spikes, detect_oscillation, detect_plateau, detect_lr_too_low,
          detect_underfitting, detect_overfitting, detect_double_descent)
_CURVES = ("loss", "train_loss", "val_loss", "steps")


@np.errstate(all="ignore")
def analyze_curves(train_loss, val_loss=None, steps=None, **thresholds) -> list[Finding]:
    """Every rule above on one run; findings ordered by the step they start at ([] if healthy).

    `steps` gives the step of each entry (default 0, 1, ...); `val_loss` is NaN where validation
    did not run. Keywords are the lower-case names of the constants (`spike_z=8`), `floor` (the
    lowest loss the model could reach; default 0) and `initial_loss` (the expected loss of an
    untrained model, e.g. ln(num_classes); default the median of the first 5 entries).
    """
    known = {name for rule in _RULES for name in inspect.signature(rule).parameters} - set(_CURVES)
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise ValueError(f"analyze_curves: unknown keyword {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    train, steps = _as_arrays(train_loss, steps)
    val = None if val_loss is None else _as_arrays(val_loss, steps)[0]

    def run(rule, *curves):
        accepted = inspect.signature(rule).parameters
        return rule(*curves, **{name: value for name, value in thresholds.items() if name in accepted})

    findings = detect_non_finite(train, steps)
    divergence = run(detect_divergence, train, steps)
    if divergence:  # judge the rest by the part of the run before it diverged
        before = steps < divergence[0].step
        train, steps, val = train[before], steps[before], (None if val is None else val[before])
    lr_too_low = run(detect_lr_too_low, train, steps)
    plateau = [] if lr_too_low else run(detect_plateau, train, steps)
    findings += divergence + run(detect_spikes, train, steps) + run(detect_oscillation, train, steps)
    findings += plateau + lr_too_low + run(detect_underfitting, train, val, steps)
    if val is not None:
        findings += run(detect_overfitting, train, val, steps) + run(detect_double_descent, val, steps)
    return sorted(findings, key=lambda finding: finding.step)
