"""Movement ops: they rearrange, select or combine elements without arithmetic.

reshape/view, flatten, squeeze/unsqueeze, permute/transpose, expand/broadcast_to, getitem (with
ints, slices, integer arrays and boolean masks), gather, concatenate/stack and pad. Each
backward puts the gradient back where the element came from. Where one element was used several
times (repeated indices in getitem, or expand), the gradients add up.
"""

import math

import numpy as np

from minigrad.autograd import Function


class Reshape(Function):
    """y = x with a new shape;  the gradient is grad reshaped back to x's shape."""

    output_may_be_view = True

    def forward(self, x, shape=()):
        self.input_shape = x.shape
        return x.data.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.input_shape)


class Permute(Function):
    """y = x with its dimensions reordered;  the gradient is grad with the inverse order."""

    output_may_be_view = True

    def forward(self, x, dims=()):
        self.dims = dims
        return x.data.transpose(dims)

    def backward(self, grad):
        inverse = [0] * len(self.dims)
        for position, dim in enumerate(self.dims):
            inverse[dim] = position
        return permute(grad, *inverse)


class Expand(Function):
    """y = x broadcast to a larger shape (a read-only view, no copy);  the gradient is grad summed
    over the broadcast dimensions, since each element of x was used that many times."""

    output_may_be_view = True

    def forward(self, x, shape=()):
        self.input_shape = x.shape
        return np.broadcast_to(x.data, shape)

    def backward(self, grad):
        return grad.sum_to_shape(self.input_shape)


class GetItem(Function):
    """y = x[index];  the gradient is grad added into a zero tensor of x's shape at `index`
    (added, not written: an integer index may pick one element several times)."""

    output_may_be_view = True

    def forward(self, x, index=()):
        self.input_shape, self.index = x.shape, index
        return x.data[index]

    def backward(self, grad):
        return ScatterAdd.apply(grad, index=self.index, shape=self.input_shape)


class ScatterAdd(Function):
    """y = zeros(shape) with y[index] += x (np.add.at, so repeated indices accumulate);
    the gradient is grad[index]. The pair of GetItem, so second derivatives work."""

    def forward(self, x, index=(), shape=()):
        self.index = index
        out = np.zeros(shape, dtype=x.dtype)
        np.add.at(out, index, x.data)
        return out

    def backward(self, grad):
        return getitem(grad, self.index)


class Concatenate(Function):
    """y = the inputs joined along `dim`;  each input's gradient is its slice of grad."""

    def forward(self, *tensors, dim=0):
        self.dim = dim
        self.bounds = np.cumsum([0] + [t.shape[dim] for t in tensors])
        return np.concatenate([t.data for t in tensors], axis=dim)

    def backward(self, grad):
        gradients = []
        for start, stop in zip(self.bounds[:-1], self.bounds[1:]):
            index = (slice(None),) * self.dim + (slice(int(start), int(stop)),)
            gradients.append(getitem(grad, index))
        return tuple(gradients)


class Pad(Function):
    """y = x surrounded by a constant;  the gradient is the middle of grad (the part that was x)."""

    def forward(self, x, widths=(), value=0.0):
        self.inner = tuple(slice(before, before + size) for (before, _), size in zip(widths, x.shape))
        return np.pad(x.data, widths, mode="constant", constant_values=value)

    def backward(self, grad):
        return getitem(grad, self.inner)


def _shape_arguments(shape) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    """x with a new shape holding the same number of elements; one dimension may be -1."""
    shape = _shape_arguments(shape)
    if shape == x.shape:
        return x
    target = _infer_shape(shape, x)
    if target == x.shape:
        return x
    return Reshape.apply(x, shape=target)


def _infer_shape(shape: tuple, x) -> tuple:
    """`shape` with its -1 (if any) replaced by the size that keeps x's number of elements."""
    known = math.prod(size for size in shape if size != -1)
    if shape.count(-1) == 1 and known > 0 and x.size % known == 0:
        shape = tuple(x.size // known if size == -1 else size for size in shape)
    if -1 in shape or math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) to {shape}")
    return tuple(int(size) for size in shape)


view = reshape


