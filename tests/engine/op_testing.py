"""Test factories: one declaration line builds a whole hypothesis property test for an op.

The pattern of MyGrad's tests/wrappers/uber.py, in a smaller form:

    test_add_forward = forward_test(F.add, np.add, num_arrays=2)
    test_add_backward = backward_test(F.add, num_arrays=2)

forward_test   draws shapes (mutually broadcastable when there are several arrays), values in
               the op's domain and a dtype (float32 or float64), and checks our forward against
               NumPy's own computation: same values, same dtype, inputs untouched.
backward_test  draws float64 inputs and an upstream gradient v of the output's shape, and checks
               the vector-Jacobian product minigrad.grad(out, inputs, v) against central
               differences of sum(f(x) * v), one input element at a time. A broadcast input's
               gradient must be summed over the broadcast dimensions to pass, so unbroadcasting
               is checked too. It also checks that .backward(v) puts the same numbers in .grad,
               that each gradient has its input's shape and dtype, that the inputs are not
               mutated, and that backward frees the graph (a second backward raises).

Arguments common to both:
    num_arrays  how many tensor inputs the op takes (positional, before the keyword arguments).
    domain      (low, high) for every input, or one (low, high) per input.
    shapes      a strategy of shapes, one per input (a single shape is fine for one input);
                by default drawn with array_shapes / mutually_broadcastable_shapes, with at
                least `min_dims` dimensions.
    kwargs      the op's keyword arguments: a dict whose values are constants, strategies, or
                callables taking the drawn input arrays and returning either; or one callable
                taking the input arrays and returning a strategy of whole dicts (for arguments
                that depend on each other, such as cross_entropy's target and ignore_index).
    avoid       an `Avoid`: inputs kept away from kinks and ties, where the derivative jumps
                and the two sides of a central difference disagree.
"""

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import (
    array_shapes, arrays, mutually_broadcastable_shapes, valid_tuple_axes,
)

import minigrad as mg

FLOAT_DTYPES = (np.float32, np.float64)

# Forward tolerances per dtype: float32 carries about 7 significant digits, float64 about 16;
# the reference may use another but equivalent formula, so a few ulps of slack on each.
FORWARD_TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-10, 1e-12)}

# Central differences in float64 with eps = 1e-6: truncation error ~ eps^2 |f'''| and rounding
# error ~ 1e-16 |f| / eps, both around 1e-10 of the derivative's size for the domains drawn
# here, far inside these tolerances.
NUMERICAL_EPS = 1e-6
BACKWARD_RTOL, BACKWARD_ATOL = 1e-5, 1e-6

# Forward tests afford larger arrays than backward tests, which evaluate the op twice per
# input element.
FORWARD_SHAPE_LIMITS = dict(max_dims=4, max_side=4)
BACKWARD_SHAPE_LIMITS = dict(max_dims=3, max_side=3)

_declaration_number = itertools.count()


@dataclass(frozen=True)
class Avoid:
    """Inputs a test must not draw.

    points:    every element stays `margin` away from these values (kinks: 0 for relu and abs,
               the bounds of clamp).
    ties:      the elements of each input are `margin` apart from one another (max, min).
    crossings: the inputs, broadcast together, differ by at least `margin` everywhere
               (maximum(a, b), where the gradient switches from a to b).
    A central difference with eps = 1e-6 only straddles a kink closer than eps, so any margin
    well above eps keeps it on one side.
    """

    points: tuple = ()
    ties: bool = False
    crossings: bool = False
    margin: float = 1e-3

    def element_ok(self, value: float) -> bool:
        return all(abs(value - point) >= self.margin for point in self.points)

    def arrays_ok(self, arrays) -> bool:
        if self.ties:
            for array in arrays:
                values = np.sort(array, axis=None)
                if values.size > 1 and np.diff(values).min() < self.margin:
                    return False
        if self.crossings:
            for a, b in itertools.combinations(arrays, 2):
                if np.abs(a.astype(np.float64) - b).min(initial=np.inf) < self.margin:
                    return False
        return True


