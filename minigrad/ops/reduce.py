"""Reductions: sum, mean, max/min, var/std, logsumexp, and sum_to_shape (undoing a broadcast).

Every reduction takes ``dim`` (PyTorch's name) or ``axis`` (NumPy's): an int, a tuple of ints,
or None for all dimensions; and ``keepdim`` / ``keepdims`` to keep reduced dimensions as size 1.
Sum and amax are primitives; the rest are built from them.
"""

import math
from collections import namedtuple

import numpy as np

from minigrad.autograd import Function, as_tensor
from minigrad.ops.elementwise import exp, log, sqrt, where
from minigrad.ops.movement import expand, gather, squeeze

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _dims(dim, ndim: int) -> tuple:
    """Normalize `dim` (None, int, or tuple; negative counts from the end) to a sorted tuple."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    limit = ndim if ndim > 0 else 1  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    normalized = []
    for d in dims:
        if not -limit <= d < limit:
            raise IndexError(f"dimension {d} is out of range for a tensor with {ndim} dimensions")
        normalized.append(int(d) % limit)
    return tuple(sorted(set(normalized))) if ndim > 0 else ()


def _resolve(dim, keepdim, axis, keepdims):
    """Accept PyTorch's (dim, keepdim) and NumPy's (axis, keepdims) spellings."""
    if axis is not None:
        if dim is not None:
            raise TypeError("pass either dim or axis, not both")
        dim = axis
    return dim, bool(keepdim if keepdims is None else keepdims)


def _kept_shape(shape: tuple, dims: tuple) -> tuple:
    """`shape` with every reduced dimension set to 1 (the keepdims shape)."""
    return tuple(1 if i in dims else size for i, size in enumerate(shape))


class Sum(Function):
    """y = sum of x over dims;  dy/dx_i = 1, so the gradient is grad copied along the summed dims."""

    def forward(self, x, dims=(), keepdim=False):
        self.input_shape = x.shape
        self.kept_shape = _kept_shape(x.shape, dims)
        return x.data.sum(axis=dims, keepdims=keepdim)

    def backward(self, grad):
        return expand(grad.reshape(self.kept_shape), self.input_shape)


class SumToShape(Function):
    """y = x summed down to `shape` (the inverse of broadcasting x from `shape`);
    dy/dx: the gradient is grad broadcast back to x's shape."""

    def forward(self, x, shape=()):
        self.input_shape = x.shape
        leading = x.ndim - len(shape)
        dims = tuple(range(leading)) + tuple(
            leading + i for i, size in enumerate(shape) if size == 1 and x.shape[leading + i] != 1
        )
        return x.data.sum(axis=dims, keepdims=True).reshape(shape)

    def backward(self, grad):
        return expand(grad, self.input_shape)


class Amax(Function):
    """y = max of x over dims;  dy/dx_i = 1/k for the k entries equal to the max, else 0.

    Splitting the gradient evenly among ties (as PyTorch's amax does) keeps it a valid
    subgradient and makes max(x) and -min(-x) agree.
    """

    def forward(self, x, dims=(), keepdim=False):
        self.save_for_backward(x)
        self.dims = dims
        self.kept_max = np.amax(x.data, axis=dims, keepdims=True)
        return self.kept_max if keepdim else self.kept_max.reshape(
            [size for i, size in enumerate(x.shape) if i not in dims]
        )

    def backward(self, grad):
        (x,) = self.saved_tensors
        at_max = x.data == self.kept_max
        share = at_max / np.sum(at_max, axis=self.dims, keepdims=True)
        return expand(grad.reshape(self.kept_max.shape), x.shape) * share.astype(grad.dtype)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Sum over `dim` (all dimensions when None)."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    return Sum.apply(x, dims=_dims(dim, x.ndim), keepdim=keepdim)


def sum_to_shape(x, shape):
    """Sum x down to `shape`, the shape it was broadcast from (itself when already that shape)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    offset = x.ndim - len(shape)
    if offset < 0 or any(size not in (1, full) for size, full in zip(shape, x.shape[offset:])):
        raise ValueError(f"sum_to_shape: shape {x.shape} was not broadcast from {shape}")
    return SumToShape.apply(x, shape=shape)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Mean over `dim`: sum / (number of elements reduced)."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    dims = _dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    return Sum.apply(x, dims=dims, keepdim=keepdim) / count


def amax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Largest value over `dim`; the gradient is shared evenly among ties."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    if x.size == 0:
        raise ValueError("amax: the tensor is empty")
    return Amax.apply(x, dims=_dims(dim, x.ndim), keepdim=keepdim)


def amin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Smallest value over `dim`: -amax(-x)."""
    return -amax(-x, dim, keepdim, axis=axis, keepdims=keepdims)


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As PyTorch: without `dim`, the largest value (a tensor); with an int `dim`, a named tuple
    (values, indices), the gradient going to the first index where the max sits."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    if dim is None:
        return amax(x)
    indices = argmax(x, dim, keepdim=True)
    return _values_at(x, dim, indices, keepdim)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As `max`, for the smallest value."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    if dim is None:
        return amin(x)
    indices = argmin(x, dim, keepdim=True)
    return _values_at(x, dim, indices, keepdim)


def _values_at(x, dim, kept_indices, keepdim):
    values = gather(x, dim, kept_indices)
    if keepdim:
        return ValuesIndices(values, kept_indices)
    return ValuesIndices(squeeze(values, dim), squeeze(kept_indices, dim))


def argmax(x, dim=None, keepdim=False):
    """Index of the largest value (flattened when `dim` is None); an int64 tensor, no gradient."""
    return _arg_reduce(np.argmax, x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    """Index of the smallest value (flattened when `dim` is None); an int64 tensor, no gradient."""
    return _arg_reduce(np.argmin, x, dim, keepdim)


def _arg_reduce(function, x, dim, keepdim):
    result = function(x.data, axis=dim, keepdims=keepdim if dim is not None else False)
    return as_tensor(np.asarray(result, dtype=np.int64))


def var(x, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
    """sum((x - mean)^2) / (N - correction); correction=1 is the unbiased estimate (PyTorch's default)."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    dims = _dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    centered = x - mean(x, dims, keepdim=True)
    # A Python float divisor keeps x's dtype (a NumPy integer would promote float32 to float64).
    return sum(centered * centered, dims, keepdim) / float(np.maximum(count - correction, 0))


def std(x, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
    """sqrt(var(x)). Where the variance is 0 (all values equal) the gradient is taken as 0, as
    PyTorch does, instead of the 0 * inf = NaN that d sqrt(v)/dv = 1 / (2 sqrt v) gives there."""
    variance = var(x, dim, keepdim, correction=correction, axis=axis, keepdims=keepdims)
    # sqrt sees 1 where the variance is 0, so its unused gradient is finite (the "where trap").
    constant = variance.data == 0
    return where(constant, 0.0, sqrt(where(constant, 1.0, variance)))


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """y = ln sum_i e^(x_i), computed as m + ln sum_i e^(x_i - m) with m = max x.

    Shifting by the max makes every exponent <= 0, so nothing overflows (finite for |x| = 1e4).
    m is a constant here: y does not depend on it, and d/dx_i y = softmax(x)_i either way.
    """
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims)
    dims = _dims(dim, x.ndim)
    shift = np.amax(x.data, axis=dims, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    total = sum(exp(x - shift), dims, keepdim=True)
    result = log(total) + shift
    return result if keepdim else squeeze(result, dims)


__all__ = [
    "sum", "sum_to_shape", "mean", "amax", "amin", "max", "min", "argmax", "argmin",
    "var", "std", "logsumexp",
]
