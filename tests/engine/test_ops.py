"""Every differentiable op of minigrad: forward against NumPy, backward against central differences.

Most tests are one declaration line built by the factories of op_testing.py; the laws they
check are stated there. The tests further down are the few that do not fit a factory:
repeated indices, dropout's statistics, one_hot, the losses against PyTorch.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_testing import (
    BACKWARD_SHAPE_LIMITS, FLOAT_DTYPES, FORWARD_SHAPE_LIMITS, Avoid, assert_matches, backward_test,
    forward_test, one_dim, reduction_dims,
)

import minigrad as mg
import minigrad.functional as F

# ==============================================================================================
# elementwise
# ==============================================================================================

AWAY_FROM_ZERO = Avoid(points=(0.0,), margin=0.1)  # divisors: 1/b and a/b^2 stay moderate
KINK_AT_ZERO = Avoid(points=(0.0,))
POSITIVE = (1e-2, 10)

test_add_forward = forward_test(F.add, np.add, num_arrays=2)
test_add_backward = backward_test(F.add, num_arrays=2)
test_sub_forward = forward_test(F.sub, np.subtract, num_arrays=2)
test_sub_backward = backward_test(F.sub, num_arrays=2)
test_mul_forward = forward_test(F.mul, np.multiply, num_arrays=2)
test_mul_backward = backward_test(F.mul, num_arrays=2)
test_div_forward = forward_test(F.div, np.divide, num_arrays=2, avoid=AWAY_FROM_ZERO)
test_div_backward = backward_test(F.div, num_arrays=2, avoid=AWAY_FROM_ZERO)
test_neg_forward = forward_test(F.neg, np.negative)
test_neg_backward = backward_test(F.neg)

test_pow_forward = forward_test(F.pow, np.power, num_arrays=2, domain=[(0.1, 5), (-3, 3)])
test_pow_backward = backward_test(F.pow, num_arrays=2, domain=[(0.1, 5), (-3, 3)])
SCALAR_EXPONENTS = st.sampled_from([0, 1, 2, 3, -1, 0.5, 1.5, -2.5])
INTEGER_EXPONENTS = st.sampled_from([0, 1, 2, 3])
test_pow_scalar_exponent_forward = forward_test(
    lambda x, exponent: x ** exponent, lambda x, exponent: x ** exponent, domain=(0.1, 5),
    kwargs=dict(exponent=SCALAR_EXPONENTS))
test_pow_scalar_exponent_backward = backward_test(
    lambda x, exponent: x ** exponent, domain=(0.1, 5), kwargs=dict(exponent=SCALAR_EXPONENTS))
test_pow_integer_exponent_negative_base_backward = backward_test(
    lambda x, exponent: x ** exponent, domain=(-5, 5), kwargs=dict(exponent=INTEGER_EXPONENTS))
test_pow_scalar_base_forward = forward_test(lambda x: 2.5 ** x, lambda x: 2.5 ** x, domain=(-5, 5))
test_pow_scalar_base_backward = backward_test(lambda x: 2.5 ** x, domain=(-5, 5))

test_exp_forward = forward_test(F.exp, np.exp)
test_exp_backward = backward_test(F.exp)
test_log_forward = forward_test(F.log, np.log, domain=POSITIVE)
test_log_backward = backward_test(F.log, domain=POSITIVE)
test_sqrt_forward = forward_test(F.sqrt, np.sqrt, domain=(0, 10))
test_sqrt_backward = backward_test(F.sqrt, domain=POSITIVE)
test_abs_forward = forward_test(F.abs, np.abs)
test_abs_backward = backward_test(F.abs, avoid=KINK_AT_ZERO)

vectorized_erf = np.vectorize(math.erf, otypes=[np.float64])
test_erf_forward = forward_test(F.erf, lambda x: vectorized_erf(x).astype(x.dtype))
test_erf_backward = backward_test(F.erf, domain=(-4, 4))

CLAMP_BOUNDS = dict(min=st.sampled_from([-5.5, -1.25, 0.0, None]), max=st.sampled_from([0.5, 2.0, 7.75]))
CLAMP_KINKS = Avoid(points=(-5.5, -1.25, 0.0, 0.5, 2.0, 7.75))
test_clamp_forward = forward_test(F.clamp, lambda x, min, max: np.clip(x, min, max), kwargs=CLAMP_BOUNDS)
test_clamp_backward = backward_test(F.clamp, kwargs=CLAMP_BOUNDS, avoid=CLAMP_KINKS)
test_clamp_min_only_backward = backward_test(lambda x: F.clip(x, min=-1.25), avoid=CLAMP_KINKS)

test_maximum_forward = forward_test(F.maximum, np.maximum, num_arrays=2)
test_maximum_backward = backward_test(F.maximum, num_arrays=2, avoid=Avoid(crossings=True))
test_minimum_forward = forward_test(F.minimum, np.minimum, num_arrays=2)
test_minimum_backward = backward_test(F.minimum, num_arrays=2, avoid=Avoid(crossings=True))


def condition_for(a, b):
    """A boolean condition of the shape a and b broadcast to."""
    return hnp.arrays(np.bool_, np.broadcast_shapes(a.shape, b.shape))


def where_ab(a, b, condition):
    return F.where(condition, a, b)


test_where_forward = forward_test(where_ab, lambda a, b, condition: np.where(condition, a, b),
                                  num_arrays=2, kwargs=dict(condition=condition_for))
test_where_backward = backward_test(where_ab, num_arrays=2, kwargs=dict(condition=condition_for))


def test_maximum_splits_the_gradient_of_a_tie():
    a = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = mg.Tensor(np.array([3.0, 2.0, 1.0]), requires_grad=True)
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.5, 0.0])


def test_pow_with_exponent_zero_has_zero_gradient_at_zero():
    """d/dx x^0 = 0 everywhere, x = 0 included (PyTorch's convention), not 0 * 0^-1 = NaN."""
    x = mg.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_erf_matches_math_erf_to_double_precision():
    """Cody's rational approximations on a dense grid that crosses both interval boundaries
    (|x| = 0.46875 and 4) and reaches the saturated tail."""
    x = np.concatenate([np.linspace(-7, 7, 20001), [-4.0, -0.46875, 0.0, 0.46875, 4.0]])
    np.testing.assert_allclose(F.erf(mg.Tensor(x)).data, vectorized_erf(x), rtol=2e-15, atol=1e-16)


# ==============================================================================================
# activations
# ==============================================================================================

SOFTPLUS_BETAS, SOFTPLUS_THRESHOLDS = (0.5, 1.0, 2.0), (20.0, 5.0, 1.0)
SOFTPLUS_ARGUMENTS = dict(beta=st.sampled_from(SOFTPLUS_BETAS), threshold=st.sampled_from(SOFTPLUS_THRESHOLDS))
# softplus switches to the identity where beta x > threshold: a small jump to keep away from.
SOFTPLUS_SWITCHES = Avoid(points=tuple(t / b for t in SOFTPLUS_THRESHOLDS for b in SOFTPLUS_BETAS))


def numpy_softplus(x, beta, threshold):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta).astype(x.dtype)