def _normalize_dim(dim, ndim: int, name: str) -> int:
    """`dim` counted from the front (a negative dim counts from the end), or an IndexError naming
    the op. A 0-d tensor accepts dim 0 and -1, as in PyTorch."""
    limit = max(ndim, 1)
    if not -limit <= dim < limit:
        raise IndexError(f"{name}: dimension {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % limit


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = _normalize_dim(start_dim, x.ndim, "flatten"), _normalize_dim(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} in a tensor of shape {x.shape}")
    merged = math.prod(x.shape[start:end + 1])
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    """Remove dimensions of size 1 (all of them, or those in `dim`; others in `dim` are kept)."""
    if dim is None:
        dims = {i for i, size in enumerate(x.shape) if size == 1}
    else:
        dims = {_normalize_dim(d, x.ndim, "squeeze") for d in ((dim,) if isinstance(dim, (int, np.integer)) else dim)}
    return reshape(x, tuple(size for i, size in enumerate(x.shape) if not (i in dims and size == 1)))


def unsqueeze(x, dim):
    """Insert a dimension of size 1 at position `dim` (negative counts from the end of the result)."""
    position = dim if dim >= 0 else x.ndim + 1 + dim
    if not 0 <= position <= x.ndim:
        raise IndexError(f"unsqueeze: dimension {dim} is out of range for a tensor with {x.ndim} dimensions")
    return reshape(x, x.shape[:position] + (1,) + x.shape[position:])


def permute(x, *dims):
    """Reorder the dimensions: y.shape[i] = x.shape[dims[i]]."""
    dims = tuple(_normalize_dim(d, x.ndim, "permute") for d in _shape_arguments(dims)) if x.ndim else ()
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions of shape {x.shape}")
    return Permute.apply(x, dims=dims)


def transpose(x, dim0, dim1):
    """Swap two dimensions."""
    dim0, dim1 = _normalize_dim(dim0, x.ndim, "transpose"), _normalize_dim(dim1, x.ndim, "transpose")
    dims = list(range(x.ndim))
    if x.ndim:  # a 0-d tensor has nothing to swap
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, *dims)


def expand(x, *shape):
    """Broadcast x to `shape` without copying; -1 keeps a dimension's size, and new dimensions
    may be added in front, as in PyTorch."""
    shape = _shape_arguments(shape)
    offset = len(shape) - x.ndim
    if offset < 0:
        raise ValueError(f"expand: the target shape {shape} has fewer dimensions than {x.shape}")
    target = tuple(x.shape[i - offset] if size == -1 and i >= offset else size for i, size in enumerate(shape))
    if target == x.shape:
        return x
    for size, wanted in zip(x.shape, target[offset:]):
        if size != wanted and size != 1:
            raise ValueError(f"expand: cannot broadcast shape {x.shape} to {target}")
    return Expand.apply(x, shape=target)


broadcast_to = expand


def getitem(x, index):
    """x[index], as NumPy indexes: ints, slices, None, Ellipsis, integer arrays, boolean masks."""
    return GetItem.apply(x, index=_as_index(index))


def _as_index(index):
    """Tensors and lists inside an index become arrays, as NumPy wants them."""
    if isinstance(index, tuple):
        return tuple(_as_index(part) for part in index)
    if hasattr(index, "data") and isinstance(getattr(index, "data"), np.ndarray):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def gather(x, dim, index):
    """y[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (PyTorch's gather, NumPy's
    take_along_axis): picks one element along `dim` for every position of `index`."""
    index = np.asarray(_as_index(index))
    dim = _normalize_dim(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index has {index.ndim} dimensions, the tensor has {x.ndim}")
    for d, (wanted, size) in enumerate(zip(index.shape, x.shape)):
        if d != dim and wanted > size:
            raise ValueError(
                f"gather: index of shape {index.shape} is larger than the tensor's shape {x.shape} in "
                f"dimension {d}; only dimension {dim}, the one gathered along, may be larger"
            )
    positions = []
    for d in range(x.ndim):
        if d == dim:
            positions.append(index)
        else:
            shape = [1] * x.ndim
            shape[d] = index.shape[d]
            positions.append(np.arange(index.shape[d]).reshape(shape))
    return getitem(x, tuple(positions))


def concatenate(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dimension (PyTorch's cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: expected at least one tensor")
    dim = (dim if axis is None else axis) % tensors[0].ndim
    for position, t in enumerate(tensors):
        if t.ndim != tensors[0].ndim or t.shape[:dim] + t.shape[dim + 1:] != tensors[0].shape[:dim] + tensors[0].shape[dim + 1:]:
            raise ValueError(
                f"concatenate: tensor {position} has shape {t.shape}, which does not match "
                f"{tensors[0].shape} outside dimension {dim}"
            )
    return Concatenate.apply(*tensors, dim=dim)


cat = concatenate


def stack(tensors, dim=0, *, axis=None):
    """Join tensors of one shape along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor")
    for position, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {position} has shape {t.shape}, tensor 0 has {tensors[0].shape}")
    dim = dim if axis is None else axis
    return concatenate([unsqueeze(t, dim) for t in tensors], dim=dim if dim >= 0 else dim + tensors[0].ndim + 1)


def pad(x, pad, value=0.0):
    """Constant padding, PyTorch's order: `pad` = (last dim before, last dim after,
    second-to-last before, after, ...)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of widths, at most {2 * x.ndim}, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: widths must be non-negative, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, widths=tuple(widths), value=value)
