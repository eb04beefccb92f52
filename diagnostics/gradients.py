"""Gradient-health detectors: vanishing, exploding, non-finite, and the update-to-weight ratio.

Pure functions of a History (see history.py for the columns). Every rule reads recorded
arrays, compares them with a named threshold, and returns Findings that carry the numbers.
A condition must hold on PERSISTENCE consecutive recorded steps (all of them, for shorter
runs), so one noisy step does not fire a rule. The rules:

vanishing_gradients (not while the loss sits below 5 % of its initial value, CONVERGED_FRACTION:
                    tiny gradients at a minimum are convergence)
    a layer's mean |g| < 1e-7 ................... VANISHING_MEAN_ABS (SageMaker Debugger's
                                                  VanishingGradient rule threshold)
    ||g_first layer|| / ||g_last layer|| < 1e-3 . VANISHING_RATIO (AUTOTRAINER, Zhang et al.
                                                  ICSE 2021: gradients shrink toward the input)
exploding_gradients
    global ||g|| > 100 .......................... EXPLODING_NORM (the seeds' threshold), or any
                                                  NaN/Inf gradient norm (non_finite, below)
    ||g_first layer|| / ||g_last layer|| > 70 ... EXPLODING_RATIO (AUTOTRAINER)
    ||g|| grows exponentially: its log rises by more than ln(10) over GROWTH_WINDOW steps with
    a robust (Theil-Sen) slope and most steps going up, to above its starting level, while
    the loss does not fall by half (GROWTH_LOSS_FALL; a saddle escape grows the gradient too)
non_finite
    any NaN or Inf in a gradient
update_ratio
    ||theta_t - theta_{t-1}|| / ||theta_{t-1}|| of a layer outside [1e-4, 1e-2] over the recent
    steps: CS231n's rule of thumb puts a healthy ratio near 1e-3; far below, that layer's
    learning rate is too low, far above, too high. A rough rule, so a note (severity info)
    within 10x of the band and a warning only beyond it.
"""

from __future__ import annotations

import numpy as np

from diagnostics.curves import theil_sen_slope
from diagnostics.findings import Finding, accepted_thresholds
from diagnostics.stats import first_sustained

VANISHING_MEAN_ABS = 1e-7
VANISHING_RATIO = 1e-3
EXPLODING_NORM = 100.0
EXPLODING_RATIO = 70.0
GROWTH_WINDOW = 20
GROWTH_FACTOR = 10.0
GROWTH_RISING_FRACTION = 0.7
CONVERGED_FRACTION = 0.05
UPDATE_RATIO_LOW = 1e-4
UPDATE_RATIO_HIGH = 1e-2
RECENT_STEPS = 50
UPDATE_RATIO_MIN_STEPS = 20
GROWTH_LOSS_FALL = 0.5
PERSISTENCE = 5


def weight_layers(history, statistic: str = "grad_norm") -> dict[str, np.ndarray]:
    """Per-layer columns of `statistic` restricted to weights (names ending in 'weight') when
    there are any: biases have their own, smaller scale and would blur layer comparisons."""
    layers = history.layers(statistic)
    weights = {name: values for name, values in layers.items() if name.endswith("weight")}
    return weights or layers