def numpy_gelu(x):
    return (0.5 * x * (1 + vectorized_erf(x / math.sqrt(2)))).astype(x.dtype)


def numpy_gelu_tanh(x):
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))).astype(x.dtype)


test_relu_forward = forward_test(F.relu, lambda x: np.maximum(x, 0))
test_relu_backward = backward_test(F.relu, avoid=KINK_AT_ZERO)
SLOPES = dict(negative_slope=st.sampled_from([0.01, 0.2, 1.5]))
test_leaky_relu_forward = forward_test(F.leaky_relu, lambda x, negative_slope: np.where(x > 0, x, negative_slope * x),
                                       kwargs=SLOPES)
test_leaky_relu_backward = backward_test(F.leaky_relu, kwargs=SLOPES, avoid=KINK_AT_ZERO)
ALPHAS = dict(alpha=st.sampled_from([1.0, 0.5, 2.0]))
test_elu_forward = forward_test(F.elu, lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
                                kwargs=ALPHAS)
test_elu_backward = backward_test(F.elu, kwargs=ALPHAS, avoid=KINK_AT_ZERO)
test_gelu_forward = forward_test(F.gelu, numpy_gelu)
test_gelu_backward = backward_test(F.gelu)
test_gelu_tanh_forward = forward_test(lambda x: F.gelu(x, approximate="tanh"), numpy_gelu_tanh)
test_gelu_tanh_backward = backward_test(lambda x: F.gelu(x, approximate="tanh"))
test_sigmoid_forward = forward_test(F.sigmoid, lambda x: 1 / (1 + np.exp(-x)))
test_sigmoid_backward = backward_test(F.sigmoid)
test_tanh_forward = forward_test(F.tanh, np.tanh)
test_tanh_backward = backward_test(F.tanh)
test_softplus_forward = forward_test(F.softplus, numpy_softplus, kwargs=SOFTPLUS_ARGUMENTS)
test_softplus_backward = backward_test(F.softplus, kwargs=SOFTPLUS_ARGUMENTS, avoid=SOFTPLUS_SWITCHES)


# ==============================================================================================
# reductions
# ==============================================================================================

REDUCE = dict(dim=reduction_dims(), keepdim=st.booleans())
REDUCE_ONE_DIM = dict(dim=one_dim, keepdim=st.booleans())
VARIANCE = dict(dim=reduction_dims(), keepdim=st.booleans(), correction=st.sampled_from([0, 1]))
NO_TIES = Avoid(ties=True)
# Every reduced dimension has 2 or more elements, so N - correction > 0.
AT_LEAST_TWO_PER_DIM = hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3)


def numpy_logsumexp(x, dim, keepdim):
    """ln sum e^x summed naively in float64: exact enough for |x| <= 10."""
    return np.log(np.sum(np.exp(x.astype(np.float64)), axis=dim, keepdims=keepdim)).astype(x.dtype)


def max_with_dim(x, dim, keepdim):
    return tuple(F.max(x, dim, keepdim))


def min_with_dim(x, dim, keepdim):
    return tuple(F.min(x, dim, keepdim))


test_sum_forward = forward_test(F.sum, lambda x, dim, keepdim: np.sum(x, axis=dim, keepdims=keepdim), kwargs=REDUCE)
test_sum_backward = backward_test(F.sum, kwargs=REDUCE)
test_mean_forward = forward_test(F.mean, lambda x, dim, keepdim: np.mean(x, axis=dim, keepdims=keepdim), kwargs=REDUCE)
test_mean_backward = backward_test(F.mean, kwargs=REDUCE)
test_max_forward = forward_test(F.max, np.max)
test_max_backward = backward_test(F.max, avoid=NO_TIES)
test_min_forward = forward_test(F.min, np.min)
test_min_backward = backward_test(F.min, avoid=NO_TIES)
test_max_with_dim_forward = forward_test(
    max_with_dim, lambda x, dim, keepdim: (np.max(x, dim, keepdims=keepdim), np.argmax(x, dim, keepdims=keepdim)),
    min_dims=1, kwargs=REDUCE_ONE_DIM)
test_max_with_dim_backward = backward_test(lambda x, dim, keepdim: F.max(x, dim, keepdim).values,
                                           min_dims=1, kwargs=REDUCE_ONE_DIM, avoid=NO_TIES)
