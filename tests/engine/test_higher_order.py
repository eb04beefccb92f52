"""Second derivatives: the backward pass, recorded with create_graph=True, differentiated again.

Three independent checks:
- gradgradcheck: the vector-Jacobian product v -> J^T v, as a function of the inputs and v,
  against finite differences (minigrad.gradgradcheck);
- the dot-product check of HIPS autograd's test_util: <J^T u, v> = <u, J v> with J v by central
  differences, applied to the op and then to its derivative (x, u) -> J(x)^T u;
- a Hessian-vector product of a small MLP's loss against the central difference of gradients.
"""

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F

# Each example runs a few dozen backward passes; ten per op is plenty to vary shapes and values.
SECOND_ORDER_EXAMPLES = settings(max_examples=10)


def broadcastable(num_arrays):
    return hnp.mutually_broadcastable_shapes(num_shapes=num_arrays, min_dims=1, max_dims=2, max_side=3).map(
        lambda drawn: drawn.input_shapes)


def same_shape(num_arrays):
    return hnp.array_shapes(min_dims=1, max_dims=2, max_side=3).map(lambda shape: (shape,) * num_arrays)


class Case(NamedTuple):
    """An op as a function of its tensor inputs, with the shapes and values to draw them from."""

    fn: Callable
    num_arrays: int = 1
    domain: tuple = (-3, 3)
    shapes: st.SearchStrategy | None = None


