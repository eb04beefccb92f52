"""The lab's experiments on generalization and numerics, in their fast configuration: overfitting,
underfitting, double descent, the where trap, and Glorot & Bengio's gradient-variance observation.

Each test checks what the experiment's STATEMENT promises: reproduce() is diagnosed as FAILURE,
fix() is healthy (or at least free of FAILURE), and the statement's numbers hold.
"""

from functools import cache

import numpy as np
import pytest

import minigrad as mg
from diagnostics import KINDS
from diagnostics.experiments import load


@cache
def runs(name):
    """(reproduce run, fix run) of one experiment, fast configuration, computed once per session."""
    experiment = load(name)
    return experiment.reproduce(fast=True), experiment.fix(fast=True)


def finding_steps(run, kind):
    return [finding.step for finding in run.report.findings_of(kind)]


@pytest.mark.parametrize("name", ["overfitting", "underfitting", "double_descent", "where_trap", "glorot_bengio"])
def test_experiment_has_the_lab_shape(name):
    experiment = load(name)
    assert experiment.FAILURE in KINDS
    assert experiment.TITLE and experiment.STATEMENT and experiment.__doc__
    assert callable(experiment.reproduce) and callable(experiment.fix)


# ------------------------------------------------------------------------------- overfitting


def test_overfitting_reproduce_validation_turns_up_while_training_falls():
    reproduce, _ = runs("overfitting")
    assert reproduce.report.primary == "overfitting"
    measured = reproduce.measurements
    assert measured["final_train_loss"] < 0.01
    assert measured["early_stopping_step"] <= 50
    assert measured["final_over_best_val_loss"] > 1.5


def test_overfitting_doctor_stops_at_the_validation_minimum():
    reproduce, _ = runs("overfitting")
    (stop,) = finding_steps(reproduce, "overfitting")
    # The doctor smooths the validation curve; its minimum may move by an evaluation or two.
    assert abs(stop - reproduce.measurements["early_stopping_step"]) <= 10


def test_overfitting_fix_weight_decay_keeps_validation_at_its_minimum():
    _, fix = runs("overfitting")
    assert fix.report.healthy, fix.report
    assert fix.measurements["final_train_loss"] > 0.1
    assert fix.measurements["final_over_best_val_loss"] < 1.1


# ------------------------------------------------------------------------------- underfitting


def test_underfitting_reproduce_both_losses_high_and_close():
    reproduce, _ = runs("underfitting")
    assert reproduce.report.primary == "underfitting"
    measured = reproduce.measurements
    assert measured["fraction_of_initial_loss"] > 0.7
    assert measured["val_train_gap"] < 0.1
    assert measured["val_accuracy"] < 0.7


def test_underfitting_fix_capacity_fits_the_spirals():
    _, fix = runs("underfitting")
    assert fix.report.healthy, fix.report
    assert fix.measurements["final_train_loss"] < 0.1
    assert fix.measurements["val_accuracy"] > 0.95


# ------------------------------------------------------------------------------- double descent


def test_double_descent_is_the_primary_cause():
    reproduce, _ = runs("double_descent")
    assert reproduce.report.primary == "double_descent"


def test_double_descent_reproduce_peaks_at_the_interpolation_threshold():
    reproduce, _ = runs("double_descent")
    measured = reproduce.measurements
    threshold = measured["interpolation_threshold"]
    assert finding_steps(reproduce, "double_descent") == [threshold]
    assert measured["first_minimum_model_size"] < threshold
    assert measured["peak_model_size"] == threshold
    assert measured["peak_over_first_minimum"] > 10
    assert measured["final_over_first_minimum"] < 0.5


def test_double_descent_sweep_is_over_model_size():
    reproduce, _ = runs("double_descent")
    sizes = reproduce.history.steps
    assert np.all(np.diff(sizes) > 0) and reproduce.measurements["interpolation_threshold"] in sizes
    # From p = n on the fit interpolates the noisy targets (training error is round-off);
    # below n it cannot.
    at_or_past_threshold = sizes >= reproduce.measurements["interpolation_threshold"]
    assert np.all(reproduce.history["loss"][at_or_past_threshold] < 1e-20)
    assert np.all(reproduce.history["loss"][~at_or_past_threshold] > 1e-8)


def test_double_descent_fix_ridge_removes_the_peak():
    reproduce, fix = runs("double_descent")
    assert "double_descent" not in fix.report.kinds
    assert fix.report.healthy, fix.report
    assert fix.measurements["peak_over_first_minimum"] < 1.1
    assert fix.measurements["final_test_error"] < reproduce.measurements["final_test_error"]