test_min_with_dim_forward = forward_test(
    min_with_dim, lambda x, dim, keepdim: (np.min(x, dim, keepdims=keepdim), np.argmin(x, dim, keepdims=keepdim)),
    min_dims=1, kwargs=REDUCE_ONE_DIM)
test_min_with_dim_backward = backward_test(lambda x, dim, keepdim: F.min(x, dim, keepdim).values,
                                           min_dims=1, kwargs=REDUCE_ONE_DIM, avoid=NO_TIES)
test_amax_forward = forward_test(F.amax, lambda x, dim, keepdim: np.amax(x, dim, keepdims=keepdim), kwargs=REDUCE)
test_amax_backward = backward_test(F.amax, kwargs=REDUCE, avoid=NO_TIES)
test_amin_forward = forward_test(F.amin, lambda x, dim, keepdim: np.amin(x, dim, keepdims=keepdim), kwargs=REDUCE)
test_amin_backward = backward_test(F.amin, kwargs=REDUCE, avoid=NO_TIES)
test_argmax_forward = forward_test(F.argmax, lambda x, dim, keepdim: np.argmax(x, dim, keepdims=keepdim),
                                   min_dims=1, kwargs=REDUCE_ONE_DIM)
test_argmin_forward = forward_test(F.argmin, lambda x, dim, keepdim: np.argmin(x, dim, keepdims=keepdim),
                                   min_dims=1, kwargs=REDUCE_ONE_DIM)
test_var_forward = forward_test(
    F.var, lambda x, dim, keepdim, correction: np.var(x, dim, ddof=correction, keepdims=keepdim),
    kwargs=VARIANCE, rtol=1e-4)
test_var_backward = backward_test(F.var, shapes=AT_LEAST_TWO_PER_DIM, kwargs=VARIANCE)
test_std_forward = forward_test(
    F.std, lambda x, dim, keepdim, correction: np.std(x, dim, ddof=correction, keepdims=keepdim),
    kwargs=VARIANCE, rtol=1e-4)
test_std_backward = backward_test(F.std, shapes=AT_LEAST_TWO_PER_DIM, kwargs=VARIANCE, avoid=NO_TIES)
test_logsumexp_forward = forward_test(F.logsumexp, numpy_logsumexp, kwargs=REDUCE)
test_logsumexp_backward = backward_test(F.logsumexp, kwargs=REDUCE)


def test_max_with_dim_returns_named_values_and_indices():
    x = mg.Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]))
    result = F.max(x, dim=1)
    np.testing.assert_array_equal(result.values.data, [5.0, 7.0])
    np.testing.assert_array_equal(result.indices.data, [1, 0])  # the first of tied maxima
    assert result.indices.dtype == np.int64


def test_max_with_dim_sends_the_gradient_to_one_index_and_amax_splits_ties():
    x = mg.Tensor(np.array([7.0, 1.0, 7.0]), requires_grad=True)
    F.max(x, dim=0).values.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 0.0])
    x.grad = None
    F.amax(x).backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.0, 0.5])


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3), elements=st.floats(-10, 10)), st.data())
def test_numpy_spelling_axis_keepdims_equals_dim_keepdim(array, data):
    x = mg.Tensor(array)
    dim = data.draw(reduction_dims()(array))
    keepdim = data.draw(st.booleans())
    for reduce in (F.sum, F.mean, F.amax, F.amin, F.logsumexp, F.var, F.std):
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(reduce(x, axis=dim, keepdims=keepdim).data,
                                          reduce(x, dim, keepdim).data)


# ==============================================================================================
# movement
# ==============================================================================================


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def same_size_shape(draw, x):
    """A shape with x's number of elements, possibly with one -1 for the inferred size."""
    shape, remaining = [], x.size
    for _ in range(draw(st.integers(0, 3))):
        factor = draw(st.sampled_from(_divisors(remaining)))
        shape.append(factor)
        remaining //= factor
    shape = draw(st.permutations(shape + [remaining]))
    if draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = -1
    return tuple(shape)


@st.composite
def flatten_range(draw, x):
    """start_dim <= end_dim (after counting negatives from the end), either may be negative."""
    if x.ndim == 0:
        return {}
    start = draw(st.integers(0, x.ndim - 1))
    end = draw(st.integers(start, x.ndim - 1))
    return dict(start_dim=start - draw(st.sampled_from([0, x.ndim])), end_dim=end - draw(st.sampled_from([0, x.ndim])))


@st.composite
def permutation(draw, x):
    return tuple(d - draw(st.sampled_from([0, x.ndim])) for d in draw(st.permutations(range(x.ndim))))


@st.composite
def expand_target(draw, x):
    """A shape x broadcasts to: new leading dimensions, size-1 dimensions grown, -1 for "keep"."""
    leading = draw(st.lists(st.integers(1, 3), max_size=2))
    kept = [draw(st.integers(1, 3)) if size == 1 else draw(st.sampled_from([size, -1])) for size in x.shape]
    return tuple(leading + kept)


def numpy_expand(x, shape):
    offset = len(shape) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - offset] if size == -1 else size for i, size in enumerate(shape)))


def squeeze_dims(x):
    return st.one_of(st.none(), one_dim(x), hnp.valid_tuple_axes(x.ndim, min_size=1)) if x.ndim else st.none()


def numpy_squeeze(x, dim):
    dims = range(x.ndim) if dim is None else [d % x.ndim for d in np.atleast_1d(dim)]
    return np.squeeze(x, axis=tuple(d for d in dims if x.shape[d] == 1))


def numpy_flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])


