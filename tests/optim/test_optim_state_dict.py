"""Optimizer state dicts: PyTorch's layout, a resumed run identical to an uninterrupted one, and
loading that checks everything before changing anything."""

import copy

import numpy as np
import pytest

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop

CONFIGS = [
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.01)),
    (AdamW, dict(lr=0.05, weight_decay=0.1)),
    (RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]
CONFIG_IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CONFIGS)]

TARGET = np.linspace(-1.0, 1.0, 6)


def make_params(arrays=None):
    """Three parameters, the last of which the loss never uses (it has no gradient, no state)."""
    if arrays is None:
        arrays = [np.arange(6.0).reshape(2, 3) / 7, np.array([0.3, -0.2]), np.ones(4)]
    return [mg.tensor(array, requires_grad=True) for array in arrays]


def make_optimizer(optimizer_class, params, options):
    """Two groups, the second with its own learning rate."""
    return optimizer_class([{"params": params[:1]}, {"params": params[1:], "lr": options["lr"] / 2}], **options)


def train(optimizer, params, steps):
    """Run `steps` steps on a fixed quartic loss; return each step's parameter values."""
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        w, b, _ = params
        residual = w.reshape(6) - mg.tensor(TARGET)
        loss = (residual * residual * residual * residual).sum() + (b * b).sum() * (w * w).sum()
        loss.backward()
        optimizer.step()
        trajectory.append([param.data.copy() for param in params])
    return trajectory


def assert_state_dicts_equal(actual, expected):
    assert type(actual) is type(expected)
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_state_dicts_equal(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_state_dicts_equal(a, e)
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    else:
        assert actual == expected


@pytest.mark.parametrize("optimizer_class, options", CONFIGS, ids=CONFIG_IDS)
def test_resuming_from_a_state_dict_continues_the_run_bit_for_bit(optimizer_class, options):
    params = make_params()
    optimizer = make_optimizer(optimizer_class, params, options)
    train(optimizer, params, 3)
    saved_params = [param.data.copy() for param in params]
    saved_state = optimizer.state_dict()
    uninterrupted = train(optimizer, params, 4)

    resumed_params = make_params(saved_params)
    other_options = dict(options, lr=options["lr"] * 3)  # the loaded groups replace these
    resumed_optimizer = make_optimizer(optimizer_class, resumed_params, other_options)
    resumed_optimizer.load_state_dict(saved_state)
    resumed = train(resumed_optimizer, resumed_params, 4)

    for step_uninterrupted, step_resumed in zip(uninterrupted, resumed):
        for a, b in zip(step_uninterrupted, step_resumed):
            np.testing.assert_array_equal(a, b)
    assert_state_dicts_equal(resumed_optimizer.state_dict(), optimizer.state_dict())


def test_the_layout_is_pytorchs():
    params = make_params()
    optimizer = make_optimizer(Adam, params, dict(lr=0.1))
    train(optimizer, params, 2)
    state = optimizer.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert [group["params"] for group in state["param_groups"]] == [[0], [1, 2]]
    assert [group["lr"] for group in state["param_groups"]] == [0.1, 0.05]
    assert set(state["state"]) == {0, 1}  # parameter 2 never had a gradient
    assert state["state"][0]["step"] == 2
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["state"][1]["exp_avg"].shape == (2,)


def test_the_state_dict_is_a_copy():
    params = make_params()
    optimizer = make_optimizer(SGD, params, dict(lr=0.1, momentum=0.9))
    train(optimizer, params, 2)
    state = optimizer.state_dict()
    snapshot = copy.deepcopy(state)
    state["state"][0]["momentum_buffer"][...] = 123.0
    state["param_groups"][0]["lr"] = 7.0
    assert optimizer.param_groups[0]["lr"] == 0.1
    assert not np.any(optimizer.state[params[0]]["momentum_buffer"] == 123.0)
    train(optimizer, params, 2)
    assert_state_dicts_equal(optimizer.state_dict()["param_groups"], snapshot["param_groups"])
    assert not np.array_equal(optimizer.state_dict()["state"][0]["momentum_buffer"],
                              snapshot["state"][0]["momentum_buffer"])


def test_loading_copies_the_arrays_and_casts_them_to_the_parameter_dtype():
    params = make_params()
    optimizer = make_optimizer(Adam, params, dict(lr=0.1))
    train(optimizer, params, 2)
    state = optimizer.state_dict()

    float32_params = make_params([param.data.astype(np.float32) for param in params])
    target = make_optimizer(Adam, float32_params, dict(lr=0.1))
    target.load_state_dict(state)
    loaded = target.state[float32_params[0]]["exp_avg"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, state["state"][0]["exp_avg"].astype(np.float32))
    state["state"][0]["exp_avg"][...] = 0.0
    assert loaded.any()


def wrong_group_count(state):
    state["param_groups"].pop()


def wrong_param_count(state):
    state["param_groups"][1]["params"].pop()


def wrong_shape(state):
    state["state"][1]["exp_avg"] = np.zeros(3)


def unknown_param(state):
    state["state"][9] = state["state"][0]


def other_optimizer(state):
    for group in state["param_groups"]:
        del group["betas"]


def not_a_state_dict(state):
    del state["state"]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (wrong_group_count, "1 parameter groups, this optimizer has 2"),
        (wrong_param_count, "group 1 has 1 parameters in the state dict and 2 in this optimizer"),
        (wrong_shape, r"'exp_avg' of parameter 1 has shape \(3,\), but the parameter has shape \(2,\)"),
        (unknown_param, "state for parameter 9"),
        (other_optimizer, "lacks the Adam hyperparameters \\['betas'\\]"),
        (not_a_state_dict, "expected a dict with 'state' and 'param_groups'"),
    ],
)
def test_a_wrong_state_dict_raises_and_leaves_the_optimizer_unchanged(corrupt, message):
    source_params = make_params()
    source = make_optimizer(Adam, source_params, dict(lr=0.1, amsgrad=True))
    train(source, source_params, 3)
    bad_state = source.state_dict()
    corrupt(bad_state)

    params = make_params()
    optimizer = make_optimizer(Adam, params, dict(lr=0.2))
    train(optimizer, params, 1)
    before = optimizer.state_dict()
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(bad_state)
    assert_state_dicts_equal(optimizer.state_dict(), before)


def test_a_state_dict_survives_a_round_trip_to_disk(tmp_path):
    params = make_params()
    optimizer = make_optimizer(Adam, params, dict(lr=0.1, amsgrad=True))
    train(optimizer, params, 3)
    path = tmp_path / "optimizer.npz"
    mg.save(optimizer.state_dict(), path)
    fresh = make_optimizer(Adam, make_params([param.data.copy() for param in params]), dict(lr=0.5))
    fresh.load_state_dict(mg.load(path))
    assert_state_dicts_equal(fresh.state_dict(), optimizer.state_dict())
