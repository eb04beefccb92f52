"""Gradient-health rules: each fires on a history built to show its pathology, at the step where
it starts and naming the layer, stays silent on healthy histories, and never raises on odd ones."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagnostics import Finding, History
from diagnostics import gradients
from diagnostics.gradients import (
    analyze_gradients, detect_exploding_gradients, detect_non_finite_gradients, detect_update_ratio,
    detect_vanishing_gradients,
)

LAYERS = ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias")
WEIGHTS = ("0.weight", "2.weight", "4.weight")
STEPS = 200
ONSET = 120


def healthy_columns(seed=0, steps=STEPS, noise=0.3, every=1):
    """A healthy run's gradient columns: per-layer norms around 0.1 (biases 0.03), mean |g|
    around 1e-3, update ratios around 1e-3, each with multiplicative (lognormal) noise."""
    rng = np.random.default_rng(seed)

    def jitter(level):
        return level * np.exp(noise * rng.standard_normal(steps))

    columns = {"step": np.arange(steps, dtype=float) * every, "loss": 2.0 * np.exp(-np.arange(steps) / 50) + 0.1}
    for name in LAYERS:
        scale = 1.0 if name.endswith("weight") else 0.3
        columns[f"grad_norm/{name}"] = jitter(0.1 * scale)
        columns[f"grad_mean_abs/{name}"] = jitter(1e-3 * scale)
        columns[f"grad_nonfinite/{name}"] = np.zeros(steps)
        columns[f"update_ratio/{name}"] = jitter(1e-3)
    columns["grad_norm"] = np.sqrt(sum(columns[f"grad_norm/{name}"] ** 2 for name in LAYERS))
    return columns


def kinds(findings):
    return sorted(finding.kind for finding in findings)


# ---------------------------------------------------------------- silence on healthy runs


@given(seed=st.integers(0, 2**32 - 1), noise=st.floats(0.0, 0.6), steps=st.sampled_from([1, 5, 30, 200]),
       every=st.sampled_from([1, 10]))
def test_a_healthy_history_has_no_findings(seed, noise, steps, every):
    assert analyze_gradients(History(healthy_columns(seed, steps, noise, every))) == []


# ---------------------------------------------------------------- each pathology


def test_vanishing_by_mean_abs_names_the_layer_and_the_onset():
    columns = healthy_columns()
    columns["grad_mean_abs/0.weight"][ONSET:] = 1e-9
    findings = detect_vanishing_gradients(History(columns))
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.kind, finding.step, finding.layer, finding.severity) == (
        "vanishing_gradients", ONSET, "0.weight", "critical")
    assert finding.evidence["layers"] == ["0.weight"]
    assert finding.evidence["mean_abs"] == pytest.approx(1e-9)
    assert finding.evidence["threshold"] == gradients.VANISHING_MEAN_ABS


def test_vanishing_by_first_to_last_ratio():
    columns = healthy_columns()
    columns["grad_norm/0.weight"][ONSET:] = columns["grad_norm/4.weight"][ONSET:] * 1e-5
    findings = detect_vanishing_gradients(History(columns))
    assert [(f.kind, f.step, f.layer) for f in findings] == [("vanishing_gradients", ONSET, "0.weight")]
    assert findings[0].evidence["first_layer"] == "0.weight" and findings[0].evidence["last_layer"] == "4.weight"
    assert findings[0].evidence["ratio"] == pytest.approx(1e-5)


def test_one_noisy_step_below_the_limit_does_not_fire():
    columns = healthy_columns()
    columns["grad_mean_abs/2.weight"][ONSET:ONSET + gradients.PERSISTENCE - 1] = 1e-9
    columns["grad_norm"][ONSET:ONSET + gradients.PERSISTENCE - 1] = 1e4
    assert analyze_gradients(History(columns)) == []


def test_exploding_by_norm():
    columns = healthy_columns()
    columns["grad_norm"][ONSET:] = np.geomspace(200, 1e6, STEPS - ONSET)
    findings = detect_exploding_gradients(History(columns))
    assert [(f.kind, f.step, f.severity) for f in findings] == [("exploding_gradients", ONSET, "critical")]
    assert findings[0].evidence["max_norm"] == pytest.approx(1e6)
    assert findings[0].evidence["steps_above"] == STEPS - ONSET


def test_exploding_by_first_to_last_ratio():
    columns = healthy_columns()
    columns["grad_norm/0.weight"][ONSET:] = columns["grad_norm/4.weight"][ONSET:] * 500
    findings = detect_exploding_gradients(History(columns))
    assert [(f.kind, f.step, f.layer) for f in findings] == [("exploding_gradients", ONSET, "0.weight")]
    assert findings[0].evidence["ratio"] == pytest.approx(500)


@pytest.mark.parametrize("seed", range(3))
def test_exploding_by_exponential_growth_below_the_norm_limit(seed):
    columns = healthy_columns(seed)
    growth = 1.25 ** np.arange(STEPS - ONSET)          # 10x in ~10 steps, stopping at 200x
    columns["grad_norm"][ONSET:] *= np.minimum(growth, 200.0)
    assert np.nanmax(columns["grad_norm"]) < gradients.EXPLODING_NORM
    findings = detect_exploding_gradients(History(columns))
    assert [(f.kind, f.severity) for f in findings] == [("exploding_gradients", "warning")]
    assert abs(findings[0].step - ONSET) <= gradients.GROWTH_WINDOW // 2
    assert findings[0].evidence["growth"] > gradients.GROWTH_FACTOR


def test_growth_back_to_where_the_norm_started_is_not_exploding():
    columns = healthy_columns()
    columns["grad_norm"][40:80] *= 1e-3                          # a dip...
    columns["grad_norm"][80:100] *= np.geomspace(1e-3, 1, 20)    # ...and the climb back, 1000x
    assert detect_exploding_gradients(History(columns)) == []


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_gradients_name_the_layer_and_the_first_step(bad_value):
    columns = healthy_columns()
    columns["grad_nonfinite/2.weight"][ONSET:] = 7
    columns["grad_nonfinite/4.bias"][ONSET + 3:] = 1
    columns["grad_norm"][ONSET:] = bad_value
    findings = detect_non_finite_gradients(History(columns))
    assert [(f.kind, f.step, f.layer, f.severity) for f in findings] == [("non_finite", ONSET, "2.weight", "critical")]
    assert findings[0].evidence["layers"] == ["2.weight", "4.bias"]


def test_an_infinite_global_norm_alone_is_non_finite():
    columns = {"grad_norm": np.r_[np.ones(10), np.inf, np.ones(5)]}
    findings = detect_non_finite_gradients(History(columns))
    assert [(f.kind, f.step, f.layer) for f in findings] == [("non_finite", 10, None)]


@pytest.mark.parametrize("level, direction, severity", [
    (1e-6, "low", "warning"), (0.3, "high", "warning"),   # more than 10x outside the band
    (5e-5, "low", "info"), (0.05, "high", "info"),      # outside, within 10x: a note
])
def test_update_ratio_out_of_range_names_the_layers(level, direction, severity):
    columns = healthy_columns()
    for name in ("0.weight", "2.weight"):
        columns[f"update_ratio/{name}"][-gradients.RECENT_STEPS:] = level
    findings = detect_update_ratio(History(columns))
    assert [(f.kind, f.layer, f.severity) for f in findings] == [("update_ratio", "0.weight", severity)]
    assert findings[0].evidence["direction"] == direction
    assert set(findings[0].evidence["median_ratios"]) == {"0.weight", "2.weight"}
    assert findings[0].step == STEPS - gradients.RECENT_STEPS


def test_update_ratio_judges_only_the_recent_steps():
    columns = healthy_columns()
    columns["update_ratio/0.weight"][:STEPS - gradients.RECENT_STEPS] = 1.0  # early: too high, now fine
    assert detect_update_ratio(History(columns)) == []


def test_thresholds_can_be_overridden_by_their_lower_case_names():
    columns = healthy_columns()
    assert analyze_gradients(History(columns), exploding_norm=0.01)[0].kind == "exploding_gradients"
    assert analyze_gradients(History(columns), update_ratio_low=0.1)[0].kind == "update_ratio"
    assert analyze_gradients(History(columns), vanishing_mean_abs=1.0)[0].kind == "vanishing_gradients"


def test_steps_are_reported_in_the_history_s_own_units():
    columns = healthy_columns(every=10)
    columns["grad_nonfinite/0.weight"][ONSET] = 1
    assert detect_non_finite_gradients(History(columns))[0].step == ONSET * 10


# ---------------------------------------------------------------- odd input: never raise

STATISTICS = ("grad_norm", "grad_mean_abs", "grad_nonfinite", "update_ratio")
odd_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(np.nan), st.just(0.0))


@st.composite
def odd_histories(draw):
    """Any columns the detectors read (the step column too), any length (0 to 40), any values:
    constant, NaN-filled, infinite, negative, a single step."""
    length = draw(st.integers(0, 40))
    names = draw(st.lists(st.sampled_from(["step", "grad_norm"] + [f"{s}/{layer}" for s in STATISTICS
                                                                   for layer in WEIGHTS]),
                          unique=True, max_size=8))
    columns = {}
    for name in names:
        shape = draw(st.sampled_from(["constant", "nan", "random"]))
        if shape == "constant":
            columns[name] = np.full(length, draw(odd_values))
        elif shape == "nan":
            columns[name] = np.full(length, np.nan)
        else:
            columns[name] = np.array(draw(st.lists(odd_values, min_size=length, max_size=length)))
    return History(columns)


@given(odd_histories())
def test_detectors_never_raise_on_odd_histories(history):
    for findings in (analyze_gradients(history), detect_vanishing_gradients(history),
                     detect_exploding_gradients(history), detect_non_finite_gradients(history),
                     detect_update_ratio(history)):
        for finding in findings:
            assert isinstance(finding, Finding)
            assert finding.step is None or finding.step in history.steps.tolist()


@pytest.mark.parametrize("history", [History(), History({"loss": []}), History({"loss": [1.0]}),
                                     History({"grad_norm": [np.nan] * 10})])
def test_empty_and_degenerate_histories_give_no_findings(history):
    assert analyze_gradients(history) == []