@st.composite
def index_for(draw, x):
    """An index of every kind NumPy takes: basic (ints, slices, None, ...), integer arrays
    (repeats included), boolean masks, and an integer array mixed with slices."""
    kinds = ["basic", "mask"] + (["integer arrays", "mixed"] if x.ndim else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "basic":
        return draw(hnp.basic_indices(x.shape, allow_newaxis=True))
    if kind == "mask":
        return draw(hnp.arrays(np.bool_, x.shape[:draw(st.integers(0, x.ndim))]))
    if kind == "integer arrays":
        picks_shape = hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)
        return draw(hnp.integer_array_indices(x.shape, result_shape=picks_shape))
    axis = draw(st.integers(0, x.ndim - 1))
    size = x.shape[axis]
    picks = draw(hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-size, size - 1)))
    return (slice(None),) * axis + (picks,)


@st.composite
def gather_index(draw, x):
    """dim and an index array: index.shape[d] <= x.shape[d] off `dim`, entries in [0, x.shape[dim])."""
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    shape = [draw(st.integers(1, 3)) if d == dim % x.ndim else draw(st.integers(1, size))
             for d, size in enumerate(x.shape)]
    index = draw(hnp.arrays(np.int64, tuple(shape), elements=st.integers(0, x.shape[dim] - 1)))
    return dict(dim=dim, index=index)


def numpy_gather(x, dim, index):
    """out[p] = x[p with p[dim] replaced by index[p]], one position at a time."""
    out = np.empty(index.shape, dtype=x.dtype)
    for position in np.ndindex(*index.shape):
        source = list(position)
        source[dim] = index[position]
        out[position] = x[tuple(source)]
    return out


@st.composite
def concatenable_shapes(draw, count, max_dims, max_side):
    """`count` shapes equal outside one dimension, where each has its own size."""
    base = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, max_side=max_side))
    dim = draw(st.integers(0, len(base) - 1))
    sizes = draw(st.lists(st.integers(1, max_side), min_size=count, max_size=count))
    return tuple(base[:dim] + (size,) + base[dim + 1:] for size in sizes)


def concatenation_dim(*arrays):
    """Every dimension outside which all the inputs agree, counted from either end."""
    ndim = arrays[0].ndim
    dims = [d for d in range(ndim) if len({a.shape[:d] + a.shape[d + 1:] for a in arrays}) == 1]
    return st.sampled_from(dims + [d - ndim for d in dims])


def same_shapes(count, max_dims, max_side, min_dims=0):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side).map(lambda shape: (shape,) * count)


@st.composite
def pad_widths(draw, x):
    """PyTorch's order: (last before, last after, second-to-last before, after, ...)."""
    widths = draw(st.lists(st.integers(0, 2), min_size=0, max_size=2 * x.ndim).filter(lambda w: len(w) % 2 == 0))
    return dict(pad=tuple(widths), value=draw(st.sampled_from([0.0, -1.5])))


def numpy_pad(x, pad, value):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(x, widths, constant_values=value)


def getitem(x, index):
    return x[index]


def concatenate(*tensors, dim):
    return F.concatenate(tensors, dim)


def stack(*tensors, dim):
    return F.stack(tensors, dim)


def reshape(x, shape):
    return F.reshape(x, shape)


def view(x, shape):
    return F.view(x, shape)


def numpy_reshape(x, shape):
    return x.reshape(shape)


def permute(x, dims):
    return F.permute(x, dims)


def numpy_permute(x, dims):
    return np.transpose(x, dims)


def numpy_swapaxes(x, dim0, dim1):
    return np.swapaxes(x, dim0, dim1)


def expand(x, shape):
    return F.expand(x, shape)


def broadcast_to(x, shape):
    return F.broadcast_to(x, shape)


def numpy_concatenate(*arrays, dim):
    return np.concatenate(arrays, dim)


def numpy_stack(*arrays, dim):
    return np.stack(arrays, dim)


SAME_SIZE = dict(shape=same_size_shape)
PERMUTATION = dict(dims=permutation)
TWO_DIMS = dict(dim0=one_dim, dim1=one_dim)
EXPANDED = dict(shape=expand_target)
UNSQUEEZE_DIM = dict(dim=lambda x: st.integers(-x.ndim - 1, x.ndim))
STACK_DIM = dict(dim=lambda x, *others: st.integers(-x.ndim - 1, x.ndim))
CONCATENATION_DIM = dict(dim=concatenation_dim)
FORWARD_CONCATENATION = concatenable_shapes(3, **FORWARD_SHAPE_LIMITS)
BACKWARD_CONCATENATION = concatenable_shapes(3, **BACKWARD_SHAPE_LIMITS)
FORWARD_TRIPLES = same_shapes(3, **FORWARD_SHAPE_LIMITS)
BACKWARD_TRIPLES = same_shapes(3, **BACKWARD_SHAPE_LIMITS)

test_reshape_forward = forward_test(reshape, numpy_reshape, kwargs=SAME_SIZE)
test_reshape_backward = backward_test(reshape, kwargs=SAME_SIZE)
test_view_forward = forward_test(view, numpy_reshape, kwargs=SAME_SIZE)
test_flatten_forward = forward_test(F.flatten, numpy_flatten, kwargs=flatten_range)
test_flatten_backward = backward_test(F.flatten, kwargs=flatten_range)
test_permute_forward = forward_test(permute, numpy_permute, kwargs=PERMUTATION)
test_permute_backward = backward_test(permute, kwargs=PERMUTATION)
test_transpose_forward = forward_test(F.transpose, numpy_swapaxes, min_dims=1, kwargs=TWO_DIMS)
test_transpose_backward = backward_test(F.transpose, min_dims=1, kwargs=TWO_DIMS)
test_expand_forward = forward_test(expand, numpy_expand, kwargs=EXPANDED)
test_expand_backward = backward_test(expand, kwargs=EXPANDED)
test_broadcast_to_forward = forward_test(broadcast_to, numpy_expand, kwargs=EXPANDED)
test_squeeze_forward = forward_test(F.squeeze, numpy_squeeze, kwargs=dict(dim=squeeze_dims))
test_squeeze_backward = backward_test(F.squeeze, kwargs=dict(dim=squeeze_dims))
test_unsqueeze_forward = forward_test(F.unsqueeze, lambda x, dim: np.expand_dims(x, dim), kwargs=UNSQUEEZE_DIM)
test_unsqueeze_backward = backward_test(F.unsqueeze, kwargs=UNSQUEEZE_DIM)
test_getitem_forward = forward_test(getitem, getitem, kwargs=dict(index=index_for))
test_getitem_backward = backward_test(getitem, kwargs=dict(index=index_for))
test_gather_forward = forward_test(F.gather, numpy_gather, min_dims=1, kwargs=gather_index)
test_gather_backward = backward_test(F.gather, min_dims=1, kwargs=gather_index)
test_concatenate_forward = forward_test(concatenate, numpy_concatenate, num_arrays=3, shapes=FORWARD_CONCATENATION,
                                        kwargs=CONCATENATION_DIM)
