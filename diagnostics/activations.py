"""Activation-health detectors: dead ReLU units and saturated tanh/sigmoid units.

Pure functions of a History (and, for per-unit detail, of `Recorder.unit_stats`). A ReLU
unit is dead when its pre-activation is <= 0 for every input: its output and its gradient are 0,
so gradient descent cannot revive it. Three definitions are reported side by side, because
they answer different questions:

    per-batch zero fraction   the fraction of a layer's outputs that are exactly 0 in a batch
                              (about 1/2 is normal for ReLU; it says nothing about single units)
    window activity           units active on fewer than 1 % of the samples over the recent
                              window of steps; the layer is flagged when more than 50 % of its
                              units are (SageMaker Debugger's DeadRelu rule: threshold_inactivity
                              1 %, threshold_layer 50 %)
    whole-dataset pass        units never active on any example of a dataset
                              (`model_checks.dead_units`), the strictest definition
    born dead                 units never active on the first recorded step: dead from
                              initialization, not killed by training

A tanh or sigmoid unit is saturated when f'(x) < 0.02 (soft level: |tanh x| > 0.99) — its
gradient is scaled down 50-fold or more; the layer is flagged when more than 50 % of its outputs
are soft-saturated over PERSISTENCE consecutive recorded steps.
"""

from __future__ import annotations

import numpy as np

from diagnostics.findings import Finding, accepted_thresholds
from diagnostics.stats import first_sustained, last_finite

DEAD_LAYER_FRACTION = 0.5
SATURATED_LAYER_FRACTION = 0.5
PERSISTENCE = 5


def detect_dead_relus(history, unit_stats: dict | None = None, *,
                      dead_layer_fraction: float = DEAD_LAYER_FRACTION,
                      persistence: int = PERSISTENCE) -> list[Finding]:
    """Layers in which more than `dead_layer_fraction` of the units are dead (window
    definition), sustained over `persistence` recorded steps. `unit_stats` ({layer: the dict
    of Recorder.unit_stats}) adds born-dead counts and how far dead units are from reviving."""
    findings = []
    zero_fractions = history.layers("act_zero_frac")
    for name, dead in history.layers("act_dead_frac").items():
        index = first_sustained(np.isfinite(dead) & (dead > dead_layer_fraction), persistence)
        if index is None:
            continue
        dead_now = _held_value(dead, index, persistence)
        evidence = {
            "dead_fraction_window": dead_now,
            "zero_fraction_batch": last_finite(zero_fractions.get(name)),
            "threshold": dead_layer_fraction,
        }
        message = (f"layer {name}: {dead_now:.0%} of units dead (active on < 1% of samples) > "
                   f"{dead_layer_fraction:.0%}; {evidence['zero_fraction_batch']:.0%} of outputs are 0")
        units = (unit_stats or {}).get(name) or {}
        if units:
            born_dead = float(np.mean(units["born_dead"]))
            dead_units = units["active_fraction"] < 0.01
            evidence["born_dead_fraction"] = born_dead
            if dead_units.any():
                evidence["median_max_preactivation_of_dead"] = float(np.median(units["max_preactivation"][dead_units]))
            message += f"; {born_dead:.0%} were dead from initialization"
        findings.append(Finding("dead_relu", message, severity="critical", step=history.step_at(index),
                                layer=name, evidence=evidence))
    return findings


def detect_saturation(history, *, saturated_layer_fraction: float = SATURATED_LAYER_FRACTION,
                      persistence: int = PERSISTENCE) -> list[Finding]:
    """tanh/sigmoid layers with more than `saturated_layer_fraction` of outputs soft-saturated
    (f'(x) < 0.02), sustained over `persistence` recorded steps."""
    findings = []
    hard = history.layers("act_sat_hard")
    for name, soft in history.layers("act_sat_soft").items():
        index = first_sustained(np.isfinite(soft) & (soft > saturated_layer_fraction), persistence)
        if index is None:
            continue
        soft_now = _held_value(soft, index, persistence)
        hard_now = _held_value(hard[name], index, persistence) if name in hard else float("nan")
        hard_part = f"; {hard_now:.0%} hard-saturated (f'(x) < 1e-7)" if np.isfinite(hard_now) else ""
        findings.append(Finding(
            "saturation",
            f"layer {name}: {soft_now:.0%} of outputs saturated (f'(x) < 0.02, |tanh| > 0.99) > "
            f"{saturated_layer_fraction:.0%}{hard_part}",
            severity="critical", step=history.step_at(index), layer=name,
            evidence={"soft_fraction": soft_now, "hard_fraction": hard_now, "threshold": saturated_layer_fraction},
        ))
    return findings


def _held_value(values: np.ndarray, index: int, persistence: int) -> float:
    """The median of `values` over the rows where the rule first held (from `index`, for
    `persistence` rows): the numbers that fired it, even if the run later went NaN."""
    held = values[index:index + max(persistence, 1)]
    held = held[np.isfinite(held)]
    return float(np.median(held)) if held.size else float("nan")


def analyze_activations(history, unit_stats: dict | None = None, **thresholds) -> list[Finding]:
    """Both activation rules."""
    return (detect_dead_relus(history, unit_stats, **accepted_thresholds(detect_dead_relus, thresholds))
            + detect_saturation(history, **accepted_thresholds(detect_saturation, thresholds)))
