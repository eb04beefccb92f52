"""Early stopping: it stops exactly when `patience` steps have passed without an improvement of
more than `min_delta` (never before), restores the best step's weights bit for bit, mode="max"
mirrors mode="min"; with allow_second_descent it waits through a double descent while the training
loss still falls, within its extra budget, and `reason` says why it stopped."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics import EarlyStopping
from minigrad import nn

# Few distinct values, so that ties (which are not improvements) and min_delta both matter.
values_lists = st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 1.0, 2.0, math.nan]), min_size=1, max_size=40)
patiences = st.integers(1, 6)
min_deltas = st.sampled_from([0.0, 0.01, 0.1, 0.4])
modes = st.sampled_from(["min", "max"])


def expected_stop(values, patience, min_delta, mode):
    """The law, stated on its own: a value improves when it beats the best so far by more than
    min_delta (in the direction of `mode`); stop at the first step where `patience` consecutive
    steps have not improved. Returns (index of the stopping step or None, index of the best)."""
    sign = 1.0 if mode == "min" else -1.0
    best, best_index, without = math.inf, None, 0
    for index, value in enumerate(values):
        if math.isfinite(value) and sign * value < best - min_delta:
            best, best_index, without = sign * value, index, 0
        else:
            without += 1
        if without == patience:
            return index, best_index
    return None, best_index


def small_model():
    """A Linear and a BatchNorm (a buffer that must come back too)."""
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def change_weights(model, rng):
    """What a training step does to a model: new weights and new running statistics."""
    with mg.no_grad():
        for parameter in model.parameters():
            parameter.add_(mg.tensor(rng.standard_normal(parameter.shape).astype(np.float32)))
    model(mg.tensor(rng.standard_normal((5, 3)).astype(np.float32)))


def snapshot(model):
    return {name: tensor.data.copy() for name, tensor in model.state_dict().items()}


def run_stopper(stopper, values, model=None, train_losses=None, seed=0):
    """Step through the values (changing the model's weights before each step); returns the index
    of the step that returned True (or None) and the model's snapshot at every step."""
    rng = np.random.default_rng(seed)
    snapshots = []
    for index, value in enumerate(values):
        if model is not None:
            change_weights(model, rng)
            snapshots.append(snapshot(model))
        train_loss = None if train_losses is None else train_losses[index]
        if stopper.step(value, model, train_loss=train_loss):
            return index, snapshots
    return None, snapshots


# ---------------------------------------------------------------- the patience law


@given(values=values_lists, patience=patiences, min_delta=min_deltas, mode=modes)
def test_stops_exactly_when_patience_steps_passed_without_improvement(values, patience, min_delta, mode):
    stopper = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode)
    stop, best = expected_stop(values, patience, min_delta, mode)
    for index, value in enumerate(values):
        stopped = stopper.step(value)
        assert stopped == (index == stop)
        if stopped:
            break
        assert stopper.steps_without_improvement < patience  # never stops before patience is used up
    assert stopper.stopped == (stop is not None)
    assert stopper.best_step == best
    if stop is not None:
        assert stopper.steps_without_improvement == patience
        assert stopper.step(values[0]) is True  # once stopped, it stays stopped


@given(values=values_lists, patience=patiences, min_delta=min_deltas, seed=st.integers(0, 2**32 - 1))
def test_the_restored_weights_are_those_of_the_best_step_bit_for_bit(values, patience, min_delta, seed):
    model = small_model()
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    stop, snapshots = run_stopper(stopper, values, model, seed=seed)
    if stop is None or stopper.best_step is None:
        return  # never stopped, or nothing ever improved: there is nothing to restore
    restored = snapshot(model)
    best = snapshots[stopper.best_step]
    assert restored.keys() == best.keys()
    for name in best:
        assert restored[name].dtype == best[name].dtype
        assert np.array_equal(restored[name], best[name]), name
    assert "(best weights restored)" in stopper.reason


@given(values=values_lists, patience=patiences, min_delta=min_deltas)
def test_mode_max_mirrors_mode_min_on_negated_values(values, patience, min_delta):
    lowest = EarlyStopping(patience=patience, min_delta=min_delta, mode="min")
    highest = EarlyStopping(patience=patience, min_delta=min_delta, mode="max")
    assert run_stopper(lowest, values)[0] == run_stopper(highest, [-value for value in values])[0]
    assert (lowest.best_step, lowest.steps, lowest.stopped) == (highest.best_step, highest.steps, highest.stopped)
    if lowest.best_step is not None:
        assert lowest.best == -highest.best


def test_restore_best_false_keeps_the_last_weights():
    model = small_model()
    stop, snapshots = run_stopper(EarlyStopping(patience=2, restore_best=False), [1.0, 0.5, 0.6, 0.7], model)
    assert stop == 3
    assert all(np.array_equal(value, snapshots[-1][name]) for name, value in snapshot(model).items())


def test_non_finite_values_never_improve_and_tensors_are_accepted():
    stopper = EarlyStopping(patience=2)
    assert not stopper.step(mg.tensor(1.0))
    assert not stopper.step(math.nan)
    assert stopper.step(-math.inf)
    assert (stopper.best, stopper.best_step) == (1.0, 0)


