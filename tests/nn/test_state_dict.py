"""state_dict / load_state_dict: exact round trips, one error listing every bad key, and a
module left bit-for-bit unchanged when loading fails."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn


def make_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))


def train_a_little(model):
    """A few forward passes in training mode, so BatchNorm's running statistics move."""
    for _ in range(3):
        model(mg.randn(8, 3))
    return model


def snapshot(model):
    """Every parameter and buffer as (dtype, shape, bytes): equal snapshots are bit-for-bit equal."""
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return {name: (t.dtype, t.shape, t.data.tobytes()) for name, t in tensors}


def test_state_dict_holds_parameters_and_persistent_buffers_in_order():
    assert list(make_model().state_dict()) == [
        "0.weight", "0.bias",
        "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "3.weight", "3.bias",
    ]
    assert make_model().state_dict()["1.num_batches_tracked"].dtype == np.int64


def test_state_dict_values_are_detached_and_share_memory():
    model = make_model()
    state = model.state_dict()
    weight = state["0.weight"]
    assert type(weight) is mg.Tensor and not weight.requires_grad
    with mg.no_grad():
        model[0].weight.mul_(2.0)
    np.testing.assert_array_equal(weight.data, model[0].weight.data)
    assert model.state_dict(keep_vars=True)["0.weight"] is model[0].weight


def test_round_trip_is_exact():
    source = train_a_little(make_model())
    target = make_model()
    parameters_before = list(target.parameters())
    result = target.load_state_dict(source.state_dict())
    assert result == ([], []) and repr(result) == "<All keys matched successfully>"
    assert snapshot(target) == snapshot(source)
    # Loaded in place: the Parameter objects (which optimizers hold) are the same.
    assert all(now is then for now, then in zip(target.parameters(), parameters_before))
    x = mg.randn(5, 3)
    np.testing.assert_array_equal(target.eval()(x).data, source.eval()(x).data)


def test_ndarray_values_are_accepted_and_cast_to_the_parameter_dtype():
    model = nn.Linear(2, 2)
    weight = np.arange(4.0).reshape(2, 2)
    model.load_state_dict({"weight": weight, "bias": np.array([1, 2])})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, weight)
    np.testing.assert_array_equal(model.bias.data, [1.0, 2.0])


def test_every_problem_is_listed_in_one_error_and_nothing_is_loaded():
    model = train_a_little(make_model())
    before = snapshot(model)
    state = make_model().state_dict()
    del state["0.bias"]
    state["extra"] = mg.zeros(1)
    state["3.weight"] = mg.zeros(3, 4)
    state["1.num_batches_tracked"] = np.array(2.5)
    state["1.running_mean"] = np.array(["a", "b", "c", "d"])
    state["1.weight"] = [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(state)
    error = caught.value
    assert isinstance(error, RuntimeError)
    assert error.missing_keys == ["0.bias"] and error.unexpected_keys == ["extra"]
    assert set(error.mismatched_keys) == {"3.weight", "1.num_batches_tracked", "1.running_mean", "1.weight"}
    message = str(error)
    for key in ["0.bias", "extra", "3.weight", "1.num_batches_tracked", "1.running_mean", "1.weight"]:
        assert key in message
    assert "shape (3, 4)" in message and "float64" in message and "<U1" in message and "list" in message
    assert "unchanged" in message
    assert snapshot(model) == before


def test_strict_false_returns_the_named_tuple_and_loads_what_matches():
    model = make_model()
    source = make_model()
    state = source.state_dict()
    del state["3.bias"]
    state["head.weight"] = mg.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["head.weight"]
    np.testing.assert_array_equal(model[3].weight.data, source[3].weight.data)
    assert not np.array_equal(model[3].bias.data, source[3].bias.data)


def test_strict_false_still_refuses_shape_mismatches():
    model = make_model()
    before = snapshot(model)
    state = make_model().state_dict()
    state["0.weight"] = mg.zeros(3, 4)
    with pytest.raises(nn.StateDictError, match="0.weight: size mismatch"):
        model.load_state_dict(state, strict=False)
    assert snapshot(model) == before


def test_load_state_dict_wants_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(1, 1).load_state_dict([("weight", mg.zeros(1, 1))])


def test_tied_parameters_load_through_either_name():
    model = nn.Module()
    model.encoder = nn.Linear(2, 2)
    model.decoder = model.encoder
    state = model.state_dict()
    assert list(state) == ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"]
    fresh = nn.Linear(2, 2).state_dict()
    model.load_state_dict({"encoder.weight": fresh["weight"], "encoder.bias": fresh["bias"],
                           "decoder.weight": fresh["weight"], "decoder.bias": fresh["bias"]})
    np.testing.assert_array_equal(model.decoder.weight.data, fresh["weight"].data)


ACTIONS = ["keep", "drop", "rename", "reshape", "bad dtype", "not an array"]


def corrupted(value, action):
    """`value` (a Tensor) spoiled in the way `action` names."""
    array = value.data.copy()
    if action == "reshape":
        return array.reshape(array.shape + (1,))
    if action == "bad dtype":
        return array + 0.5 if array.dtype.kind == "i" else array.astype(object)
    if action == "not an array":
        return array.tolist()
    return array


@st.composite
def key_actions(draw):
    """One action per state-dict key, drawn from a small random pool of actions, so that
    clean loads (all "keep", or only drops and renames with strict=False) are common too."""
    pool = draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True))
    return draw(st.lists(st.sampled_from(pool), min_size=9, max_size=9))


@given(
    actions=key_actions(),
    as_tensor=st.lists(st.booleans(), min_size=9, max_size=9),
    strict=st.booleans(),
)
def test_load_either_succeeds_exactly_or_lists_every_bad_key_and_changes_nothing(actions, as_tensor, strict):
    model = train_a_little(make_model())
    before = snapshot(model)
    source = train_a_little(make_model()).state_dict()
    state, missing, unexpected, mismatched = {}, [], [], set()
    for (key, value), action, wrap in zip(source.items(), actions, as_tensor):
        if action in ("drop", "rename"):
            missing.append(key)
            if action == "rename":
                state[key + "_renamed"] = value
                unexpected.append(key + "_renamed")
            continue
        if action != "keep":
            mismatched.add(key)
        new_value = corrupted(value, action)
        state[key] = mg.tensor(new_value) if wrap and action == "keep" else new_value

    should_fail = bool(mismatched) or (strict and bool(missing or unexpected))
    if should_fail:
        with pytest.raises(nn.StateDictError) as caught:
            model.load_state_dict(state, strict=strict)
        error = caught.value
        assert (error.missing_keys, error.unexpected_keys) == (missing, unexpected)
        assert set(error.mismatched_keys) == mismatched
        listed = mismatched | (set(missing) | set(unexpected) if strict else set())
        for key in listed:
            assert f'"{key}"' in str(error) or f"\t{key}:" in str(error)
        assert snapshot(model) == before
    else:
        result = model.load_state_dict(state, strict=strict)
        assert result == (missing, unexpected)
        after = snapshot(model)
        for key, value in source.items():
            if key in state:
                assert after[key] == (value.dtype, value.shape, value.data.tobytes())
            else:
                assert after[key] == before[key]