NOTHING_TO_AVOID = Avoid()


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------


def default_shapes(num_arrays: int, max_dims: int, max_side: int, min_dims: int = 0):
    """One shape per input: any shape for one input, mutually broadcastable ones for several."""
    if num_arrays == 1:
        return array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side).map(lambda s: (s,))
    return mutually_broadcastable_shapes(
        num_shapes=num_arrays, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda drawn: drawn.input_shapes)


def reduction_dims(allow_none: bool = True, allow_tuple: bool = True):
    """A `kwargs` entry: a dimension argument valid for the first input (None, an int, possibly
    negative, or a tuple of distinct dims). Empty tuples are left out: PyTorch reads dim=() as
    "all dimensions" and NumPy as "none"."""

    def draw(x, *others):
        choices = [st.none()] if allow_none else []
        if x.ndim:
            choices.append(st.integers(-x.ndim, x.ndim - 1))
            if allow_tuple:
                choices.append(valid_tuple_axes(x.ndim, min_size=1))
        return st.one_of(choices)

    return draw


def one_dim(x, *others):
    """A `kwargs` entry: one dimension of the first input, as an int (possibly negative)."""
    return st.integers(-x.ndim, x.ndim - 1)


def _finite_floats(low: float, high: float, dtype) -> st.SearchStrategy:
    if np.dtype(dtype) == np.float32:
        # Bounds must be exactly representable in float32: round them inward.
        low32, high32 = np.float32(low), np.float32(high)
        if low32 < low:
            low32 = np.nextafter(low32, np.float32(np.inf))
        if high32 > high:
            high32 = np.nextafter(high32, np.float32(-np.inf))
        return st.floats(float(low32), float(high32), width=32)
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _draw_arrays(data, num_arrays, shapes, domain, avoid, dtype) -> list:
    shape_tuple = data.draw(shapes, label="shapes")
    if all(isinstance(size, int) for size in shape_tuple):
        shape_tuple = (shape_tuple,)
    assert len(shape_tuple) == num_arrays, f"the shapes strategy gave {len(shape_tuple)} shapes, not {num_arrays}"
    domains = [domain] * num_arrays if isinstance(domain[0], (int, float)) else list(domain)
    drawn = []
    for position, (shape, (low, high)) in enumerate(zip(shape_tuple, domains)):
        elements = _finite_floats(low, high, dtype)
        if avoid.points:
            elements = elements.filter(avoid.element_ok)
        # By default hypothesis fills most of a large array with one repeated value (cheap to
        # draw, and repeated values are good edge cases). Where ties must be rare, every element
        # is drawn on its own instead.
        fill = st.nothing() if avoid.ties or avoid.crossings else None
        strategy = arrays(dtype, shape, elements=elements, fill=fill, unique=avoid.ties)
        drawn.append(data.draw(strategy, label=f"input {position}"))
    assume(avoid.arrays_ok(drawn))
    return drawn


def _draw_kwargs(data, kwargs, arrays) -> dict:
    if kwargs is None:
        return {}
    if callable(kwargs):
        return data.draw(kwargs(*arrays), label="kwargs")
    drawn = {}
    for name, value in kwargs.items():
        if callable(value) and not isinstance(value, st.SearchStrategy):
            value = value(*arrays)
        if isinstance(value, st.SearchStrategy):
            value = data.draw(value, label=name)
        drawn[name] = value
    return drawn


def _label(kind: str, our_fn) -> bytes:
    # A distinct digest per declared test, so that derandomized runs (the CI profile) draw
    # different examples for each op instead of replaying one stream everywhere.
    name = getattr(our_fn, "__qualname__", repr(type(our_fn)))
    return f"{kind}:{name}:{next(_declaration_number)}".encode()


