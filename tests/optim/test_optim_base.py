"""The Optimizer base class: parameter groups, validation, zero_grad, step and its closure,
and the in-place update seen by autograd."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop


def leaf(*shape, value=1.0):
    return mg.tensor(np.full(shape, value), requires_grad=True)


# ----------------------------------------------------------------------------------------------
# building parameter groups
# ----------------------------------------------------------------------------------------------


def test_params_can_be_any_iterable_of_tensors():
    params = [leaf(2), leaf(3)]
    optimizer = SGD(iter(params), lr=0.1)
    assert len(optimizer.param_groups) == 1
    assert optimizer.param_groups[0]["params"] == params
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_dict_groups_override_the_defaults_they_set():
    a, b = leaf(2), leaf(3)
    optimizer = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1, weight_decay=0.01)
    first, second = optimizer.param_groups
    assert (first["lr"], first["momentum"], first["weight_decay"]) == (0.1, 0, 0.01)
    assert (second["lr"], second["momentum"], second["weight_decay"]) == (0.5, 0.9, 0.01)
    assert second["params"] == [b]
    assert set(first) == set(second) == set(optimizer.defaults) | {"params"}


@pytest.mark.parametrize(
    "params, error, message",
    [
        (leaf(2), TypeError, "iterable of tensors"),
        ([], ValueError, "empty parameter list"),
        ({leaf(2)}, TypeError, "ordered collection"),
        ([np.ones(2)], TypeError, "ndarray"),
        ([leaf(2) * 2], ValueError, "can't optimize a non-leaf Tensor"),
        ([mg.tensor(np.ones(2))], ValueError, "does not require grad"),
    ],
    ids=["single tensor", "empty", "set", "array", "non-leaf", "no grad"],
)
def test_bad_parameters_are_refused_with_a_clear_error(params, error, message):
    with pytest.raises(error, match=message):
        SGD(params, lr=0.1)


def test_add_param_group_takes_defaults_and_refuses_shared_or_repeated_parameters():
    a, b, c = leaf(2), leaf(3), leaf(4)
    optimizer = Adam([a], lr=0.1)
    optimizer.add_param_group({"params": [b], "lr": 0.01})
    assert optimizer.param_groups[1]["lr"] == 0.01
    assert optimizer.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [c, a]})
    with pytest.raises(ValueError, match="more than once"):
        optimizer.add_param_group({"params": [c, c]})
    with pytest.raises(ValueError, match="'params'"):
        optimizer.add_param_group({"lr": 0.1})
    assert len(optimizer.param_groups) == 2


def test_a_group_dict_given_by_the_user_is_not_modified():
    group = {"params": (leaf(2),), "lr": 0.5}
    SGD([group], lr=0.1)
    assert set(group) == {"params", "lr"}


# ----------------------------------------------------------------------------------------------
# hyperparameter validation (PyTorch's rules)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer_class, options, message",
    [
        (SGD, dict(lr=-0.1), "invalid lr"),
        (SGD, dict(lr=math.nan), "invalid lr"),
        (SGD, dict(momentum=-0.5), "invalid momentum"),
        (SGD, dict(weight_decay=-1e-4), "invalid weight_decay"),
        (SGD, dict(nesterov=True), "Nesterov momentum requires a momentum"),
        (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "zero dampening"),
        (Adam, dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
        (Adam, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
        (Adam, dict(betas=(0.9,)), "pair"),
        (Adam, dict(eps=-1e-8), "invalid eps"),
        (AdamW, dict(weight_decay=-0.01), "invalid weight_decay"),
        (RMSprop, dict(alpha=-0.9), "invalid alpha"),
        (RMSprop, dict(momentum=-0.9), "invalid momentum"),
        (Adagrad, dict(lr_decay=-0.1), "invalid lr_decay"),
        (Adagrad, dict(initial_accumulator_value=-1.0), "invalid initial_accumulator_value"),
    ],
)
def test_invalid_hyperparameters_are_refused(optimizer_class, options, message):
    with pytest.raises(ValueError, match=message):
        optimizer_class([leaf(2)], **options)


def test_invalid_hyperparameters_of_one_group_are_refused():
    with pytest.raises(ValueError, match="invalid lr"):
        SGD([{"params": [leaf(2)]}, {"params": [leaf(3)], "lr": -1.0}], lr=0.1)


# ----------------------------------------------------------------------------------------------
# zero_grad and step
# ----------------------------------------------------------------------------------------------


def test_zero_grad_sets_to_none_or_zeros_in_place():
    a, b = leaf(3), leaf(2)
    optimizer = SGD([a, b], lr=0.1)
    (a.sum() + b.sum()).backward()
    grad_array = a.grad
    optimizer.zero_grad(set_to_none=False)
    assert a.grad is grad_array and not a.grad.any() and not b.grad.any()
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None


def test_parameters_without_grad_are_skipped_and_get_no_state():
    used, unused = leaf(3), leaf(3)
    optimizer = Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    optimizer.step()
    assert not np.array_equal(used.data, np.ones(3))
    np.testing.assert_array_equal(unused.data, np.ones(3))
    assert used in optimizer.state and unused not in optimizer.state


def test_plain_sgd_step_is_theta_minus_lr_grad():
    w = mg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    optimizer = SGD([w], lr=0.1)
    (w * w).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(w.data, np.array([1.0, -2.0, 3.0]) * (1 - 0.1 * 2))
    assert optimizer.state == {}  # no momentum, no state, as in PyTorch


def test_step_with_closure_returns_its_loss_and_runs_it_with_grad_enabled():
    w = leaf(2, value=2.0)
    optimizer = SGD([w], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with mg.no_grad():
        loss = optimizer.step(closure)
    assert loss.item() == 8.0
    np.testing.assert_array_equal(w.data, [1.0, 1.0])  # 2 - 0.25 * 4


def test_step_leaves_parameters_as_leaves_that_require_grad():
    w = leaf(3)
    optimizer = RMSprop([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    optimizer.step()
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


def test_learning_rate_edited_between_steps_takes_effect():
    w = leaf(1)
    optimizer = SGD([w], lr=0.1)
    w.grad = np.ones(1)
    optimizer.param_groups[0]["lr"] = 0.0
    optimizer.step()
    np.testing.assert_array_equal(w.data, [1.0])
    optimizer.param_groups[0]["lr"] = 0.5
    optimizer.step()
    np.testing.assert_array_equal(w.data, [0.5])


@pytest.mark.parametrize("optimizer_class", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_backward_through_a_graph_saved_before_the_step_raises(optimizer_class):
    """The step changes the parameter in place, so a graph that saved its old value is stale."""
    w = leaf(3)
    optimizer = optimizer_class([w], lr=0.1)
    (w * w).sum().backward()
    stale = (w * w).sum()
    version = w._version
    optimizer.step()
    assert w._version > version
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        stale.backward()


def test_the_base_class_has_no_update_rule():
    w = leaf(2)
    optimizer = Optimizer([w], {"lr": 0.1})
    w.grad = np.ones(2)
    with pytest.raises(NotImplementedError):
        optimizer.step()


def test_repr_lists_each_group():
    text = repr(SGD([{"params": [leaf(2)]}, {"params": [leaf(2)], "lr": 0.5}], lr=0.1, momentum=0.9))
    assert "Parameter Group 1" in text and "lr: 0.5" in text and "momentum: 0.9" in text
