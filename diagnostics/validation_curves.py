"""The rules that read the validation curve: underfitting (the training loss stays high, or
training and validation are both high and close), overfitting and double_descent, with their
thresholds (diagnostics.curves lists every rule and its numbers, and runs them all).

Each rule reads y = log(loss - floor) (see curve_measures) and runs under
np.errstate(all="ignore"): extreme inputs overflow to inf or NaN, which the rules skip.
A NaN validation loss means "not evaluated at this step".
"""

from __future__ import annotations

import numpy as np

from diagnostics.curve_measures import (
    _INITIAL_POINTS, _as_arrays, _curve, _final_level, _floor_for, _initial_level, _log_curve, _loss, _noise_sd,
    _ratio, _slope_and_t, _step, smooth_zero_lag,
)
from diagnostics.findings import Finding
from diagnostics.training_curves import REMAINING_FRACTION, SLOPE_T

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