def alternating_where(a, b):
    """where with a fixed condition (alternating along the flattened shape): a condition read off
    the values would flip inside a finite difference taken at 0."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    condition = (np.arange(math.prod(shape)) % 2 == 0).reshape(shape)
    return F.where(condition, a * b, b * b)


def repeat_and_reverse(x):
    return x[np.array([0, 0, -1])] * x[::-1][0]


SMALL_MATMUL_SHAPES = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=1, max_side=2).map(
    lambda drawn: drawn.input_shapes)
LINEAR_SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)).map(
    lambda sizes: ((sizes[0], sizes[1]), (sizes[2], sizes[1]), (sizes[2],)))

# Smooth functions only: second derivatives are checked by finite differences, which are
# meaningless across a kink. Movement ops are linear, so each is composed with a square to
# give it a second derivative worth checking.
CASES = {
    "add": Case(F.add, 2),
    "sub": Case(F.sub, 2),
    "mul": Case(F.mul, 2),
    "div": Case(F.div, 2, (0.5, 3)),
    "neg": Case(F.neg),
    "pow": Case(F.pow, 2, (0.5, 2)),
    "pow scalar": Case(lambda x: x ** 3),
    "exp": Case(F.exp),
    "log": Case(F.log, 1, (0.5, 3)),
    "sqrt": Case(F.sqrt, 1, (0.5, 3)),
    "erf": Case(F.erf, 1, (-2, 2)),
    "where": Case(alternating_where, 2),
    "sigmoid": Case(F.sigmoid),
    "tanh": Case(F.tanh),
    "softplus": Case(lambda x: F.softplus(x, beta=2.0)),
    "gelu": Case(F.gelu),
    "gelu tanh": Case(lambda x: F.gelu(x, approximate="tanh")),
    "sum": Case(lambda x: F.sum(x * x, -1)),
    "mean": Case(lambda x: F.mean(x * x)),
    "var": Case(lambda x: F.var(x, -1, correction=0)),
    "logsumexp": Case(lambda x: F.logsumexp(x, -1)),
    "softmax": Case(lambda x: F.softmax(x, -1)),
    "log_softmax": Case(lambda x: F.log_softmax(x, -1)),
    "getitem with repeats": Case(repeat_and_reverse),
    "expand and permute": Case(lambda x: F.permute(F.expand(x * x, (2,) + x.shape), *reversed(range(x.ndim + 1)))),
    "cat and pad": Case(lambda x: F.pad(F.cat([x, x * x], -1), (1, 2))),
    "matmul": Case(F.matmul, 2, (-2, 2), SMALL_MATMUL_SHAPES),
    "linear": Case(F.linear, 3, (-2, 2), LINEAR_SHAPES),
    "cross_entropy": Case(lambda x: F.cross_entropy(x.reshape(1, -1), np.array([0]), label_smoothing=0.1)),
    "mse_loss": Case(F.mse_loss, 2, shapes=same_shape(2)),
    "bce_with_logits": Case(lambda x: F.binary_cross_entropy_with_logits(x, np.full(x.shape, 0.3))),
}


@st.composite
def inputs_for(draw, case):
    """float64 tensors that require grad, of small (mutually broadcastable) shapes."""
    low, high = case.domain
    shapes = draw(case.shapes if case.shapes is not None else broadcastable(case.num_arrays))
    return [
        mg.Tensor(draw(hnp.arrays(np.float64, shape, elements=st.floats(low, high))), requires_grad=True)
        for shape in shapes
    ]


def draw_case(data, name):
    case = CASES[name]
    return case.fn, data.draw(inputs_for(case), label="inputs")


ALL_OPS = list(CASES)


class SquareWithConstantBackward(mg.Function):
    """x^2 whose backward uses x's data, a constant: right to first order, but its recorded
    derivative has no dependence on x, so the second derivative comes out 0 instead of 2."""

    def forward(self, x):
        self.save_for_backward(x)
        return x.data ** 2

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * (2 * x.data)


# ----------------------------------------------------------------------------------------------
# gradgradcheck
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_OPS)
@SECOND_ORDER_EXAMPLES
@given(data=st.data())
def test_gradgradcheck(name, data):
    fn, inputs = draw_case(data, name)
    assert mg.gradgradcheck(fn, inputs)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = mg.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    assert mg.gradcheck(SquareWithConstantBackward.apply, (x,))
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(SquareWithConstantBackward.apply, (x,))


# ----------------------------------------------------------------------------------------------
# HIPS autograd's dot-product check, to second order
# ----------------------------------------------------------------------------------------------

EPS = 1e-6


def _inner(a, b) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def check_vjp(fn, arrays, generator) -> None:
    """<J^T u, v> == <u, J v> for random u, v, where J^T u comes from backward and J v from the
    central difference (f(x + eps v) - f(x - eps v)) / (2 eps). Inputs are fresh tensors that
    require grad at every evaluation, since fn may itself run a backward pass."""

    def evaluate(values):
        return fn(*[mg.Tensor(v, requires_grad=True) for v in values])

    inputs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    u = generator.standard_normal(out.shape)
    directions = [generator.standard_normal(a.shape) for a in arrays]
    vjp = mg.grad(out, inputs, grad_outputs=mg.Tensor(u), allow_unused=True)
    vjp_dot_v = sum(_inner(g.data, v) for g, v in zip(vjp, directions) if g is not None)
    plus = evaluate([a + EPS * v for a, v in zip(arrays, directions)]).data
    minus = evaluate([a - EPS * v for a, v in zip(arrays, directions)]).data
    u_dot_jvp = _inner(u, (plus - minus) / (2 * EPS))
    assert vjp_dot_v == pytest.approx(u_dot_jvp, rel=1e-5, abs=1e-7), "<J^T u, v> != <u, J v>"


def vjp_function(fn, num_inputs):
    """(x..., u) -> J(x)^T u, flattened and joined into one vector: the derivative of fn as a
    function that can be checked in turn."""

    def derivative(*arguments):
        inputs, upstream = arguments[:num_inputs], arguments[num_inputs]
        grads = mg.grad(fn(*inputs), list(inputs), grad_outputs=upstream, create_graph=True, allow_unused=True)
        return F.cat([(g if g is not None else x * 0).reshape(-1) for g, x in zip(grads, inputs)])

    return derivative


def check_grads(fn, arrays, order, generator) -> None:
    """HIPS's check_grads in reverse mode: check the VJP of fn, then of its derivative, up to `order`."""
    check_vjp(fn, arrays, generator)
    if order > 1:
        with mg.no_grad():
            output_shape = fn(*[mg.Tensor(a) for a in arrays]).shape
        upstream = generator.standard_normal(output_shape)
        check_grads(vjp_function(fn, len(arrays)), [*arrays, upstream], order - 1, generator)