def test_the_reason_says_what_happened():
    stopper = EarlyStopping(patience=3)
    run_stopper(stopper, [1.0, 0.4, 0.5, 0.4, 0.6], small_model())
    assert stopper.reason == "no improvement for 3 steps (patience 3); best 0.4 at step 1 (best weights restored)"
    assert EarlyStopping().reason == ""


@pytest.mark.parametrize("arguments, message", [
    ({"patience": 0}, "patience must be >= 1, got 0"),
    ({"min_delta": -0.1}, "min_delta must be >= 0, got -0.1"),
    ({"min_delta": math.nan}, "min_delta must be >= 0, got nan"),
    ({"mode": "avg"}, "mode must be 'min' or 'max', got 'avg'"),
])
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**arguments)


# ---------------------------------------------------------------- double descent


FIRST_MINIMUM, SECOND_MINIMUM, LENGTH = 30, 110, 200


def double_descent_validation(first_low=1.0, second_low=0.6):
    """Validation loss falling to `first_low` at step 30, rising to a peak (the interpolation
    threshold) around step 70, falling again to the lower `second_low` at step 110, then rising."""
    t = np.arange(LENGTH, dtype=np.float64)
    first_valley = first_low + 0.001 * (t - FIRST_MINIMUM) ** 2
    second_valley = second_low + 0.0004 * (t - SECOND_MINIMUM) ** 2
    return np.minimum(first_valley, second_valley)


def falling_training_loss(tau=40):
    """The training loss of a model still fitting its training set: down 1 / tau per step (in log)."""
    return 2.0 * np.exp(-np.arange(LENGTH) / tau)


def test_without_the_flag_it_stops_at_the_first_minimum():
    patience = 5
    model = small_model()
    stopper = EarlyStopping(patience=patience)
    stop, snapshots = run_stopper(stopper, double_descent_validation(), model, falling_training_loss())
    assert stop == FIRST_MINIMUM + patience
    assert stopper.best_step == FIRST_MINIMUM
    assert all(np.array_equal(value, snapshots[FIRST_MINIMUM][name]) for name, value in snapshot(model).items())


# "Still falling" means by more than 5 % per `patience` steps: a short patience needs a steeper fall.
@pytest.mark.parametrize("patience, tau", [(1, 10), (2, 10), (3, 40), (10, 40)])
def test_with_the_flag_it_waits_for_the_second_descent_and_keeps_its_weights(patience, tau):
    model = small_model()
    validation = double_descent_validation()
    # The valley's far side is below the first minimum 49 steps after it: let the budget cover it.
    budget = 60
    stopper = EarlyStopping(patience=patience, allow_second_descent=True, second_descent_patience=budget)
    stop, snapshots = run_stopper(stopper, validation, model, falling_training_loss(tau))
    assert stopper.best_step == SECOND_MINIMUM and stopper.best == validation.min()
    assert stop == SECOND_MINIMUM + patience + budget  # afterwards the training loss still falls: the budget ends it
    assert all(np.array_equal(value, snapshots[SECOND_MINIMUM][name]) for name, value in snapshot(model).items())
    first_new_best = int(np.argmax(validation[FIRST_MINIMUM + 1:] < validation[FIRST_MINIMUM])) + FIRST_MINIMUM + 1
    assert stopper.second_descent_step == first_new_best
    assert f"including {budget} extra steps allowed for a further descent that did not come" in stopper.reason
    assert f"best 0.6 at step {SECOND_MINIMUM}" in stopper.reason
    assert f"a second descent after patience ran out gave a new best at step {first_new_best}" in stopper.reason
    assert stopper.reason.endswith("(best weights restored)")


def test_with_the_flag_it_stops_once_the_training_loss_stops_falling():
    patience = 5
    train_loss = falling_training_loss()
    train_loss[FIRST_MINIMUM - patience:] = train_loss[FIRST_MINIMUM - patience]  # fit: no second descent to come
    stopper = EarlyStopping(patience=patience, allow_second_descent=True, second_descent_patience=60)
    stop, _ = run_stopper(stopper, double_descent_validation(), train_losses=train_loss)
    assert stop == FIRST_MINIMUM + patience and stopper.best_step == FIRST_MINIMUM
    assert "the training loss stopped falling, so no second descent is expected" in stopper.reason
    assert stopper.second_descent_step is None


def test_with_the_flag_the_default_budget_is_three_patiences():
    patience = 4
    validation = np.concatenate([np.linspace(1.0, 0.5, 10), np.linspace(0.6, 2.0, 90)])  # no second descent
    stopper = EarlyStopping(patience=patience, allow_second_descent=True)
    stop, _ = run_stopper(stopper, validation, train_losses=falling_training_loss())
    assert stop == 9 + patience + 3 * patience
    assert "including 12 extra steps allowed for a further descent that did not come" in stopper.reason


@pytest.mark.parametrize("train_losses", [None, [math.nan] * LENGTH, [0.0] * LENGTH],
                         ids=["not given", "NaN", "zero"])
def test_with_the_flag_but_no_usable_training_loss_it_stops_at_patience_and_says_why(train_losses):
    patience = 3
    stopper = EarlyStopping(patience=patience, allow_second_descent=True)
    stop, _ = run_stopper(stopper, double_descent_validation(), train_losses=train_losses)
    assert stop == FIRST_MINIMUM + patience
    assert "training losses were not all given (train_loss=...), finite and positive" in stopper.reason
    assert "so a second descent could not be judged" in stopper.reason