def first_to_last_ratio(history) -> tuple[np.ndarray, str, str] | None:
    """Per step, ||g|| of the first weight over ||g|| of the last (layers in recording order,
    i.e. from input to output), with the two names; None with fewer than two layers."""
    layers = weight_layers(history)
    if len(layers) < 2:
        return None
    names = list(layers)
    first, last = layers[names[0]], layers[names[-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / last
    return ratio, names[0], names[-1]


def loss_converged(history, index: int, converged_fraction: float) -> bool:
    """True when the training loss at row `index` is below `converged_fraction` of its initial
    value (the median of the first PERSISTENCE rows): tiny gradients there mean the model has
    converged, not that gradients vanish."""
    loss = history.get("loss")
    if loss is None or not len(loss):
        return False
    initial = loss[:PERSISTENCE][np.isfinite(loss[:PERSISTENCE])]
    later = loss[index:][np.isfinite(loss[index:])]
    if not initial.size or not later.size or np.median(initial) <= 0:
        return False
    return float(np.median(later[:PERSISTENCE])) < converged_fraction * float(np.median(initial))


def sustained_layer_ratio(history, holds, persistence: int):
    """(row, median ratio since, first layer, last layer) for the first row from which
    `holds(first/last gradient-norm ratio)` is true for `persistence` rows; None if never."""
    ratio = first_to_last_ratio(history)
    if ratio is None:
        return None
    values, first, last = ratio
    with np.errstate(invalid="ignore"):
        index = first_sustained(np.isfinite(values) & holds(values), persistence)
    if index is None:
        return None
    return index, float(np.nanmedian(values[index:])), first, last


def detect_vanishing_gradients(history, *, vanishing_mean_abs: float = VANISHING_MEAN_ABS,
                               vanishing_ratio: float = VANISHING_RATIO,
                               converged_fraction: float = CONVERGED_FRACTION,
                               persistence: int = PERSISTENCE) -> list[Finding]:
    """Layers whose mean |g| stays below `vanishing_mean_abs`, and a first/last layer gradient
    norm ratio that stays below `vanishing_ratio` (gradients fading toward the input)."""
    findings = []
    small_layers = []
    for name, values in weight_layers(history, "grad_mean_abs").items():
        index = first_sustained(np.isfinite(values) & (values < vanishing_mean_abs), persistence)
        if index is not None and not loss_converged(history, index, converged_fraction):
            small_layers.append((name, index, float(np.nanmedian(values[index:]))))
    if small_layers:
        names = name_list([name for name, _, _ in small_layers])
        first_index = min(index for _, index, _ in small_layers)
        worst = min(value for _, _, value in small_layers)
        findings.append(Finding(
            "vanishing_gradients",
            f"{names}: mean |grad| {worst:.1e} < "
            f"{vanishing_mean_abs:.0e} (vanishing)",
            severity="critical", step=history.step_at(first_index), layer=small_layers[0][0],
            evidence={"layers": [name for name, _, _ in small_layers], "mean_abs": worst,
                      "threshold": vanishing_mean_abs},
        ))
    sustained = sustained_layer_ratio(history, lambda ratio: ratio < vanishing_ratio, persistence)
    if sustained is not None:
        index, median, first, last = sustained
        if not loss_converged(history, index, converged_fraction):
            findings.append(Finding(
                "vanishing_gradients",
                f"gradient norm of {first} is {median:.1e} x that of {last} (< {vanishing_ratio:.0e}): "
                "gradients vanish on the way back to the input",
                severity="critical", step=history.step_at(index), layer=first,
                evidence={"first_layer": first, "last_layer": last, "ratio": median, "threshold": vanishing_ratio},
            ))
    return findings


def detect_non_finite_gradients(history) -> list[Finding]:
    """The first step at which any layer's gradient holds NaN or Inf, naming those layers."""
    bad_layers, first_index = [], None
    for name, counts in history.layers("grad_nonfinite").items():
        hits = np.flatnonzero(np.nan_to_num(counts) > 0)
        if hits.size:
            bad_layers.append(name)
            first_index = hits[0] if first_index is None else min(first_index, hits[0])
    global_norm = history.get("grad_norm")
    if first_index is None and global_norm is not None:
        hits = np.flatnonzero(np.isinf(global_norm))
        if hits.size:
            first_index = hits[0]
    if first_index is None:
        return []
    where = name_list(bad_layers) if bad_layers else "the gradients"
    return [Finding(
        "non_finite",
        f"{where}: NaN/Inf gradient at step {history.step_at(first_index)}",
        severity="critical", step=history.step_at(first_index), layer=bad_layers[0] if bad_layers else None,
        evidence={"layers": bad_layers},
    )]


def detect_exploding_gradients(history, *, exploding_norm: float = EXPLODING_NORM,
                               exploding_ratio: float = EXPLODING_RATIO, growth_window: int = GROWTH_WINDOW,
                               growth_factor: float = GROWTH_FACTOR,
                               growth_rising_fraction: float = GROWTH_RISING_FRACTION,
                               persistence: int = PERSISTENCE) -> list[Finding]:
    """Global gradient norm above `exploding_norm`; first/last layer ratio above
    `exploding_ratio`; or the norm growing by `growth_factor` within `growth_window` steps."""
    findings = []
    norm = history.get("grad_norm")
    if norm is not None and len(norm):
        above = np.isfinite(norm) & (norm > exploding_norm)
        start = first_sustained(above, persistence)
        if start is not None:
            largest = float(np.max(norm[above]))
            findings.append(Finding(
                "exploding_gradients",
                f"gradient norm {largest:.3g} > {exploding_norm:g} (exploding) on {int(above.sum())} of {len(norm)} steps",
                severity="critical", step=history.step_at(start),
                evidence={"max_norm": largest, "steps_above": int(above.sum()), "threshold": exploding_norm},
            ))
        growth = _exponential_growth(norm, growth_window, growth_factor, growth_rising_fraction)
        if growth is not None and _loss_fell(history, growth[0], growth_window):
            growth = None  # a saddle or plateau escape: the gradient grows as the loss drops
        if growth is not None and start is None:
            index, factor = growth
            findings.append(Finding(
                "exploding_gradients",
                f"gradient norm grew {factor:.3g}x within {growth_window} steps from step "
                f"{history.step_at(index)} (exponential growth)",
                severity="warning", step=history.step_at(index),
                evidence={"growth": factor, "window": growth_window, "threshold": growth_factor},
            ))
    sustained = sustained_layer_ratio(history, lambda ratio: ratio > exploding_ratio, persistence)
    if sustained is not None:
        index, median, first, last = sustained
        findings.append(Finding(
            "exploding_gradients",
            f"gradient norm of {first} is {median:.3g} x that of {last} (> {exploding_ratio:g}): "
            "gradients grow on the way back to the input",
            severity="warning", step=history.step_at(index), layer=first,
            evidence={"first_layer": first, "last_layer": last, "ratio": median, "threshold": exploding_ratio},
        ))
    return findings


def _loss_fell(history, start: int, window: int) -> bool:
    """True when the training loss at the end of the window is below GROWTH_LOSS_FALL of its
    value at the start (medians of 3 points): the run is improving, not blowing up."""
    loss = history.get("loss")
    if loss is None:
        return False
    before, after = loss[start:start + 3], loss[start + window - 3:start + window]
    before, after = before[np.isfinite(before)], after[np.isfinite(after)]
    if not before.size or not after.size:
        return False
    return float(np.median(after)) < GROWTH_LOSS_FALL * float(np.median(before))


def _exponential_growth(norm: np.ndarray, window: int, factor: float, rising_fraction: float):
    """(start index, growth) of the first window in which log ||g|| rises by more than
    ln(factor) along a robust slope, with most steps rising, and ends more than `factor` times
    above the starting level (the median of the first PERSISTENCE steps): a norm that grows back
    from a tiny value toward where it started is not exploding. None if there is none."""
    log_norm = np.log(np.where(np.isfinite(norm) & (norm > 0), norm, np.nan))
    start_level = np.nanmedian(log_norm[:PERSISTENCE]) if np.isfinite(log_norm[:PERSISTENCE]).any() else np.nan
    for start in range(0, len(norm) - window + 1, max(1, window // 4)):
        segment = log_norm[start:start + window]
        finite = np.isfinite(segment)
        if finite.sum() < window // 2:
            continue
        slope = theil_sen_slope(np.arange(window)[finite], segment[finite])
        rising = np.mean(np.diff(segment[finite]) > 0)
        growth = float(np.exp(slope * (window - 1)))
        above_start = np.nanmax(segment) - start_level > np.log(factor)
        if growth > factor and rising >= rising_fraction and above_start:
            return start, growth
    return None


def detect_update_ratio(history, *, update_ratio_low: float = UPDATE_RATIO_LOW,
                        update_ratio_high: float = UPDATE_RATIO_HIGH, recent_steps: int = RECENT_STEPS) -> list[Finding]:
    """Layers whose median update-to-weight ratio over the last `recent_steps` recorded steps
    (at most the second half of the run, so that the first steps' transient does not count; no
    verdict on runs shorter than UPDATE_RATIO_MIN_STEPS) lies outside [update_ratio_low,
    update_ratio_high]: their effective learning rate is too low or too high. One finding per
    direction, naming the layers."""
    if len(history) < UPDATE_RATIO_MIN_STEPS:
        return []
    window = min(recent_steps, len(history) // 2)  # the steady state: not the first steps' transient
    medians = {}
    for name, ratios in weight_layers(history, "update_ratio").items():
        recent = ratios[-window:]
        recent = recent[np.isfinite(recent)]
        if recent.size:
            medians[name] = float(np.median(recent))
    start = len(history) - window
    findings = []
    for direction, bound, comparison in (("low", update_ratio_low, "<"), ("high", update_ratio_high, ">")):
        outside = {name: value for name, value in medians.items()
                   if (value < bound if direction == "low" else value > bound)}
        if not outside:
            continue
        values = sorted(outside.values())
        spread = f"{values[0]:.1e}" if len(values) == 1 else f"{values[0]:.1e} to {values[-1]:.1e}"
        # The 1e-3 rule of thumb is rough: within 10x of the band it is a note; beyond, a warning.
        far_outside = values[0] < bound / 10 if direction == "low" else values[-1] > bound * 10
        findings.append(Finding(
            "update_ratio",
            f"{name_list(list(outside))}: update/weight ratio {spread} {comparison} {bound:.0e} (learning rate "
            f"too {direction} for {'this layer' if len(outside) == 1 else 'these layers'}; about 1e-3 is healthy)",
            severity="warning" if far_outside else "info", step=history.step_at(start), layer=next(iter(outside)),
            evidence={"median_ratios": outside, "direction": direction, "low": update_ratio_low,
                      "high": update_ratio_high},
        ))
    return findings


def name_list(names: list[str], limit: int = 4) -> str:
    """'layer a', 'layers a, b', or 'layers a, b, c, d and 5 more'."""
    if len(names) == 1:
        return f"layer {names[0]}"
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"layers {shown}{more}"


def analyze_gradients(history, **thresholds) -> list[Finding]:
    """Every gradient rule above. Thresholds are overridden by the lower-case names of the
    constants (vanishing_ratio=1e-4) and passed to the rules that take them."""
    findings = []
    for rule in (detect_non_finite_gradients, detect_exploding_gradients, detect_vanishing_gradients,
                 detect_update_ratio):
        findings.extend(rule(history, **accepted_thresholds(rule, thresholds)))
    return findings