@pytest.mark.parametrize("name", ALL_OPS)
@SECOND_ORDER_EXAMPLES
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_dot_product_check_to_second_order(name, data, seed):
    fn, inputs = draw_case(data, name)
    check_grads(fn, [t.data for t in inputs], order=2, generator=np.random.default_rng(seed))


def test_dot_product_check_catches_a_wrong_second_derivative():
    arrays = [np.array([0.5, -1.5, 2.0])]
    check_grads(SquareWithConstantBackward.apply, arrays, order=1, generator=np.random.default_rng(0))
    with pytest.raises(AssertionError, match="J v"):
        check_grads(SquareWithConstantBackward.apply, arrays, order=2, generator=np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------
# Hessian-vector product of a small MLP
# ----------------------------------------------------------------------------------------------


def mlp_parameters(generator):
    """A 3-4-2 tanh MLP in float64: W1, b1, W2, b2."""
    shapes = [(4, 3), (4,), (2, 4), (2,)]
    return [mg.Tensor(generator.standard_normal(shape) * 0.7, requires_grad=True) for shape in shapes]


def mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    hidden = F.tanh(F.linear(x, w1, b1))
    prediction = hidden @ w2.mT + b2  # the second layer by matmul and add, the first fused
    return F.mse_loss(prediction, y)


def loss_gradient(params, x, y):
    return [g.data for g in mg.grad(mlp_loss(params, x, y), params)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_hessian_vector_product_matches_the_difference_of_gradients(seed):
    """H v = d/dt grad(theta + t v) at t = 0, by (grad(theta + eps v) - grad(theta - eps v)) / (2 eps);
    eps = 1e-5 balances truncation (eps^2) and rounding (1e-16 / eps) near 1e-10."""
    generator = np.random.default_rng(seed)
    params = mlp_parameters(generator)
    x, y = mg.Tensor(generator.standard_normal((5, 3))), mg.Tensor(generator.standard_normal((5, 2)))
    v = [generator.standard_normal(p.shape) for p in params]

    g = mg.grad(mlp_loss(params, x, y), params, create_graph=True)
    hv = mg.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)

    eps = 1e-5
    shifted_up = [mg.Tensor(p.data + eps * vi, requires_grad=True) for p, vi in zip(params, v)]
    shifted_down = [mg.Tensor(p.data - eps * vi, requires_grad=True) for p, vi in zip(params, v)]
    for position, (up, down, analytic) in enumerate(zip(loss_gradient(shifted_up, x, y),
                                                        loss_gradient(shifted_down, x, y), hv)):
        np.testing.assert_allclose(analytic.data, (up - down) / (2 * eps), rtol=1e-6, atol=1e-8,
                                   err_msg=f"H v for parameter {position}")


def test_mlp_hessian_is_symmetric():
    """<w, H v> == <v, H w>: second derivatives commute (Schwarz)."""
    generator = np.random.default_rng(3)
    params = mlp_parameters(generator)
    x, y = mg.Tensor(generator.standard_normal((5, 3))), mg.Tensor(generator.standard_normal((5, 2)))
    v = [generator.standard_normal(p.shape) for p in params]
    w = [generator.standard_normal(p.shape) for p in params]

    def hessian_times(direction):
        g = mg.grad(mlp_loss(params, x, y), params, create_graph=True)
        return mg.grad(sum((gi * di).sum() for gi, di in zip(g, direction)), params)

    w_hv = sum(_inner(wi, h.data) for wi, h in zip(w, hessian_times(v)))
    v_hw = sum(_inner(vi, h.data) for vi, h in zip(v, hessian_times(w)))
    assert w_hv == pytest.approx(v_hw, rel=1e-10, abs=1e-12)

