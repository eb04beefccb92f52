"""The lab's two sweeps, in their fast configuration: batch size with the linear scaling rule, and
optimizers on a plateau (momentum, and Adam's L2 decay against AdamW's decoupled decay).

Each experiment returns one run for reproduce() and one for fix() and carries its sweep's table
in the measurements; the tests check the lab contract (reproduce is diagnosed as FAILURE, fix
loses it) and every number the STATEMENT promises. The optimizer laws the optimizers experiment
rests on are checked on single weights, one step at a time.
"""

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics import KINDS
from diagnostics.experiments import batch_size, optimizers


@cache
def runs(experiment):
    """(reproduce run, fix run) of an experiment module, fast configuration, computed once."""
    return experiment.reproduce(fast=True), experiment.fix(fast=True)


@cache
def scaled_sweep():
    """The batch-size sweep under the linear scaling rule, fast configuration, computed once."""
    return batch_size.sweep(batch_size.linear_scaling_learning_rate, fast=True)


def rows_by(run, key):
    """The run's table as {row[key]: row}."""
    return {row[key]: row for row in run.measurements["table"]}


@pytest.mark.parametrize("experiment", [batch_size, optimizers], ids=["batch_size", "optimizers"])
def test_experiment_has_the_lab_shape(experiment):
    assert experiment.FAILURE in KINDS
    assert experiment.TITLE and experiment.STATEMENT and experiment.__doc__
    assert callable(experiment.reproduce) and callable(experiment.fix)


# ------------------------------------------------------------------------------- batch size


def test_batch_size_reproduce_the_largest_batch_at_a_fixed_lr_is_lr_too_low():
    reproduce, _ = runs(batch_size)
    assert reproduce.report.primary == batch_size.FAILURE == "lr_too_low"
    assert reproduce.measurements["batch_size"] == max(batch_size.FAST_BATCH_SIZES)
    assert np.all(reproduce.history["lr"] == batch_size.REFERENCE_LR)


def test_batch_size_every_run_sees_the_same_number_of_samples():
    for run in runs(batch_size):
        for row in run.measurements["table"]:
            assert row["steps"] * row["batch_size"] == batch_size.SAMPLES_SEEN
        assert len(run.history) == run.measurements["steps"]


def test_batch_size_at_a_fixed_lr_the_final_loss_grows_with_the_batch():
    reproduce, _ = runs(batch_size)
    rows = rows_by(reproduce, "batch_size")
    losses = [rows[size]["final_loss"] for size in sorted(rows)]
    assert np.all(np.diff(losses) > 0), losses
    assert reproduce.measurements["final_loss_over_reference"] > 1.8


def test_batch_size_at_a_fixed_lr_progress_is_per_step_not_per_sample():
    # 32 steps of batch 512 end where 32 steps of batch 32 got, with 16x the data.
    reproduce, _ = runs(batch_size)
    measured = reproduce.measurements
    assert measured["final_loss"] / measured["reference_loss_after_as_many_steps"] == pytest.approx(1, abs=0.15)


def test_batch_size_linear_scaling_recovers_the_mid_batch():
    reproduce, fix = runs(batch_size)
    fixed, scaled = rows_by(reproduce, "batch_size"), rows_by(fix, "batch_size")
    for size, row in scaled.items():
        assert row["lr"] == pytest.approx(batch_size.REFERENCE_LR * size / batch_size.REFERENCE_BATCH)
    middle = [size for size in scaled if size not in (batch_size.REFERENCE_BATCH, max(scaled))]
    assert middle
    for size in middle:
        assert fixed[size]["over_reference"] > 1.3
        assert scaled[size]["over_reference"] == pytest.approx(1, abs=0.15)


def test_batch_size_linear_scaling_reaches_its_limit_at_the_largest_batch():
    reproduce, fix = runs(batch_size)
    assert fix.measurements["batch_size"] == max(batch_size.FAST_BATCH_SIZES)
    assert batch_size.FAILURE not in fix.report.kinds
    assert fix.measurements["final_loss_over_reference"] > 1.25
    assert fix.measurements["final_loss"] < reproduce.measurements["final_loss"]
    (too_large,) = fix.report.findings_of("update_ratio")
    assert too_large.evidence["direction"] == "high"
    assert min(too_large.evidence["median_ratios"].values()) > 1e-2


