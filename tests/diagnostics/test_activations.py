"""Activation-health rules (dead ReLU units, saturated tanh/sigmoid units): each fires on a history
built to show it, at the step it starts and naming the layer, stays silent on healthy histories,
and never raises on odd ones; on a real model the Recorder's columns feed them."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics import Finding, History
from diagnostics import activations
from diagnostics.activations import analyze_activations, detect_dead_relus, detect_saturation
from diagnostics.probes import Recorder
from minigrad import nn

STEPS = 150
ONSET = 60


def healthy_columns(seed=0, steps=STEPS, noise=0.05):
    """ReLU layers '1' and '3' with about half of the outputs 0 and a few % of units dead; a tanh
    layer '5' with a few % of outputs saturated."""
    rng = np.random.default_rng(seed)

    def around(level):
        return np.clip(level + noise * rng.standard_normal(steps), 0, 1)

    return {
        "step": np.arange(steps, dtype=float),
        "act_zero_frac/1": around(0.5), "act_dead_frac/1": around(0.05),
        "act_zero_frac/3": around(0.5), "act_dead_frac/3": around(0.1),
        "act_sat_soft/5": around(0.05), "act_sat_hard/5": np.zeros(steps),
    }


@given(seed=st.integers(0, 2**32 - 1), noise=st.floats(0.0, 0.15), steps=st.sampled_from([1, 4, 50, 150]))
def test_a_healthy_history_has_no_findings(seed, noise, steps):
    assert analyze_activations(History(healthy_columns(seed, steps, noise))) == []


def test_dead_relus_name_the_layer_and_the_onset():
    columns = healthy_columns()
    columns["act_dead_frac/3"][ONSET:] = 0.9
    columns["act_zero_frac/3"][ONSET:] = 0.95
    findings = detect_dead_relus(History(columns))
    assert [(f.kind, f.step, f.layer, f.severity) for f in findings] == [("dead_relu", ONSET, "3", "critical")]
    evidence = findings[0].evidence
    assert evidence["dead_fraction_window"] == pytest.approx(0.9)
    assert evidence["zero_fraction_batch"] == pytest.approx(0.95)
    assert evidence["threshold"] == activations.DEAD_LAYER_FRACTION
    assert "90%" in findings[0].message


def test_dead_relus_at_exactly_the_threshold_do_not_fire():
    columns = healthy_columns()
    columns["act_dead_frac/1"][:] = activations.DEAD_LAYER_FRACTION
    assert detect_dead_relus(History(columns)) == []


def test_dead_relus_need_to_persist():
    columns = healthy_columns()
    columns["act_dead_frac/1"][ONSET:ONSET + activations.PERSISTENCE - 1] = 0.9
    assert detect_dead_relus(History(columns)) == []
    columns["act_dead_frac/1"][ONSET + activations.PERSISTENCE - 1] = 0.9
    assert detect_dead_relus(History(columns))[0].step == ONSET


def test_unit_stats_add_born_dead_and_the_distance_to_reviving():
    columns = healthy_columns()
    columns["act_dead_frac/1"][:] = 0.75
    units = {"1": {"active_fraction": np.array([0.5, 0.0, 0.0, 0.0]),
                   "max_preactivation": np.array([2.0, -1.0, -3.0, -0.5]),
                   "born_dead": np.array([False, True, False, False]), "samples": 100}}
    finding = detect_dead_relus(History(columns), units)[0]
    assert finding.evidence["born_dead_fraction"] == 0.25
    assert finding.evidence["median_max_preactivation_of_dead"] == -1.0
    assert "25% were dead from initialization" in finding.message


def test_saturation_names_the_layer_and_the_onset():
    columns = healthy_columns()
    columns["act_sat_soft/5"][ONSET:] = 0.8
    columns["act_sat_hard/5"][ONSET:] = 0.3
    findings = detect_saturation(History(columns))
    assert [(f.kind, f.step, f.layer, f.severity) for f in findings] == [("saturation", ONSET, "5", "critical")]
    assert findings[0].evidence["soft_fraction"] == 0.8 and findings[0].evidence["hard_fraction"] == 0.3
    assert findings[0].evidence["threshold"] == activations.SATURATED_LAYER_FRACTION


def test_thresholds_can_be_overridden():
    columns = healthy_columns(noise=0.0)
    assert analyze_activations(History(columns), dead_layer_fraction=0.01)[0].kind == "dead_relu"
    assert analyze_activations(History(columns), saturated_layer_fraction=0.01)[0].kind == "saturation"
    assert analyze_activations(History(columns), saturated_layer_fraction=0.01, persistence=STEPS + 1) != []


# ---------------------------------------------------------------- from a real model


def test_a_layer_killed_by_a_negative_bias_is_found_through_the_recorder():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    with mg.no_grad():
        model[2].bias.fill_(-100.0)
    recorder = Recorder(model)
    rng = np.random.default_rng(0)
    for _ in range(activations.PERSISTENCE + 2):
        model(mg.tensor(rng.standard_normal((32, 4)).astype(np.float32))).sum().backward()
        recorder.step(loss=0.0)
    recorder.detach()
    units = {name: recorder.unit_stats(name) for name in recorder.probes}
    findings = detect_dead_relus(recorder.history, units)
    assert [(f.layer, f.step) for f in findings] == [("3", 0)]
    assert findings[0].evidence["born_dead_fraction"] == 1.0
    assert findings[0].evidence["median_max_preactivation_of_dead"] < -50


def test_a_saturated_tanh_layer_is_found_through_the_recorder():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    with mg.no_grad():
        model[0].weight.mul_(50.0)
    recorder = Recorder(model)
    rng = np.random.default_rng(0)
    for _ in range(activations.PERSISTENCE):
        model(mg.tensor(rng.standard_normal((32, 4)).astype(np.float32))).sum().backward()
        recorder.step(loss=0.0)
    recorder.detach()
    findings = detect_saturation(recorder.history)
    assert [(f.kind, f.layer, f.step) for f in findings] == [("saturation", "1", 0)]


# ---------------------------------------------------------------- odd input: never raise

odd_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(np.nan))
COLUMNS = ("step", "act_dead_frac/1", "act_zero_frac/1", "act_sat_soft/5", "act_sat_hard/5")


@st.composite
def odd_histories(draw):
    length = draw(st.integers(0, 30))
    columns = {}
    for name in draw(st.lists(st.sampled_from(COLUMNS), unique=True)):
        kind = draw(st.sampled_from(["constant", "nan", "random"]))
        if kind == "constant":
            columns[name] = np.full(length, draw(odd_values))
        elif kind == "nan":
            columns[name] = np.full(length, np.nan)
        else:
            columns[name] = np.array(draw(st.lists(odd_values, min_size=length, max_size=length)))
    return History(columns)


@given(odd_histories(), st.booleans())
def test_detectors_never_raise_on_odd_histories(history, with_units):
    units = {"1": {"active_fraction": np.zeros(0), "max_preactivation": np.zeros(0),
                   "born_dead": np.zeros(0, dtype=bool), "samples": 0}} if with_units else None
    for finding in analyze_activations(history, units):
        assert isinstance(finding, Finding) and finding.kind in ("dead_relu", "saturation")


@pytest.mark.parametrize("history", [History(), History({"act_dead_frac/1": [1.0]}),
                                     History({"act_sat_soft/1": [np.nan] * 20})])
def test_empty_and_degenerate_histories(history):
    findings = analyze_activations(history)
    assert all(f.kind == "dead_relu" for f in findings)