test_concatenate_backward = backward_test(concatenate, num_arrays=3, shapes=BACKWARD_CONCATENATION,
                                          kwargs=CONCATENATION_DIM)
test_stack_forward = forward_test(stack, numpy_stack, num_arrays=3, shapes=FORWARD_TRIPLES, kwargs=STACK_DIM)
test_stack_backward = backward_test(stack, num_arrays=3, shapes=BACKWARD_TRIPLES, kwargs=STACK_DIM)
test_pad_forward = forward_test(F.pad, numpy_pad, min_dims=1, kwargs=pad_widths)
test_pad_backward = backward_test(F.pad, min_dims=1, kwargs=pad_widths)


def test_aliases_are_the_same_functions():
    assert F.view is F.reshape and F.broadcast_to is F.expand
    assert F.cat is F.concatenate and F.clip is F.clamp


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.flatten(x, 1, 0), ValueError, "start_dim 1 comes after end_dim 0"),
    (lambda x: F.flatten(x, 0, 4), IndexError, "flatten: dimension 4 is out of range"),
    (lambda x: F.transpose(x, 0, 5), IndexError, "transpose: dimension 5 is out of range"),
    (lambda x: F.squeeze(x, 5), IndexError, "squeeze: dimension 5 is out of range"),
    (lambda x: F.permute(x, 5, 0), IndexError, "permute: dimension 5 is out of range"),
    (lambda x: F.permute(x, 0, 0), ValueError, "not a permutation"),
    (lambda x: F.unsqueeze(x, 4), IndexError, "unsqueeze: dimension 4 is out of range"),
    (lambda x: F.gather(x, 1, np.zeros((3, 1), dtype=np.int64)), ValueError, r"index of shape \(3, 1\) is larger"),
    (lambda x: F.reshape(x, 4, 2), ValueError, r"shape \(2, 3\) \(6 elements\) to \(4, 2\)"),
    (lambda x: F.expand(x, 3, 3), ValueError, r"cannot broadcast shape \(2, 3\) to \(3, 3\)"),
    (lambda x: F.cat([x, x[:, :2]], 0), ValueError, r"tensor 1 has shape \(2, 2\)"),
    (lambda x: F.pad(x, (1,)), ValueError, "even number of widths"),
    (lambda x: F.sum(x, 2), IndexError, "dimension 2 is out of range"),
    (lambda x: F.softmax(x, 2), IndexError, "softmax: dimension 2 is out of range"),
    (lambda x: F.matmul(x, x), ValueError, r"\(2, 3\) and \(2, 3\) do not align: 3 != 2"),
    (lambda x: F.clamp(x), ValueError, "at least one of min and max"),
    (lambda x: F.mse_loss(x, x[0]), ValueError, "input shape"),
    (lambda x: F.cross_entropy(x, np.array([0, 3])), IndexError, "target 3 is out of bounds for 3 classes"),
])
def test_bad_arguments_raise_errors_that_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(mg.Tensor(np.zeros((2, 3))))


def test_repeated_indices_accumulate_their_gradients():
    x = mg.Tensor(np.arange(4.0), requires_grad=True)
    picked = x[np.array([0, 2, 0, 0, 3])]
    picked.backward(mg.Tensor(np.array([1.0, 10.0, 100.0, 1000.0, 5.0])))
    np.testing.assert_array_equal(x.grad, [1101.0, 0.0, 10.0, 5.0])


def test_gather_with_repeated_indices_accumulates():
    x = mg.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    F.gather(x, 1, np.array([[0, 0, 0], [1, 0, 1]])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3.0, 0.0], [1.0, 2.0]])


# ==============================================================================================
# linear algebra
# ==============================================================================================

# NumPy's gufunc signature for matmul, "(n?,k),(k,m?)->(n?,m?)": a 1-D operand drops the
# optional dimension; up to two broadcast batch dimensions in front.
FORWARD_MATMUL = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=4).map(
    lambda drawn: drawn.input_shapes)
BACKWARD_MATMUL = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3).map(
    lambda drawn: drawn.input_shapes)

test_matmul_forward = forward_test(F.matmul, np.matmul, num_arrays=2, shapes=FORWARD_MATMUL)
test_matmul_backward = backward_test(F.matmul, num_arrays=2, shapes=BACKWARD_MATMUL)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)), ((3,), (2, 3, 4)), ((2, 2, 3), (3,)),
])
def test_matmul_shapes_of_every_kind(shape_a, shape_b):
    """1-D, 2-D and broadcast batches, each against NumPy and gradcheck."""
    generator = np.random.default_rng(0)
    a, b = generator.standard_normal(shape_a), generator.standard_normal(shape_b)
    assert_matches(F.matmul(mg.Tensor(a), mg.Tensor(b)), np.matmul(a, b))
    assert mg.gradcheck(F.matmul, (mg.Tensor(a, requires_grad=True), mg.Tensor(b, requires_grad=True)))