def test_batch_size_past_the_limit_a_larger_lr_beats_the_rule():
    _, fix = runs(batch_size)
    larger = fix.measurements["larger_lr_runs"]
    assert [row["lr"] for row in larger] == pytest.approx(
        [multiple * fix.measurements["lr"] for multiple in batch_size.LARGER_LR_MULTIPLES])
    assert min(row["over_reference"] for row in larger) < fix.measurements["final_loss_over_reference"]


def test_batch_size_warmup_ramps_linearly_from_the_reference_lr():
    _, fix = runs(batch_size)
    largest = fix.measurements["batch_size"]
    target, warmup_steps = fix.measurements["lr"], batch_size.WARMUP_SAMPLES // largest
    # The Recorder logs the lr after the scheduler's step: the one the next step will use.
    expected = np.minimum(batch_size.REFERENCE_LR + np.arange(1, len(fix.history) + 1)
                          * (target - batch_size.REFERENCE_LR) / warmup_steps, target)
    np.testing.assert_allclose(fix.history["lr"], expected, rtol=1e-6)


def test_batch_size_per_evaluation_history_lines_runs_up_by_samples_seen():
    for size, run in scaled_sweep().items():
        curves = batch_size.per_evaluation_history(run)
        assert len(curves) == batch_size.EVALUATIONS
        spacing = np.diff(curves.steps)
        assert np.all(spacing == batch_size.SAMPLES_SEEN // batch_size.EVALUATIONS)
        # The training-loss points average consecutive blocks of batches that cover the run up to
        # its last evaluation: their length-weighted sum is the sum of those batches' losses.
        lengths = np.diff(np.concatenate([[0], curves.steps // size]))
        covered = int(curves.steps[-1] // size)
        assert np.sum(curves["loss"] * lengths) == pytest.approx(np.sum(run.history["loss"][:covered]), rel=1e-9)
        np.testing.assert_array_equal(curves["val_loss"], run.history["val_loss"][np.isfinite(run.history["val_loss"])])


def test_batch_size_comparison_ranks_the_largest_batch_last():
    sweep = scaled_sweep()
    comparison = batch_size.comparison(sweep)
    assert comparison.ranking[-1] == sweep[max(sweep)].label
    for summary in comparison.summaries:
        assert summary.hyperparameters["batch_size"] in sweep
        assert summary.steps == batch_size.EVALUATIONS


def test_batch_size_figure_draws_both_sweeps_against_samples_seen(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "batch_size.png"
    drawing = batch_size.figure(scaled_sweep(), scaled_sweep(), path)
    assert path.stat().st_size > 0
    assert [ax.get_xlabel() for ax in drawing.axes] == ["samples seen", "samples seen"]


def test_batch_size_table_prints_one_line_per_batch():
    _, fix = runs(batch_size)
    lines = batch_size.format_table(fix.measurements["table"]).splitlines()
    assert len(lines) == 1 + len(batch_size.FAST_BATCH_SIZES)
    assert lines[-1].split()[0] == str(max(batch_size.FAST_BATCH_SIZES))
    assert lines[-1].split()[-1] == fix.report.primary


# ------------------------------------------------------------------------------- optimizers


def test_optimizers_reproduce_plain_sgd_stays_on_the_plateau():
    reproduce, _ = runs(optimizers)
    assert reproduce.report.primary == optimizers.FAILURE == "lr_too_low"
    assert reproduce.measurements["final_loss"] == pytest.approx(math.log(2), rel=0.01)
    assert reproduce.measurements["escape_step"] is None


def test_optimizers_fix_momentum_escapes_with_the_same_learning_rate():
    reproduce, fix = runs(optimizers)
    assert fix.report.healthy, fix.report
    assert optimizers.OPTIMIZERS[optimizers.MOMENTUM_SGD][1]["lr"] == optimizers.OPTIMIZERS[optimizers.SGD][1]["lr"]
    assert fix.measurements["escape_step"] is not None
    assert fix.measurements["final_loss"] < 0.05
    assert fix.measurements["final_loss"] < reproduce.measurements["final_loss"] / 10


def test_optimizers_table_has_every_optimizer_and_adam_escapes():
    _, fix = runs(optimizers)
    rows = rows_by(fix, "optimizer")
    assert list(rows) == list(optimizers.OPTIMIZERS)
    assert rows[optimizers.SGD]["escape_step"] is None
    assert rows[optimizers.ADAM]["escape_step"] is not None
    assert rows[optimizers.ADAM]["diagnosis"] == "healthy"


def test_optimizers_adam_l2_collapses_the_weights_while_adamw_trains_like_adam():
    _, fix = runs(optimizers)
    rows, measured = rows_by(fix, "optimizer"), fix.measurements
    adam, adam_l2, adamw = rows[optimizers.ADAM], rows[optimizers.ADAM_L2], rows[optimizers.ADAMW]
    assert adam_l2["weight_norm"] < 0.1 * adam_l2["initial_weight_norm"]
    assert adam_l2["final_loss"] == pytest.approx(math.log(2), rel=0.01)
    assert adam_l2["escape_step"] is None
    assert adamw["final_loss"] < 0.05
    assert adamw["weight_norm"] == pytest.approx(adam["weight_norm"], rel=0.05)
    assert measured["adamw_over_adam_l2_weight_norm"] > 30
    assert measured["adam_l2_weight_norm"] == pytest.approx(adam_l2["weight_norm"], rel=1e-3)
    assert measured["adam_l2_shrink_per_step"] > 100 * measured["adamw_decay_per_step"]


def test_optimizers_the_l2_term_rivals_the_gradient_at_the_start():
    _, fix = runs(optimizers)
    assert fix.measurements["l2_term_over_gradient_at_start"] > 0.5


def test_optimizers_comparison_and_figure(tmp_path):
    pytest.importorskip("matplotlib")
    reproduce, fix = runs(optimizers)
    two_runs = {optimizers.SGD: reproduce, optimizers.MOMENTUM_SGD: fix}
    comparison = optimizers.comparison(two_runs)
    assert comparison.ranking == [optimizers.MOMENTUM_SGD, optimizers.SGD]
    assert comparison.best.hyperparameters == optimizers.OPTIMIZERS[optimizers.MOMENTUM_SGD][1]
    path = tmp_path / "optimizers.png"
    optimizers.figure(two_runs, path)
    assert path.stat().st_size > 0


def one_step(optimizer_class, weight, gradient, **settings):
    """The change of a single float64 weight after one step of the optimizer, given its gradient."""
    parameter = mg.tensor(np.array([weight]), requires_grad=True)
    parameter.grad = np.array([gradient])
    optimizer_class([parameter], **settings).step()
    return float(parameter.data[0] - weight)


weights = st.floats(1e-3, 10.0).flatmap(lambda size: st.sampled_from([size, -size]))
decays = st.floats(1e-3, 1.0)
learning_rates = st.floats(1e-4, 0.1)


@given(weight=weights, weight_decay=decays, lr=learning_rates)
def test_where_the_gradient_is_zero_adam_l2_takes_a_full_step_and_adamw_a_fraction(weight, weight_decay, lr):
    # Adam + L2: g' = lambda w, and the first step is lr g' / (|g'| + eps): a full lr toward 0.
    adam_l2 = one_step(mg.optim.Adam, weight, 0.0, lr=lr, weight_decay=weight_decay)
    decay = weight_decay * abs(weight)
    assert adam_l2 == pytest.approx(-math.copysign(lr * decay / (decay + 1e-8), weight), rel=1e-6)
    # AdamW: w (1 - lr lambda), and a zero gradient moves it no further.
    adamw = one_step(mg.optim.AdamW, weight, 0.0, lr=lr, weight_decay=weight_decay)
    assert adamw == pytest.approx(-lr * weight_decay * weight, rel=1e-6)


@given(weight=weights, weight_decay=decays, lr=learning_rates, gradient=st.floats(20.0, 1e3))
def test_where_the_gradient_dominates_adam_l2_does_not_decay_but_adamw_does(weight, weight_decay, lr, gradient):
    # |g| > lambda |w|: Adam + L2's first step is lr sign(g + lambda w) = lr sign(g), as if lambda were 0;
    # AdamW's differs from plain Adam's by its decay lr lambda w, whatever the gradient.
    plain = one_step(mg.optim.Adam, weight, gradient, lr=lr)
    assert one_step(mg.optim.Adam, weight, gradient, lr=lr, weight_decay=weight_decay) == pytest.approx(plain, rel=1e-9)
    adamw = one_step(mg.optim.AdamW, weight, gradient, lr=lr, weight_decay=weight_decay)
    assert adamw - plain == pytest.approx(-lr * weight_decay * weight, rel=1e-6, abs=1e-15)
