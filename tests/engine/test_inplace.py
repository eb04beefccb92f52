"""In-place changes: they bump a version counter that views share, and a backward pass that
needs a value changed since the forward pass refuses to run instead of returning a wrong
gradient."""

import numpy as np
import pytest

import minigrad as mg

IN_PLACE = {
    "add_": lambda t: t.add_(1.0),
    "add_ alpha": lambda t: t.add_(mg.tensor([1.0, 2.0]), alpha=2),
    "sub_": lambda t: t.sub_(np.array([1.0, 1.0])),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(7.0),
    "copy_": lambda t: t.copy_(mg.tensor([5.0, 6.0])),
    "clamp_": lambda t: t.clamp_(min=1.5, max=2.5),
}
EXPECTED = {
    "add_": [2.0, 3.0], "add_ alpha": [3.0, 6.0], "sub_": [0.0, 1.0], "mul_": [2.0, 4.0],
    "div_": [0.5, 1.0], "zero_": [0.0, 0.0], "fill_": [7.0, 7.0], "copy_": [5.0, 6.0],
    "clamp_": [1.5, 2.0],
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_in_place_ops_change_the_data_and_bump_the_version(name):
    t = mg.tensor([1.0, 2.0])
    data = t.data
    assert IN_PLACE[name](t) is t
    np.testing.assert_array_equal(t.data, EXPECTED[name])
    assert t.data is data, "the same array, changed in place"
    assert t._version == 1
    IN_PLACE[name](t)
    assert t._version == 2


def test_backward_refuses_a_saved_input_changed_in_place():
    """z = x * w saves w (dz/dx = w); after w.add_(1), backward would use the new w."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0])
    z = x * w
    w.add_(1)
    with pytest.raises(RuntimeError, match=r"MulBackward.*modified by an in-place operation.*out of place"):
        z.sum().backward()


def test_backward_is_fine_when_nothing_saved_was_changed():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0])
    z = x + w  # add saves nothing: its gradient does not depend on w
    w.add_(1)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


@pytest.mark.parametrize("op, backward_name", [("exp", "ExpBackward"), ("tanh", "TanhBackward"),
                                               ("sigmoid", "SigmoidBackward")])
def test_backward_refuses_a_saved_output_changed_in_place(op, backward_name):
    """exp, tanh and sigmoid compute their gradient from their output (d e^x/dx = e^x)."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = getattr(x, op)()
    with mg.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match=f"{backward_name}.*its output.*in-place"):
        y.sum().backward()


@pytest.mark.parametrize(
    "make_view",
    [
        lambda w: w.reshape(4)[:2],
        lambda w: w.T[0],
        lambda w: w.transpose(0, 1)[1],
        lambda w: w[0, :],
        lambda w: w[:, 1:],
        lambda w: w.detach()[1],
    ],
)
def test_views_share_the_version_counter_with_their_base(make_view):
    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    view = make_view(w)
    assert np.shares_memory(view.data, w.data)
    x = mg.tensor(np.ones(view.shape, dtype=np.float32), requires_grad=True)
    z = x * view
    w.add_(1)
    assert view._version == w._version == 1
    with pytest.raises(RuntimeError, match="MulBackward.*in-place"):
        z.sum().backward()


def test_changing_a_view_in_place_is_seen_through_the_base():
    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = mg.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    z = x * w
    w[0].fill_(0.0)
    assert w._version == 1 and w.data[0, 0] == 0
    with pytest.raises(RuntimeError, match="MulBackward.*in-place"):
        z.sum().backward()


def test_a_copy_made_by_integer_indexing_does_not_share_the_version_counter():
    w = mg.tensor([1.0, 2.0, 3.0])
    picked = w[[0, 2]]
    picked.add_(1)
    assert w._version == 0
    np.testing.assert_array_equal(w.data, [1.0, 2.0, 3.0])


def test_a_leaf_that_requires_grad_is_changed_in_place_only_under_no_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_.*leaf tensor that requires grad.*no_grad"):
        x.add_(1)
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    assert x._version == 0
    with mg.no_grad():
        x.sub_(0.5)
    np.testing.assert_array_equal(x.data, [0.5, 1.5])
    assert x._version == 1 and x.requires_grad and x.is_leaf


def test_a_non_leaf_in_the_graph_is_not_changed_in_place():
    hidden = mg.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="mul_.*part of the graph"):
        hidden.mul_(2)
    np.testing.assert_array_equal(hidden.data, [2.0, 4.0])


def test_an_optimizer_style_update_then_a_new_forward_pass_works():
    """The usual loop: forward, backward, update under no_grad, forward again."""
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        loss = (w * w).sum()
        loss.backward()
        with mg.no_grad():
            w.sub_(w.grad * 0.25)
        w.zero_grad()
    np.testing.assert_allclose(w.data, [0.25, 0.5])


def test_an_expanded_tensor_refuses_in_place_changes():
    expanded = mg.tensor([1.0, 2.0]).expand(3, 2)
    with pytest.raises(RuntimeError, match=r"fill_.*read-only.*expand.*clone\(\)"):
        expanded.fill_(0.0)
    assert expanded._version == 0
    copy = expanded.clone()
    copy.fill_(0.0)
    np.testing.assert_array_equal(copy.data, np.zeros((3, 2)))


def test_a_failed_in_place_op_changes_nothing_and_keeps_the_version():
    """A shape error must not make backward passes that saved the tensor refuse to run."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0])
    z = x * w
    with pytest.raises(ValueError, match=r"copy_.*shape \(3,\).*shape \(2,\)"):
        w.copy_(np.ones(3))
    with pytest.raises(ValueError):
        w.add_(np.ones((2, 2)))
    np.testing.assert_array_equal(w.data, [3.0, 4.0])
    assert w._version == 0
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