# ==============================================================================================
# nn functional
# ==============================================================================================


@st.composite
def linear_shapes(draw, bias, max_side):
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=max_side))
    features_in, features_out = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    shapes = (batch + (features_in,), (features_out, features_in))
    return shapes + ((features_out,),) if bias else shapes


def numpy_softmax(x, dim):
    """e^x / sum e^x, naively in float64: exact enough for |x| <= 10."""
    e = np.exp(x.astype(np.float64))
    return (e / e.sum(axis=dim, keepdims=True)).astype(x.dtype)


def numpy_log_softmax(x, dim):
    x64 = x.astype(np.float64)
    return (x64 - np.log(np.exp(x64).sum(axis=dim, keepdims=True))).astype(x.dtype)


SOFTMAX_DIM = dict(dim=one_dim)
test_linear_forward = forward_test(F.linear, lambda x, w, b: x @ w.T + b, num_arrays=3,
                                   shapes=linear_shapes(bias=True, max_side=4))
test_linear_backward = backward_test(F.linear, num_arrays=3, shapes=linear_shapes(bias=True, max_side=3))
test_linear_without_bias_forward = forward_test(F.linear, lambda x, w: x @ w.T, num_arrays=2,
                                                shapes=linear_shapes(bias=False, max_side=4))
test_linear_without_bias_backward = backward_test(F.linear, num_arrays=2, shapes=linear_shapes(bias=False, max_side=3))
test_softmax_forward = forward_test(F.softmax, numpy_softmax, min_dims=1, kwargs=SOFTMAX_DIM)
test_softmax_backward = backward_test(F.softmax, min_dims=1, kwargs=SOFTMAX_DIM)
test_log_softmax_forward = forward_test(F.log_softmax, numpy_log_softmax, min_dims=1, kwargs=SOFTMAX_DIM)
test_log_softmax_backward = backward_test(F.log_softmax, min_dims=1, kwargs=SOFTMAX_DIM)


# ---------------------------------------------------------------------------------- losses

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
# (C,), (N, C) and (N, C, d) inputs, the class dimension being the one of size C.
LOSS_INPUT_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)


def _class_dim(scores):
    return 0 if scores.ndim == 1 else 1


def _index_target_shape(scores):
    return () if scores.ndim == 1 else scores.shape[:1] + scores.shape[2:]


@st.composite
def class_index_arguments(draw, scores, smoothing=True):
    """Class-index targets (some set to ignore_index), and optional weight, smoothing, reduction."""
    num_classes = scores.shape[_class_dim(scores)]
    # Ignoring a real class (the last) needs another class to keep.
    ignore_index = draw(st.sampled_from([-100, num_classes - 1] if num_classes > 1 else [-100]))
    target_shape = _index_target_shape(scores)
    target = draw(hnp.arrays(np.int64, target_shape, elements=st.integers(0, num_classes - 1)))
    ignored = draw(hnp.arrays(np.bool_, target_shape))
    target = np.where(ignored, ignore_index, target)
    if (target == ignore_index).all():
        # A mean over no examples is 0/0 (NaN in PyTorch too): keep one.
        target.reshape(-1)[0] = (ignore_index + 1) % num_classes
    weight = draw(st.none() | hnp.arrays(scores.dtype, (num_classes,), elements=st.floats(0.25, 4, width=32)))
    arguments = dict(target=target, weight=weight, ignore_index=ignore_index, reduction=draw(REDUCTIONS))
    if smoothing:
        arguments["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return arguments


@st.composite
def class_probability_arguments(draw, scores):
    """Targets that are probability distributions along the class dimension."""
    raw = draw(hnp.arrays(scores.dtype, scores.shape, elements=st.floats(0.0625, 1, width=32)))
    target = (raw / raw.sum(axis=_class_dim(scores), keepdims=True)).astype(scores.dtype)
    weight = draw(st.none() | hnp.arrays(scores.dtype, scores.shape[_class_dim(scores):][:1],
                                         elements=st.floats(0.25, 4, width=32)))
    return dict(target=target, weight=weight, reduction=draw(REDUCTIONS),
                label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5])))


def cross_entropy_arguments(scores):
    return st.one_of(class_index_arguments(scores), class_probability_arguments(scores))


def nll_arguments(scores):
    return class_index_arguments(scores, smoothing=False)


def _classes_last(array, class_dim):
    """(N, C, d...) -> (N * d..., C); (C,) -> (1, C)."""
    if array.ndim == 1:
        return array[None]
    moved = np.moveaxis(array, class_dim, -1)
    return moved.reshape(-1, moved.shape[-1])


