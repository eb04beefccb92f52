"""Misuse of backward and of gradients gets an error that says what was wrong and what to do,
and leaves the tensors as they were."""

import numpy as np
import pytest

import minigrad as mg


def leaf(values):
    return mg.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_second_backward_through_a_freed_graph():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"SumBackward.*second time.*retain_graph=True"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_backward_through_a_freed_graph_from_a_later_output():
    """The freed part may lie behind new ops: the error names the op whose graph was freed."""
    x = leaf([1.0, 2.0])
    hidden = x * x
    hidden.sum().backward()
    with pytest.raises(RuntimeError, match=r"MulBackward.*second time.*retain_graph=True"):
        (hidden * 2).sum().backward()


def test_backward_of_a_non_scalar_without_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*Pass a gradient of the same shape.*sum\(\)"):
        (x * 2).backward()
    assert x.grad is None


def test_backward_of_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match=r"does not require grad.*no_grad.*requires_grad_\(\)"):
        (mg.tensor([1.0, 2.0]) * 2).sum().backward()
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        loss = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()


def test_requires_grad_on_an_integer_tensor():
    with pytest.raises(RuntimeError, match=r"floating-point.*int64.*float\(\)"):
        mg.tensor([1, 2], requires_grad=True)
    integers = mg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="floating-point"):
        integers.requires_grad_()
    assert not integers.requires_grad


def test_gradient_of_the_wrong_shape_passed_to_backward():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"gradient .* shape \(3,\).* output has shape \(2,\)"):
        (x * 2).backward(np.ones(3))
    assert x.grad is None


def test_grad_outputs_of_the_wrong_count():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        mg.grad(x * 2, x, grad_outputs=[np.ones(2), np.ones(2)])


def test_retain_grad_and_register_hook_on_a_tensor_that_does_not_require_grad():
    constant = mg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="retain_grad.*does not require grad"):
        constant.retain_grad()
    with pytest.raises(RuntimeError, match="register_hook.*does not require grad"):
        constant.register_hook(lambda grad: grad)


def test_requires_grad_cannot_be_turned_off_on_a_non_leaf():
    hidden = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"leaf.*detach\(\)"):
        hidden.requires_grad = False
    assert hidden.requires_grad


def test_numpy_of_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match=r"requires grad.*detach\(\)\.numpy\(\)"):
        leaf([1.0, 2.0]).numpy()


def test_item_of_a_tensor_with_several_elements():
    with pytest.raises(ValueError, match=r"one-element.*shape \(2,\)"):
        mg.tensor([1.0, 2.0]).item()


def test_truth_value_of_a_tensor_with_several_elements():
    with pytest.raises(RuntimeError, match=r"ambiguous.*any\(\).*all\(\)"):
        bool(mg.tensor([1.0, 2.0]) > 0)


def test_a_tensor_cannot_be_made_from_strings():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        mg.tensor(["a", "b"])


def test_set_default_dtype_accepts_only_floating_dtypes():
    with pytest.raises(TypeError, match="float16, float32 and float64.*int64"):
        mg.set_default_dtype(np.int64)
    assert mg.get_default_dtype() == np.float32
