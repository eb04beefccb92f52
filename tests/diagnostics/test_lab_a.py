"""Lab experiments dead_relu, saturation, lr_too_low, oscillation and loss_spike, in their fast
configuration: reproduce() is diagnosed as the experiment's FAILURE, fix() makes it go away, and
the numbers each STATEMENT promises hold in the recorded runs."""

import math

import numpy as np

from diagnostics.experiments import load

_RUNS = {}


def run_of(name, stage):
    """reproduce() or fix() of an experiment in the fast configuration, run once per session."""
    if (name, stage) not in _RUNS:
        _RUNS[name, stage] = getattr(load(name), stage)(fast=True)
    return _RUNS[name, stage]


def final_loss(run):
    """The median training loss of the last 10 % of the steps (one batch does not set it)."""
    loss = run.history["loss"]
    return float(np.median(loss[-max(5, len(loss) // 10):]))


def last_values(run, statistic):
    """{layer: its last recorded value of `statistic`}."""
    return {name: float(values[-1]) for name, values in run.history.layers(statistic).items()}


# ---------------------------------------------------------------- dead_relu


def test_dead_relu_reproduce_is_diagnosed_dead_relu():
    run = run_of("dead_relu", "reproduce")
    assert run.report.primary == "dead_relu" == load("dead_relu").FAILURE


def test_dead_relu_reproduce_kills_units_that_were_born_alive():
    run = run_of("dead_relu", "reproduce")
    dead = last_values(run, "act_dead_frac")
    assert len(dead) == 3 and all(fraction > 0.9 for fraction in dead.values()), dead
    assert run.measurements["dead_fraction"] > 0.9
    assert run.measurements["born_dead_fraction"] < 0.2
    assert abs(final_loss(run) - math.log(2)) < 0.05
    assert run.measurements["val_accuracy"] <= 0.6


def test_dead_relu_fix_is_healthy_and_keeps_units_alive():
    run = run_of("dead_relu", "fix")
    assert run.report.healthy, run.report
    dead = last_values(run, "act_dead_frac")
    assert all(fraction < 0.5 for fraction in dead.values()), dead
    assert run.measurements["val_accuracy"] > 0.9


# ---------------------------------------------------------------- saturation


def test_saturation_reproduce_is_diagnosed_saturation():
    run = run_of("saturation", "reproduce")
    assert run.report.primary == "saturation" == load("saturation").FAILURE


def test_saturation_reproduce_pins_every_layer_and_starves_the_first():
    run = run_of("saturation", "reproduce")
    saturated = last_values(run, "act_sat_soft")
    assert len(saturated) == 5 and all(fraction > 0.9 for fraction in saturated.values()), saturated
    assert run.measurements["saturated_fraction"] > 0.9
    assert run.measurements["first_to_last_grad_ratio"] < 1e-3
    assert final_loss(run) > 0.5
    assert run.measurements["val_accuracy"] < 0.7


def test_saturation_fix_is_healthy_and_unsaturated():
    run = run_of("saturation", "fix")
    assert run.report.healthy, run.report
    saturated = last_values(run, "act_sat_soft")
    assert all(fraction < 0.2 for fraction in saturated.values()), saturated
    assert run.measurements["val_accuracy"] > 0.9


# ---------------------------------------------------------------- lr_too_low


def test_lr_too_low_reproduce_is_diagnosed_lr_too_low():
    run = run_of("lr_too_low", "reproduce")
    assert run.report.primary == "lr_too_low" == load("lr_too_low").FAILURE


def test_lr_too_low_reproduce_falls_along_a_straight_line():
    run = run_of("lr_too_low", "reproduce")
    assert 1 / 3 <= run.measurements["slope_ratio"] <= 3
    assert run.measurements["loss_fraction_remaining"] > 0.7


def test_lr_too_low_fix_uses_the_range_test_and_is_healthy():
    reproduced, run = run_of("lr_too_low", "reproduce"), run_of("lr_too_low", "fix")
    assert run.report.healthy, run.report
    assert run.measurements["suggested_lr"] > 100 * reproduced.history["lr"][0]
    assert run.history["lr"][0] == run.measurements["suggested_lr"]
    assert run.measurements["loss_fraction_remaining"] < 0.05
    assert run.measurements["val_accuracy"] > 0.95


# ---------------------------------------------------------------- oscillation


def test_oscillation_reproduce_is_diagnosed_oscillation():
    run = run_of("oscillation", "reproduce")
    assert run.report.primary == "oscillation" == load("oscillation").FAILURE


def test_oscillation_reproduce_zigzags_without_diverging():
    run = run_of("oscillation", "reproduce")
    assert run.measurements["turning_rate"] > 0.85
    assert run.measurements["median_swing"] > 0.1
    loss = run.history["loss"]
    assert np.isfinite(loss).all()
    assert "divergence" not in run.report.kinds and "non_finite" not in run.report.kinds


def test_oscillation_fix_settles_and_is_healthy():
    run = run_of("oscillation", "fix")
    assert run.report.healthy, run.report
    assert run.measurements["median_swing"] < 0.01
    assert run.measurements["val_accuracy"] > 0.9


# ---------------------------------------------------------------- loss_spike


def test_loss_spike_reproduce_is_diagnosed_loss_spike():
    run = run_of("loss_spike", "reproduce")
    assert run.report.primary == "loss_spike" == load("loss_spike").FAILURE


def test_loss_spike_reproduce_sets_training_back_until_the_end():
    run = run_of("loss_spike", "reproduce")
    assert run.measurements["spike_ratio"] > 100
    assert run.measurements["setback_ratio"] > 1.5
    spike = run.report.findings_of("loss_spike")[0]
    bad_step = len(run.history) - load("loss_spike").STEPS_AFTER_BAD_BATCH
    assert spike.step == bad_step and spike.severity == "warning"
    assert not spike.evidence["recovered"]


def test_loss_spike_fix_clips_the_bad_batch_and_is_healthy():
    run = run_of("loss_spike", "fix")
    assert run.report.healthy, run.report
    assert run.measurements["setback_ratio"] < 1.2
    assert "loss_spike" not in run.report.ranked_causes
    bad_step = len(run.history) - load("loss_spike").STEPS_AFTER_BAD_BATCH
    assert run.history["clip_fired"][bad_step] == 1
    bad_step = len(run.history) - load("loss_spike").STEPS_AFTER_BAD_BATCH
    assert run.history["clip_fired"][bad_step] == 1