def numpy_log_softmax_stable(x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def numpy_nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's documented formula: l_n = -w[y_n] x[n, y_n], ignored targets weigh 0; "mean"
    divides by the total weight of the targets used."""
    rows = _classes_last(log_probs, 1)
    flat_target = target.reshape(-1)
    weight = np.ones(rows.shape[1], dtype=rows.dtype) if weight is None else weight
    kept = flat_target != ignore_index
    safe = np.where(kept, flat_target, 0)
    weights = np.where(kept, weight[safe], 0).astype(rows.dtype)
    losses = -rows[np.arange(len(safe)), safe] * weights
    if reduction == "mean":
        return (losses.sum() / weights.sum()).astype(rows.dtype)
    if reduction == "sum":
        return losses.sum()
    return losses.reshape(target.shape)


def numpy_cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's documented formulas, for class indices and for class probabilities, with label
    smoothing e: (1 - e) * the loss of the target + e / C * the loss of the uniform target."""
    class_dim = _class_dim(logits)
    num_classes = logits.shape[class_dim]
    log_probs = numpy_log_softmax_stable(logits, class_dim)
    per_class_weight = np.ones(num_classes, dtype=logits.dtype) if weight is None else weight
    weight_shape = [1] * logits.ndim
    weight_shape[class_dim] = num_classes
    weighted = log_probs * per_class_weight.reshape(weight_shape)
    if np.issubdtype(target.dtype, np.floating):
        smoothed = target * (1 - label_smoothing) + label_smoothing / num_classes
        losses = -(weighted * smoothed).sum(axis=class_dim)
        return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction].astype(logits.dtype)
    nll = numpy_nll_loss(log_probs, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    kept = target != ignore_index
    uniform = np.where(kept, -weighted.sum(axis=class_dim), 0)
    if reduction == "mean":
        uniform = uniform.sum() / np.where(kept, per_class_weight[np.where(kept, target, 0)], 0).sum()
    elif reduction == "sum":
        uniform = uniform.sum()
    return ((1 - label_smoothing) * nll + label_smoothing / num_classes * uniform).astype(logits.dtype)


def numpy_mse_loss(a, b, reduction):
    squared = (a - b) ** 2
    return {"mean": np.mean(squared), "sum": np.sum(squared), "none": squared}[reduction]


@st.composite
def bce_arguments(draw, logits, target):
    """weight of the input's shape or of its last dimension; pos_weight per class (last dim)."""
    weight_shape = draw(st.sampled_from([logits.shape, logits.shape[-1:]]))
    weight = draw(st.none() | hnp.arrays(logits.dtype, weight_shape, elements=st.floats(0.25, 4, width=32)))
    pos_weight = draw(st.none() | hnp.arrays(logits.dtype, logits.shape[-1:], elements=st.floats(0.25, 4, width=32)))
    return dict(weight=weight, pos_weight=pos_weight, reduction=draw(REDUCTIONS))


def numpy_bce_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """-w [p y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x))], with ln sigmoid(x) = -ln(1 + e^-x)."""
    log_sigmoid = -np.logaddexp(0, -x)
    log_one_minus_sigmoid = -np.logaddexp(0, x)
    positive = y * log_sigmoid * (1 if pos_weight is None else pos_weight)
    losses = -(positive + (1 - y) * log_one_minus_sigmoid) * (1 if weight is None else weight)
    return {"mean": np.mean(losses), "sum": np.sum(losses), "none": losses}[reduction].astype(x.dtype)


SAME_SHAPE_PAIRS_FORWARD = same_shapes(2, **FORWARD_SHAPE_LIMITS)
SAME_SHAPE_PAIRS_BACKWARD = same_shapes(2, **BACKWARD_SHAPE_LIMITS)
PROBABILITIES = (0, 1)
# float32 cross-entropies sum several float32 logs: a little more slack than one op.
LOSS_TOLERANCE = dict(rtol=1e-4, atol=1e-5)

test_cross_entropy_forward = forward_test(F.cross_entropy, numpy_cross_entropy, shapes=LOSS_INPUT_SHAPES,
                                          kwargs=cross_entropy_arguments, **LOSS_TOLERANCE)
test_cross_entropy_backward = backward_test(F.cross_entropy, shapes=LOSS_INPUT_SHAPES, kwargs=cross_entropy_arguments)
test_nll_loss_forward = forward_test(F.nll_loss, numpy_nll_loss, shapes=LOSS_INPUT_SHAPES, kwargs=nll_arguments)
test_nll_loss_backward = backward_test(F.nll_loss, shapes=LOSS_INPUT_SHAPES, kwargs=nll_arguments)
test_mse_loss_forward = forward_test(F.mse_loss, numpy_mse_loss, num_arrays=2, shapes=SAME_SHAPE_PAIRS_FORWARD,
                                     kwargs=dict(reduction=REDUCTIONS))
test_mse_loss_backward = backward_test(F.mse_loss, num_arrays=2, shapes=SAME_SHAPE_PAIRS_BACKWARD,
                                       kwargs=dict(reduction=REDUCTIONS))
test_bce_with_logits_forward = forward_test(
    F.binary_cross_entropy_with_logits, numpy_bce_with_logits, num_arrays=2, domain=[(-10, 10), PROBABILITIES],
    shapes=same_shapes(2, min_dims=1, **FORWARD_SHAPE_LIMITS), kwargs=bce_arguments, **LOSS_TOLERANCE)
test_bce_with_logits_backward = backward_test(
    F.binary_cross_entropy_with_logits, num_arrays=2, domain=[(-10, 10), PROBABILITIES],
    shapes=same_shapes(2, min_dims=1, **BACKWARD_SHAPE_LIMITS), kwargs=bce_arguments)


# ------------------------------------------------------------------- losses against PyTorch


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_arguments(torch, arguments):
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in arguments.items()}