def _mark(test, kind: str, our_fn):
    test.hypothesis.inner_test._hypothesis_internal_add_digest = _label(kind, our_fn)
    return test


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------


def _snapshot(arrays, kwargs):
    """Copies of every input array and array-valued keyword argument, to detect mutation."""
    return [a.copy() for a in arrays], {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}


def assert_not_mutated(arrays, kwargs, snapshot) -> None:
    array_copies, kwarg_copies = snapshot
    for position, (array, original) in enumerate(zip(arrays, array_copies)):
        np.testing.assert_array_equal(array, original, err_msg=f"input {position} was mutated")
    for name, original in kwarg_copies.items():
        np.testing.assert_array_equal(kwargs[name], original, err_msg=f"keyword argument {name!r} was mutated")


def _as_list(value) -> list:
    return list(value) if isinstance(value, tuple) else [value]


def assert_matches(ours, expected, rtol=None, atol=None) -> None:
    """Tensor(s) `ours` equal array(s) `expected`: same shape, same dtype, close values."""
    ours, expected = _as_list(ours), _as_list(expected)
    assert len(ours) == len(expected), f"{len(ours)} outputs, expected {len(expected)}"
    for position, (tensor, reference) in enumerate(zip(ours, expected)):
        assert isinstance(tensor, mg.Tensor), f"output {position} is a {type(tensor).__name__}, not a Tensor"
        reference = np.asarray(reference)
        assert tensor.dtype == reference.dtype, f"output {position} is {tensor.dtype}, NumPy's {reference.dtype}"
        assert tensor.shape == reference.shape, f"output {position} has shape {tensor.shape}, NumPy's {reference.shape}"
        default_rtol, default_atol = FORWARD_TOLERANCES.get(reference.dtype, (0, 0))
        np.testing.assert_allclose(
            tensor.data, reference,
            rtol=default_rtol if rtol is None else rtol, atol=default_atol if atol is None else atol,
            err_msg=f"output {position}",
        )


def numerical_gradients(fn, arrays, upstream, kwargs=None, eps=NUMERICAL_EPS) -> list:
    """d/dx sum(fn(*x) * upstream) for each input array, by central differences.

    The difference fn(x + eps) - fn(x - eps) is taken before the sum, so outputs far from the
    perturbed element cancel exactly instead of adding rounding error to the derivative.
    """
    kwargs = kwargs or {}

    def evaluate(values):
        with mg.no_grad():
            return fn(*[mg.Tensor(v) for v in values], **kwargs).data.astype(np.float64)

    gradients = []
    for position, array in enumerate(arrays):
        gradient = np.zeros(array.shape, dtype=np.float64)
        for k in range(array.size):
            shifted = [a.copy() for a in arrays]
            shifted[position].reshape(-1)[k] += eps
            plus = evaluate(shifted)
            shifted[position].reshape(-1)[k] -= 2 * eps
            minus = evaluate(shifted)
            gradient.reshape(-1)[k] = np.sum((plus - minus) * upstream) / (2 * eps)
        gradients.append(gradient)
    return gradients


# ----------------------------------------------------------------------------------------------
# factories
# ----------------------------------------------------------------------------------------------


def forward_test(our_fn, numpy_fn, num_arrays=1, domain=(-10, 10), shapes=None, min_dims=0, kwargs=None,
                 avoid=NOTHING_TO_AVOID, dtypes=FLOAT_DTYPES, rtol=None, atol=None):
    """A hypothesis test: our_fn(*tensors, **kwargs) equals numpy_fn(*arrays, **kwargs) in
    values, shape and dtype (tuples of outputs compared one by one), inputs untouched."""
    shapes = shapes if shapes is not None else default_shapes(num_arrays, min_dims=min_dims, **FORWARD_SHAPE_LIMITS)

    @given(data=st.data())
    def test(data):
        dtype = data.draw(st.sampled_from(dtypes), label="dtype")
        arrays = _draw_arrays(data, num_arrays, shapes, domain, avoid, dtype)
        kw = _draw_kwargs(data, kwargs, arrays)
        snapshot = _snapshot(arrays, kw)
        # Both sides may legitimately divide by zero (var with N - correction = 0 is NaN in
        # NumPy and PyTorch alike); the comparison, NaNs included, is what counts.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = numpy_fn(*[a.copy() for a in arrays], **kw)
            ours = our_fn(*[mg.Tensor(a) for a in arrays], **kw)
        assert_matches(ours, expected, rtol, atol)
        assert_not_mutated(arrays, kw, snapshot)

    return _mark(test, "forward", our_fn)


