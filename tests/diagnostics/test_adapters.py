"""Adapters: a PyTorch model recorded through its adapter gives the same columns and values as
the same model in minigrad (float64, identical weights and data). Skipped without torch."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from diagnostics.adapters import ACTIVATION_KINDS, activation_kind, adapt
from diagnostics.adapters.minigrad_adapter import MinigradAdapter
from diagnostics.model_checks import audit_init, dead_units
from diagnostics.probes import Recorder
from minigrad import nn, optim

STEPS = 4


def test_activation_kinds_are_found_by_class_name():
    assert activation_kind(nn.ReLU()) == "relu"
    assert activation_kind(nn.Tanh()) == "tanh"
    assert activation_kind(nn.Linear(2, 2)) is None
    assert set(ACTIVATION_KINDS.values()) >= {"relu", "leaky_relu", "gelu", "tanh", "sigmoid"}


def test_adapt_picks_the_minigrad_adapter_and_refuses_other_objects():
    assert isinstance(adapt(nn.Linear(2, 2)), MinigradAdapter)
    with pytest.raises(TypeError, match="expected a minigrad.nn.Module or a torch.nn.Module"):
        adapt(object())


# ---------------------------------------------------------------- the same run in both frameworks


def weights_and_data():
    rng = np.random.default_rng(7)
    shapes = {"0.weight": (8, 3), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
              "4.weight": (2, 8), "4.bias": (2,)}
    weights = {name: rng.standard_normal(shape) * 0.6 for name, shape in shapes.items()}
    weights["0.bias"][:2] = -50.0  # two dead units
    return weights, rng.standard_normal((32, 3)), rng.integers(0, 2, 32)


def minigrad_run():
    weights, x, y = weights_and_data()
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    model.load_state_dict({name: mg.tensor(value) for name, value in weights.items()})
    recorder = Recorder(model)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(mg.tensor(x)), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recorder.step(loss=loss.item(), lr=0.05)
    recorder.detach()
    return recorder


def torch_run(torch):
    weights, x, y = weights_and_data()
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 2)).double()
    model.load_state_dict({name: torch.tensor(value) for name, value in weights.items()})
    recorder = Recorder(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(STEPS):
        loss = torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recorder.step(loss=loss, lr=0.05)
    recorder.detach()
    return recorder


def test_a_torch_model_records_the_same_columns_and_values():
    torch = pytest.importorskip("torch")
    ours, theirs = minigrad_run().history, torch_run(torch).history
    assert list(theirs.columns) == list(ours.columns)
    assert len(theirs) == STEPS
    for name in ours.columns:
        # Statistics of float64 values: equal up to the last bits of the two libraries' kernels.
        np.testing.assert_allclose(theirs[name], ours[name], rtol=1e-7, atol=1e-12, err_msg=name)
    for name in ("update_ratio/0.weight", "act_dead_frac/1", "act_sat_soft/3", "act_grad_std/3"):
        assert name in ours.columns


def test_unit_stats_and_layer_kinds_agree_across_frameworks():
    torch = pytest.importorskip("torch")
    ours, theirs = minigrad_run(), torch_run(torch)
    assert theirs.layer_kinds() == ours.layer_kinds() == {"1": "relu", "3": "tanh"}
    for key, value in ours.unit_stats("1").items():
        np.testing.assert_allclose(theirs.unit_stats("1")[key], value, rtol=1e-9)


def test_detach_removes_torch_hooks():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU())
    recorder = Recorder(model)
    recorder.detach()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_model_checks_run_on_torch_models_too():
    torch = pytest.importorskip("torch")
    weights, x, _ = weights_and_data()
    ours = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    ours.load_state_dict({name: mg.tensor(value) for name, value in weights.items()})
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 2)).double()
    theirs.load_state_dict({name: torch.tensor(value) for name, value in weights.items()})
    theirs.train()
    ours_dead, theirs_dead = dead_units(ours, x, batch_size=10), dead_units(theirs, x, batch_size=10)
    assert list(theirs_dead) == list(ours_dead) == ["1"]
    assert ours_dead["1"].dead[:2].all()
    np.testing.assert_array_equal(theirs_dead["1"].dead, ours_dead["1"].dead)
    np.testing.assert_allclose(theirs_dead["1"].max_preactivation, ours_dead["1"].max_preactivation, rtol=1e-12)
    assert theirs.training  # the mode is restored
    ours_audit, theirs_audit = audit_init(ours, x), audit_init(theirs, x)
    assert ours_audit and [f.layer for f in theirs_audit] == [f.layer for f in ours_audit]
    for mine, other in zip(ours_audit, theirs_audit):
        assert other.evidence["predicted"] == pytest.approx(mine.evidence["predicted"], rel=1e-9)
        assert other.evidence["measured"] == pytest.approx(mine.evidence["measured"], rel=1e-9)
