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

The rules live in training_curves.py (non_finite to lr_too_low) and validation_curves.py
(underfitting, overfitting, double_descent), next to their constants; the measurements they
share (smooth_zero_lag, theil_sen_slope, noise, running medians) in curve_measures.py. Every
rule and constant is importable from here.
"""

from __future__ import annotations

import inspect

import numpy as np

from diagnostics.curve_measures import _as_arrays, smooth_zero_lag, theil_sen_slope
from diagnostics.findings import Finding
from diagnostics.training_curves import (
    DIVERGENCE_FACTOR, DIVERGENCE_NOISE_SDS, DIVERGENCE_WINDOW, LEVEL_WINDOW, LR_LOW_MIN_POINTS,
    LR_LOW_MIN_SLOPE_RATIO, OSCILLATION_MIN_RATE, OSCILLATION_MIN_SWING, OSCILLATION_MIN_WINDOW,
    OSCILLATION_WINDOW_FRACTION, OSCILLATION_Z, PLATEAU_ESCAPE_FRACTION, PLATEAU_MIN_POINTS, PLATEAU_RESOLUTION,
    PLATEAU_WINDOW_FRACTION, REMAINING_FRACTION, SLOPE_T, SPIKE_MIN_RATIO, SPIKE_RECOVERY_POINTS, SPIKE_Z,
    detect_divergence, detect_lr_too_low, detect_non_finite, detect_oscillation, detect_plateau, detect_spikes,
)
from diagnostics.validation_curves import (
    DOUBLE_DESCENT_MIN_GAIN, DOUBLE_DESCENT_MIN_RISE, OVERFIT_MIN_RISE, OVERFIT_SUSTAINED, UNDERFIT_MAX_GAP,
    UNDERFIT_NEAR_INITIAL, VALIDATION_BETA, VALIDATION_NOISE_SD, detect_double_descent, detect_overfitting,
    detect_underfitting,
)

# Everything other modules read from here; the doctor takes the thresholds from the module's
# UPPER_CASE names, so every constant is imported above.
__all__ = [
    "analyze_curves", "smooth_zero_lag", "theil_sen_slope",
    "detect_non_finite", "detect_divergence", "detect_spikes", "detect_oscillation", "detect_plateau",
    "detect_lr_too_low", "detect_underfitting", "detect_overfitting", "detect_double_descent",
    "LEVEL_WINDOW", "DIVERGENCE_FACTOR", "DIVERGENCE_WINDOW", "DIVERGENCE_NOISE_SDS", "SPIKE_Z", "SPIKE_MIN_RATIO",
    "SPIKE_RECOVERY_POINTS", "OSCILLATION_WINDOW_FRACTION", "OSCILLATION_MIN_WINDOW", "OSCILLATION_MIN_RATE",
    "OSCILLATION_Z", "OSCILLATION_MIN_SWING", "SLOPE_T", "PLATEAU_WINDOW_FRACTION", "PLATEAU_MIN_POINTS",
    "PLATEAU_RESOLUTION", "PLATEAU_ESCAPE_FRACTION", "REMAINING_FRACTION", "LR_LOW_MIN_SLOPE_RATIO",
    "LR_LOW_MIN_POINTS", "UNDERFIT_NEAR_INITIAL", "UNDERFIT_MAX_GAP", "OVERFIT_MIN_RISE", "OVERFIT_SUSTAINED",
    "VALIDATION_NOISE_SD", "VALIDATION_BETA", "DOUBLE_DESCENT_MIN_RISE", "DOUBLE_DESCENT_MIN_GAIN",
]


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