def compare_with_torch(torch, our_loss, torch_loss, arrays, arguments, seed):
    """Forward and gradient (for a random upstream gradient) agree with PyTorch's to 1e-9."""
    ours_in = [mg.Tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours = our_loss(*ours_in, **arguments)
    theirs = torch_loss(*theirs_in, **_torch_arguments(torch, arguments))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(mg.Tensor(upstream))
    theirs.backward(torch.from_numpy(upstream))
    for position, (a, b) in enumerate(zip(ours_in, theirs_in)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"gradient {position}")


FLOAT64_LOSS_INPUTS = hnp.arrays(np.float64, LOSS_INPUT_SHAPES, elements=st.floats(-10, 10))
SEEDS = st.integers(0, 2**32 - 1)


@given(logits=FLOAT64_LOSS_INPUTS, data=st.data(), seed=SEEDS)
def test_cross_entropy_matches_torch(torch, logits, data, seed):
    arguments = data.draw(cross_entropy_arguments(logits))
    compare_with_torch(torch, F.cross_entropy, torch.nn.functional.cross_entropy, [logits], arguments, seed)


@given(log_probs=FLOAT64_LOSS_INPUTS, data=st.data(), seed=SEEDS)
def test_nll_loss_matches_torch(torch, log_probs, data, seed):
    arguments = data.draw(nll_arguments(log_probs))
    compare_with_torch(torch, F.nll_loss, torch.nn.functional.nll_loss, [log_probs], arguments, seed)


@given(pair=same_shapes(2, min_dims=1, **FORWARD_SHAPE_LIMITS).flatmap(
    lambda shapes: st.tuples(hnp.arrays(np.float64, shapes[0], elements=st.floats(-10, 10)),
                             hnp.arrays(np.float64, shapes[1], elements=st.floats(0, 1)))),
       data=st.data(), seed=SEEDS)
def test_bce_with_logits_matches_torch(torch, pair, data, seed):
    arguments = data.draw(bce_arguments(*pair))
    compare_with_torch(torch, F.binary_cross_entropy_with_logits,
                       torch.nn.functional.binary_cross_entropy_with_logits, list(pair), arguments, seed)


def test_cross_entropy_of_uniform_logits_is_log_of_the_class_count():
    logits = mg.Tensor(np.zeros((4, 7)))
    loss = F.cross_entropy(logits, np.array([0, 3, 6, 2]))
    assert loss.item() == pytest.approx(math.log(7), rel=1e-12)


# ---------------------------------------------------------------------------------- dropout

DROPOUT_PROBABILITIES = st.sampled_from([0.1, 0.5, 0.9])


def seeded_dropout(x, p):
    """Dropout with a fixed mask, so that central differences see one function."""
    return F.dropout(x, p, generator=np.random.default_rng(0))


test_dropout_backward = backward_test(seeded_dropout, kwargs=dict(p=DROPOUT_PROBABILITIES))


@given(seed=st.integers(0, 2**31 - 1), p=DROPOUT_PROBABILITIES)
def test_dropout_same_seed_same_mask(seed, p):
    x = mg.Tensor(np.ones((8, 16)))
    mg.manual_seed(seed)
    first = F.dropout(x, p)
    mg.manual_seed(seed)
    second = F.dropout(x, p)
    np.testing.assert_array_equal(first.data, second.data)


@given(p=st.floats(0, 1), array=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3), elements=st.floats(-10, 10)))
def test_dropout_is_the_identity_when_not_training(p, array):
    x = mg.Tensor(array, requires_grad=True)
    out = F.dropout(x, p, training=False)
    np.testing.assert_array_equal(out.data, array)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones_like(array))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_about_one_minus_p_and_scales_by_its_inverse(p, dtype):
    """Inverted dropout: each element kept with probability 1 - p and then scaled by exactly
    1 / (1 - p), so E[output] = input. Bounds are 5 standard deviations of the binomial
    (a false alarm about once in 2 million runs)."""
    n = 100_000
    mg.manual_seed(1234)
    values = np.random.default_rng(5).uniform(1, 2, n).astype(dtype)  # nonzero: zeros mark dropped
    out = F.dropout(mg.Tensor(values), p).data
    kept = out != 0
    tolerance = 5 * math.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < tolerance
    np.testing.assert_allclose(out[kept], values[kept] / dtype(1 - p), rtol=2 * np.finfo(dtype).eps, atol=0)
    assert out.dtype == dtype
    ones = F.dropout(mg.Tensor(np.ones(n, dtype=dtype)), p).data
    assert abs(ones.mean() - 1) < 5 * math.sqrt(p / (1 - p) / n)


def test_dropout_extreme_probabilities():
    x = mg.Tensor(np.arange(1.0, 5.0))
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros(4))
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(x, 1.5)


# ---------------------------------------------------------------------------------- one_hot


@given(indices=hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), elements=st.integers(0, 5)),
       extra=st.integers(0, 2), infer=st.booleans())
def test_one_hot_matches_rows_of_the_identity(indices, extra, infer):
    num_classes = int(indices.max()) + 1 + extra
    out = F.one_hot(mg.Tensor(indices), -1 if infer else num_classes)
    expected = np.eye(int(indices.max()) + 1 if infer else num_classes, dtype=np.int64)[indices]
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.data, expected)


def test_one_hot_rejects_out_of_range_indices():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.one_hot(mg.Tensor(np.array([0, 3])), 3)


# ==============================================================================================
# every op returns arrays
# ==============================================================================================

ZERO_D_RESULTS = {
    "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(),
    "var": lambda x: x.var(),
    "index": lambda x: x[0],
    "product of two elements": lambda x: x[0] * x[1],
    "cross_entropy": lambda x: F.cross_entropy(x.reshape(1, 3), np.array([1])),
    "mse_loss": lambda x: F.mse_loss(x, x * 2),
}


# NumPy returns scalars (np.float64), not 0-d arrays, for full reductions and 0-d arithmetic;
# Function.apply must turn them into arrays.
@pytest.mark.parametrize("name", list(ZERO_D_RESULTS))
def test_zero_dimensional_results_hold_ndarrays(name):
    x = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    out = ZERO_D_RESULTS[name](x)
    assert isinstance(out.data, np.ndarray), f"{name}: .data is {type(out.data).__name__}"


def test_gradient_of_a_zero_dimensional_leaf_is_an_ndarray():
    scalar = mg.Tensor(np.array(2.0), requires_grad=True)
    (scalar * 3).backward()
    assert isinstance(scalar.grad, np.ndarray), f".grad is {type(scalar.grad).__name__}"
