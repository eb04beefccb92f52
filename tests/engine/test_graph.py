"""The autograd graph: depth, release after backward, grad mode, hooks, retain_grad,
detect_anomaly, minigrad.grad, how gradients accumulate, and three laws of differentiation
(linearity, the chain rule, broadcasting) checked on random float64 inputs."""

import os
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, mutually_broadcastable_shapes

import minigrad as mg

THIS_FILE = os.path.basename(__file__)


@pytest.fixture(autouse=True)
def recording_back_on_after_each_test():
    """A failing grad-mode test must not leave recording off for the tests after it."""
    yield
    mg.set_grad_enabled(True)


def leaf(values):
    """A float64 tensor that requires grad."""
    return mg.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ---------------------------------------------------------------- depth and release


def test_backward_through_a_10000_op_chain():
    """y = (x * c + 0.1) repeated 5,000 times: dy/dx = c^5000, far deeper than the recursion limit."""
    steps, c = 10_000, 1.0001
    assert steps > sys.getrecursionlimit()
    x = leaf(0.5)
    y = x
    for _ in range(steps // 2):
        y = y * c + 0.1
    y.backward()
    assert x.grad == pytest.approx(c ** (steps // 2), rel=1e-10)


def test_a_10000_op_chain_dropped_without_backward_is_freed():
    x = leaf(0.5)
    y = x * 1.0
    first_step = weakref.ref(y)
    for _ in range(10_000):
        y = y.tanh()
    del y
    assert first_step() is None


def test_graph_is_released_after_backward():
    x = leaf([1.0, 2.0])
    hidden = x * 2
    alive = weakref.ref(hidden)
    loss = (hidden.exp() * 3).sum()
    del hidden
    assert alive() is not None, "the graph keeps the intermediate until backward"
    loss.backward()
    assert alive() is None


def test_retain_graph_keeps_the_graph_until_the_output_is_dropped():
    x = leaf([1.0, 2.0])
    hidden = x * 2
    alive = weakref.ref(hidden)
    loss = (hidden.exp() * 3).sum()
    del hidden
    loss.backward(retain_graph=True)
    assert alive() is not None
    del loss
    assert alive() is None, "the graph has no reference cycles: dropping the output frees it at once"


# ---------------------------------------------------------------- grad mode


def assert_no_history(tensor):
    assert tensor.grad_fn is None and not tensor.requires_grad and tensor.is_leaf


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = (x * 2 + 1).exp().sum()
    assert_no_history(y)
    assert mg.is_grad_enabled()
    np.testing.assert_allclose(y.data, np.exp([3.0, 5.0]).sum())


def test_no_grad_as_a_decorator():
    @mg.no_grad()
    def double(tensor):
        return tensor * 2

    assert_no_history(double(leaf([1.0, 2.0])))
    assert mg.is_grad_enabled()


def test_no_grad_decorator_restores_grad_mode_after_a_recursive_call():
    @mg.no_grad()
    def countdown(n):
        return countdown(n - 1) if n else mg.is_grad_enabled()

    assert countdown(3) is False
    assert mg.is_grad_enabled()


def test_enable_grad_inside_no_grad_records():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        with mg.enable_grad():
            y = x * x
        z = x * x
    assert y.requires_grad and y.grad_fn is not None
    assert_no_history(z)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_set_grad_enabled_and_restore_after_an_exception():
    x = leaf([1.0])
    with pytest.raises(ValueError), mg.set_grad_enabled(False):
        assert_no_history(x * 2)
        raise ValueError("leaving the block by an exception")
    assert mg.is_grad_enabled()
    assert (x * 2).requires_grad


def test_set_grad_enabled_as_a_plain_call_and_as_a_decorator():
    """As PyTorch's: a plain call switches the mode from then on; a decorator only inside."""
    x = leaf([1.0])
    mg.set_grad_enabled(False)
    assert_no_history(x * 2)
    mg.set_grad_enabled(True)
    assert (x * 2).requires_grad

    @mg.set_grad_enabled(False)
    def double(tensor):
        return tensor * 2

    assert mg.is_grad_enabled()
    assert_no_history(double(x))
    assert mg.is_grad_enabled()


# ---------------------------------------------------------------- hooks and retain_grad


def test_hook_sees_the_gradient_of_a_leaf():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda grad: seen.append(grad))
    (x * 3).sum().backward()
    assert isinstance(seen[0], mg.Tensor)
    np.testing.assert_array_equal(seen[0].data, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_hook_can_replace_the_gradient_of_a_leaf():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda grad: grad * 2)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_hook_on_a_non_leaf_replaces_what_flows_back():
    """loss = sum(3 h), h = x^2: the hook scales dloss/dh = 3 by 10, so dloss/dx = 10 * 3 * 2x."""
    x = leaf([1.0, 2.0])
    hidden = x * x
    hidden.register_hook(lambda grad: grad * 10)
    (hidden * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 10 * 3 * 2 * np.array([1.0, 2.0]))
    assert hidden.grad is None


def test_several_hooks_run_in_order_each_seeing_the_previous_result():
    x = leaf([1.0, 2.0])
    calls = []

    def double(grad):
        calls.append(("double", grad.data.copy()))
        return grad * 2

    def add_one(grad):
        calls.append(("add_one", grad.data.copy()))
        return grad + 1

    x.register_hook(double)
    x.register_hook(add_one)
    (x * 3).sum().backward()
    assert [name for name, _ in calls] == ["double", "add_one"]
    np.testing.assert_array_equal(calls[1][1], [6.0, 6.0])
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_a_removed_hook_no_longer_runs():
    x = leaf([1.0, 2.0])
    handle = x.register_hook(lambda grad: grad * 2)
    handle.remove()
    handle.remove()  # removing twice is harmless
    with x.register_hook(lambda grad: grad * 5):
        (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [15.0, 15.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_a_hook_returning_the_wrong_shape_raises_a_clear_error():
    x = leaf([1.0, 2.0])

    def wrong_shape(grad):
        return np.ones(3)

    x.register_hook(wrong_shape)
    with pytest.raises(RuntimeError, match=r"wrong_shape.*shape \(3,\).*shape \(2,\)"):
        (x * 3).sum().backward()


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = leaf([1.0, 2.0])
    kept, not_kept = x * x, x * 2
    kept.retain_grad()
    (kept * 3 + not_kept).sum().backward()
    np.testing.assert_array_equal(kept.grad, [3.0, 3.0])
    assert not_kept.grad is None
    np.testing.assert_array_equal(x.grad, 3 * 2 * np.array([1.0, 2.0]) + 2)


# ---------------------------------------------------------------- detect_anomaly


class NaNGradient(mg.Function):
    """y = x, with a broken backward that returns NaN."""

    def forward(self, x):
        return x.data.copy()

    def backward(self, grad):
        return grad * float("nan")


def anomaly_message(error) -> str:
    message = str(error.value)
    assert THIS_FILE in message, message
    return message


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_detect_anomaly_names_the_forward_op_and_the_line_that_made_it():
    x = leaf([-1.0, 2.0])
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError) as error:
        mg.log(x)  # ln(-1) is NaN
    message = anomaly_message(error)
    assert "Log" in message and "NaN" in message and "mg.log(x)  # ln(-1) is NaN" in message


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_detect_anomaly_names_the_op_whose_backward_made_inf():
    x = leaf([0.0, 4.0])
    with mg.detect_anomaly():
        root = mg.sqrt(x)  # d sqrt(x)/dx = 1 / (2 sqrt x) is inf at 0
        loss = root.sum()
        with pytest.raises(mg.AnomalyError) as error:
            loss.backward()
    message = anomaly_message(error)
    assert "Sqrt" in message and "Inf" in message and "root = mg.sqrt(x)" in message


def test_detect_anomaly_names_a_custom_function_whose_backward_returns_nan():
    x = leaf([1.0, 2.0])

    @mg.detect_anomaly()
    def forward_and_backward():
        broken = NaNGradient.apply(x)
        broken.sum().backward()

    with pytest.raises(mg.AnomalyError) as error:
        forward_and_backward()
    message = anomaly_message(error)
    assert "NaNGradient" in message and "NaN" in message and "broken = NaNGradient.apply(x)" in message


def test_without_detect_anomaly_nan_gradients_pass_silently():
    x = leaf([1.0, 2.0])
    NaNGradient.apply(x).sum().backward()
    assert np.isnan(x.grad).all()


# ---------------------------------------------------------------- minigrad.grad


def test_grad_returns_tensors_and_leaves_dot_grad_alone():
    """loss = sum((x w)^2): dloss/dx = 2 x w^2, dloss/dw = 2 x^2 w, dloss/dh = 2h for h = x w."""
    x, w = leaf([1.0, 2.0]), leaf([3.0, -4.0])
    hidden = x * w
    hidden.retain_grad()
    grad_x, grad_w, grad_hidden = mg.grad((hidden * hidden).sum(), [x, w, hidden])
    assert all(isinstance(g, mg.Tensor) and not g.requires_grad for g in (grad_x, grad_w, grad_hidden))
    np.testing.assert_allclose(grad_x.data, 2 * x.data * w.data**2)
    np.testing.assert_allclose(grad_w.data, 2 * x.data**2 * w.data)
    np.testing.assert_allclose(grad_hidden.data, 2 * hidden.data)
    assert x.grad is None and w.grad is None and hidden.grad is None


def test_grad_of_a_single_input_and_a_vector_jacobian_product():
    """y = x^2 elementwise, v given: the vector-Jacobian product is v * 2x."""
    x = leaf([1.0, -2.0, 3.0])
    v = np.array([0.5, 1.0, -1.0])
    (grad_x,) = mg.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(grad_x.data, v * 2 * x.data)


def test_grad_allow_unused():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    with pytest.raises(RuntimeError, match="input 1.*not used.*allow_unused=True"):
        mg.grad((x * 2).sum(), [x, unused])
    grad_x, grad_unused = mg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(grad_x.data, [2.0, 2.0])
    assert grad_unused is None


def test_grad_with_respect_to_a_tensor_that_does_not_require_grad_raises():
    x, constant = leaf([1.0, 2.0]), mg.tensor([1.0, 2.0], dtype=np.float64)
    with pytest.raises(RuntimeError, match="input 1.*does not require grad"):
        mg.grad((x * constant).sum(), [x, constant])


@given(st.floats(-3, 3))
def test_create_graph_gives_gradients_that_can_be_differentiated_again(value):
    """d/dx x^3 = 3x^2, d^2/dx^2 x^3 = 6x, d^3/dx^3 x^3 = 6."""
    x = leaf(value)
    (first,) = mg.grad(x**3, x, create_graph=True)
    assert first.requires_grad
    (second,) = mg.grad(first, x, create_graph=True)
    (third,) = mg.grad(second, x)
    assert first.item() == pytest.approx(3 * value**2, rel=1e-12, abs=1e-12)
    assert second.item() == pytest.approx(6 * value, rel=1e-12, abs=1e-12)
    assert third.item() == pytest.approx(6.0, rel=1e-12)
    assert x.grad is None


def test_retain_graph_defaults_to_create_graph():
    x = leaf(2.0)
    cube = x**3
    mg.grad(cube, x, create_graph=True)
    (again,) = mg.grad(cube, x)  # the graph was kept, since create_graph=True
    assert again.item() == pytest.approx(12.0)
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        mg.grad(cube, x)  # the previous call freed it


# ---------------------------------------------------------------- accumulation and aliasing


def test_two_backward_calls_add_into_grad():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * 2 * np.array([1.0, 2.0]))


def assert_independent(*arrays):
    """No two arrays share memory: changing one in place (as optimizers do) leaves the others."""
    for i, first in enumerate(arrays):
        for second in arrays[i + 1:]:
            assert not np.shares_memory(first, second)
    before = [array.copy() for array in arrays]
    arrays[0][...] = 99.0
    for array, value in zip(arrays[1:], before[1:]):
        np.testing.assert_array_equal(array, value)


def test_the_gradients_of_a_sum_are_separate_arrays():
    """Add hands the one gradient it receives to both inputs (and to h, whose grad is retained)."""
    a, b, c = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    hidden = a + b
    hidden.retain_grad()
    (hidden * c).sum().backward()
    np.testing.assert_array_equal(a.grad, c.data)
    np.testing.assert_array_equal(b.grad, c.data)
    assert_independent(a.grad, b.grad, hidden.grad)


def test_a_root_gradient_given_by_the_user_is_not_aliased():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    gradient = np.array([1.0, -1.0])
    (a + b).backward(gradient)
    np.testing.assert_array_equal(a.grad, gradient)
    assert_independent(gradient, a.grad, b.grad)


def test_a_root_gradient_given_for_a_leaf_is_not_aliased():
    a = leaf([1.0, 2.0])
    gradient = np.array([1.0, -1.0])
    a.backward(gradient)
    np.testing.assert_array_equal(a.grad, gradient)
    assert_independent(gradient, a.grad)


def test_a_gradient_a_hook_returns_and_the_user_keeps_is_not_aliased():
    a = leaf([1.0, 2.0])
    kept = []

    def double_and_keep(grad):
        kept.append(grad * 2)
        return kept[-1]

    a.register_hook(double_and_keep)
    (a * 3).sum().backward()
    np.testing.assert_array_equal(a.grad, [6.0, 6.0])
    assert_independent(a.grad, kept[0].data)


def test_a_gradient_a_hook_is_shown_and_keeps_is_not_aliased():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    hidden = a + b
    seen = []
    hidden.register_hook(seen.append)
    a.register_hook(seen.append)
    (hidden * 3).sum().backward()
    assert len(seen) == 2
    for shown in seen:  # the two hooks may share one gradient; .grad must not share with either
        assert_independent(a.grad, b.grad, shown.data)


# ---------------------------------------------------------------- laws, on random float64 inputs

# name: (minigrad function, the same in NumPy, its derivative in NumPy)
FUNCTIONS = {
    "exp": (mg.exp, np.exp, np.exp),
    "tanh": (mg.tanh, np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "sigmoid": (mg.sigmoid, lambda v: 1 / (1 + np.exp(-v)), lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2),
    "square": (lambda t: t * t, np.square, lambda v: 2 * v),
    "cube": (lambda t: t**3, lambda v: v**3, lambda v: 3 * v**2),
}
function_names = st.sampled_from(sorted(FUNCTIONS))
# |x| <= 1.5 keeps tanh'(g(x)) = 1 - tanh^2 well above rounding (it loses digits near |x| = 8).
vectors = arrays(np.float64, st.integers(1, 6), elements=st.floats(-1.5, 1.5))
coefficients = st.floats(-3, 3)


def gradient(function, values):
    """d/dx sum(function(x)) at x = values, by backward."""
    x = leaf(values)
    function(x).sum().backward()
    return x.grad


@given(vectors, coefficients, coefficients, function_names, function_names)
def test_backward_is_linear(values, a, b, f_name, g_name):
    """grad(a f + b g) = a grad(f) + b grad(g)."""
    f, g = FUNCTIONS[f_name][0], FUNCTIONS[g_name][0]
    combined = gradient(lambda x: a * f(x) + b * g(x), values)
    grad_f, grad_g = gradient(f, values), gradient(g, values)
    # Rounding is relative to the terms, which may cancel.
    bound = 1e-9 * (np.abs(a * grad_f) + np.abs(b * grad_g))
    assert np.all(np.abs(combined - (a * grad_f + b * grad_g)) <= bound)


@given(vectors, function_names, function_names)
def test_chain_rule(values, outer_name, inner_name):
    """d/dx f(g(x)) = f'(g(x)) g'(x)."""
    outer, _, outer_derivative = FUNCTIONS[outer_name]
    inner, inner_numpy, inner_derivative = FUNCTIONS[inner_name]
    actual = gradient(lambda x: outer(inner(x)), values)
    expected = outer_derivative(inner_numpy(values)) * inner_derivative(values)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-300)


def source_index(result_index, shape):
    """The element of an array of `shape` that broadcasting puts at `result_index` of the result."""
    offset = len(result_index) - len(shape)
    return tuple(0 if size == 1 else i for size, i in zip(shape, result_index[offset:]))


@given(st.data())
def test_broadcast_gradients_sum_over_the_broadcast_dimensions(data):
    """z = sum(w * a * b) with a, b broadcast together: an element of a used at several positions
    of the result gets the sum of dz over those positions, dz/da[i] = sum of w b there."""
    shapes = data.draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    shape_a, shape_b = shapes.input_shapes
    elements = st.floats(-2, 2)
    a_values = data.draw(arrays(np.float64, shape_a, elements=elements), label="a")
    b_values = data.draw(arrays(np.float64, shape_b, elements=elements), label="b")
    weights = data.draw(arrays(np.float64, shapes.result_shape, elements=elements), label="w")
    a, b = leaf(a_values), leaf(b_values)
    (mg.tensor(weights) * a * b).sum().backward()
    expected_a, expected_b = np.zeros(shape_a), np.zeros(shape_b)
    for index in np.ndindex(*shapes.result_shape):
        at_a, at_b = source_index(index, shape_a), source_index(index, shape_b)
        expected_a[at_a] += weights[index] * b_values[at_b]
        expected_b[at_b] += weights[index] * a_values[at_a]
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad, expected_a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.grad, expected_b, rtol=1e-9, atol=1e-12)