@pytest.mark.parametrize("n, p", [(12, 5), (5, 12), (8, 8)])
def test_ridge_fit_solves_the_regularized_least_squares_problem(n, p):
    double_descent = load("double_descent")
    rng = np.random.default_rng(n * 100 + p)
    features, targets = rng.standard_normal((n, p)), rng.standard_normal(n)
    # ridge = 0: the minimum-norm least-squares solution, as NumPy's lstsq computes it.
    expected = np.linalg.lstsq(features, targets, rcond=None)[0]
    np.testing.assert_allclose(double_descent.ridge_fit(features, targets, 0.0), expected, atol=1e-8)
    # ridge > 0: the solution of the normal equations (Phi^T Phi + n ridge I) a = Phi^T y.
    ridge = 0.1
    expected = np.linalg.solve(features.T @ features + n * ridge * np.eye(p), features.T @ targets)
    np.testing.assert_allclose(double_descent.ridge_fit(features, targets, ridge), expected, atol=1e-10)


# ------------------------------------------------------------------------------- the where trap


def test_where_trap_reproduce_nan_gradients_behind_a_finite_loss():
    reproduce, _ = runs("where_trap")
    assert reproduce.report.primary == "non_finite"
    measured = reproduce.measurements
    assert measured["first_nan_gradient_step"] == 0
    assert measured["nan_parameters"] > 0
    assert np.all(np.isfinite(reproduce.history["loss"]))
    assert measured["final_train_loss"] == pytest.approx(np.log(2), abs=1e-3)


def test_where_trap_same_forward_different_gradient():
    reproduce, _ = runs("where_trap")
    measured = reproduce.measurements
    assert measured["forward_max_difference"] == 0.0
    assert measured["naive_nan_input_gradients"] > 0
    assert measured["safe_nan_input_gradients"] == 0


def test_where_trap_detect_anomaly_names_sqrt_and_its_line():
    where_trap = load("where_trap")
    reproduce, _ = runs("where_trap")
    assert reproduce.measurements["anomaly_op"] == "Sqrt"
    file_and_line = reproduce.measurements["anomaly_created_at"].split(" ")[0]
    file_name, line = file_and_line.split(":")
    assert file_name == "where_trap.py"
    with open(where_trap.__file__) as source:
        assert "mg.sqrt(x)" in source.read().splitlines()[int(line) - 1]


def test_where_trap_double_where_has_the_true_gradient():
    where_trap = load("where_trap")
    # Away from the kink at 0: sqrt(x) for x > 0 (derivative 1 / (2 sqrt x)), 0 for x < 0.
    x = mg.tensor(np.array([-1.5, -0.3, 0.2, 0.7, 2.0]), requires_grad=True)
    assert mg.gradcheck(lambda t: where_trap.SafeSqrtUnit()(t), (x,))


def test_where_trap_fix_trains_without_nans():
    _, fix = runs("where_trap")
    assert fix.report.healthy, fix.report
    assert fix.measurements["first_nan_gradient_step"] == -1
    assert fix.measurements["nan_parameters"] == 0
    assert fix.measurements["val_accuracy"] > 0.9


# ------------------------------------------------------------------------------- Glorot & Bengio


def test_glorot_bengio_reproduce_gradients_shrink_toward_the_input():
    reproduce, _ = runs("glorot_bengio")
    assert reproduce.report.primary == "bad_init"
    per_layer = reproduce.measurements["act_grad_std_first_to_last"]
    assert len(per_layer) == 5
    assert all(earlier < later for earlier, later in zip(per_layer, per_layer[1:]))
    assert reproduce.measurements["first_to_last_act_grad_ratio"] < 0.2
    # Each layer scales the gradient's standard deviation by about sqrt(n Var(W)) = sqrt(1/3).
    assert reproduce.measurements["act_grad_factor_per_layer"] == pytest.approx(np.sqrt(1 / 3), rel=0.15)


def test_glorot_bengio_fix_xavier_keeps_gradients_level():
    reproduce, fix = runs("glorot_bengio")
    assert "bad_init" not in fix.report.kinds
    assert fix.report.healthy, fix.report
    assert fix.measurements["first_to_last_act_grad_ratio"] > 0.5
    assert fix.measurements["steps_to_halve_loss"] * 3 < reproduce.measurements["steps_to_halve_loss"]