def backward_test(our_fn, num_arrays=1, domain=(-10, 10), shapes=None, min_dims=0, kwargs=None,
                  avoid=NOTHING_TO_AVOID, rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL):
    """A hypothesis test: the gradient of our_fn(*tensors, **kwargs), in float64, against
    central differences (see the module docstring for everything it checks)."""
    shapes = shapes if shapes is not None else default_shapes(num_arrays, min_dims=min_dims, **BACKWARD_SHAPE_LIMITS)

    @given(data=st.data())
    def test(data):
        arrays = _draw_arrays(data, num_arrays, shapes, domain, avoid, np.float64)
        kw = _draw_kwargs(data, kwargs, arrays)
        snapshot = _snapshot(arrays, kw)
        check_backward(our_fn, arrays, kw, data.draw(st.integers(0, 2**32 - 1), label="seed"), rtol, atol)
        assert_not_mutated(arrays, kw, snapshot)

    return _mark(test, "backward", our_fn)


def check_backward(our_fn, arrays, kwargs, seed, rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL) -> None:
    """Every check of a backward test, on the given float64 arrays and keyword arguments."""
    inputs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    out = our_fn(*inputs, **kwargs)
    assert out.requires_grad, "the output does not require grad"
    # NaN against NaN would pass the comparison and check nothing.
    assert np.isfinite(out.data).all(), "the drawn inputs give a non-finite output: narrow the domain"
    # A dense random upstream gradient: every output element's contribution is weighed.
    upstream = np.random.default_rng(seed).standard_normal(out.shape)

    grads = mg.grad(out, inputs, grad_outputs=mg.Tensor(upstream), retain_graph=True)
    assert all(t.grad is None for t in inputs), "minigrad.grad wrote into .grad"
    numeric = numerical_gradients(our_fn, arrays, upstream, kwargs)
    for position, (tensor, g, expected) in enumerate(zip(inputs, grads, numeric)):
        assert isinstance(g, mg.Tensor), f"gradient {position} is {g!r}"
        assert g.shape == tensor.shape, f"gradient {position} has shape {g.shape}, its input {tensor.shape}"
        assert g.dtype == tensor.dtype, f"gradient {position} is {g.dtype}, its input {tensor.dtype}"
        np.testing.assert_allclose(g.data, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient {position}: analytic vs central differences")

    out.backward(mg.Tensor(upstream))
    for position, (tensor, g) in enumerate(zip(inputs, grads)):
        np.testing.assert_array_equal(tensor.grad, g.data, err_msg=f".grad of input {position} differs from grad()")

    # An op that returns its input unchanged (reshape to the same shape) records nothing.
    if out.grad_fn is not None:
        assert out.grad_fn.inputs is None, "backward without retain_graph kept the graph"
        with pytest.raises(RuntimeError, match="second time"):
            out.backward(mg.Tensor(upstream))


__all__ = [
    "Avoid", "BACKWARD_SHAPE_LIMITS", "FLOAT_DTYPES", "FORWARD_SHAPE_LIMITS", "assert_matches",
    "assert_not_mutated", "backward_test", "check_backward", "default_shapes", "forward_test",
    "numerical_gradients", "one_dim", "reduction_dims",
]
