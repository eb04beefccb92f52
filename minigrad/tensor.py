"""Tensor: a NumPy array that remembers how it was computed.

``data`` is the array itself and ``grad`` the gradient backward() accumulated (an array of the
same shape, or None); both are plain ``np.ndarray`` that you can read and plot directly. The
operators and methods below are thin: each calls an op from ``minigrad.ops``, where the
forward and backward of every operation sit together.
"""

from __future__ import annotations

import numpy as np

from minigrad import autograd
from minigrad.dtypes import get_default_dtype
from minigrad.ops import activation, elementwise, linalg, movement, nn_ops, reduce


class VersionCounter:
    """How many in-place changes a tensor's memory has seen. Tensors that are views of one
    another share one counter, as they share memory."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """An n-dimensional array with an optional gradient.

    Tensor(data, requires_grad=False, dtype=None): Python numbers and lists become the default
    floating dtype (float32) when they hold floats, int64 when they hold integers; an ndarray
    keeps its dtype. Only floating tensors can require grad.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_version_counter", "_hooks", "_retains_grad", "__weakref__")

    # Makes NumPy hand `array + tensor` to Tensor.__radd__ instead of looping over the tensor.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype)
        self.grad = None
        self._requires_grad = False
        self._ctx = None
        self._version_counter = VersionCounter()
        self._hooks = ()  # a list once a hook is registered
        self._retains_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _from_array(cls, array: np.ndarray) -> "Tensor":
        """Wrap an array the ops just computed, skipping the checks of __init__ (hot path)."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor.grad = None
        tensor._requires_grad = False
        tensor._ctx = None
        tensor._version_counter = VersionCounter()
        tensor._hooks = ()
        tensor._retains_grad = False
        return tensor

    # ------------------------------------------------------------------------------------------
    # attributes
    # ------------------------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value and not self.is_floating_point():
            raise RuntimeError(
                f"only floating-point tensors can require gradients, this one is {self.dtype}; "
                "convert it first, e.g. x.float()"
            )
        if not value and self._ctx is not None:
            raise RuntimeError(
                "requires_grad can only be turned off on a leaf tensor; use x.detach() to get "
                "a tensor without history"
            )
        self._requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op: user-created tensors and parameters."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that produced this tensor (None for leaves)."""
        return self._ctx

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        """Number of elements (NumPy's meaning; ``numel()`` is the same)."""
        return self.data.size

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def _version(self) -> int:
        return self._version_counter.value

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, this one has shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data array itself (shared, not copied), as PyTorch's ``.numpy()``."""
        if self._requires_grad:
            raise RuntimeError("numpy(): the tensor requires grad; use x.detach().numpy() or x.data")
        return self.data

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing this one's memory and version counter, with no history."""
        out = Tensor._from_array(self.data)
        out._version_counter = self._version_counter
        return out

    def clone(self) -> "Tensor":
        """A copy with its own memory; gradients flow back to this tensor."""
        return elementwise.cast(self, self.dtype, copy=True)

    def to(self, dtype) -> "Tensor":
        """This tensor in another dtype (itself when the dtype is already right)."""
        return self if self.dtype == np.dtype(dtype) else elementwise.cast(self, dtype)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    # ------------------------------------------------------------------------------------------
    # gradients
    # ------------------------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        gradient:     d(loss)/d(self), needed when self is not a scalar.
        retain_graph: keep the graph so backward can run through it again (default: create_graph).
        create_graph: record the backward pass itself, so hooks and ``minigrad.grad`` see
                      differentiable gradients. ``.grad`` always holds plain arrays; for gradients
                      you can differentiate again, use ``minigrad.grad(..., create_graph=True)``.
        """
        root_grad = autograd._root_grads([self], None if gradient is None else [gradient], "backward")[0]
        if retain_graph is None:
            retain_graph = create_graph
        autograd.run_backward([self], [root_grad], retain_graph, create_graph)

    def _accumulate_grad(self, grad: np.ndarray, may_keep: bool = False) -> None:
        """Add `grad` into .grad. The engine says when the array is its own to keep (made for
        this tensor alone); otherwise it is copied, since .grad is changed in place by
        optimizers and clipping, and must never share memory with another gradient."""
        if self.grad is not None:
            self.grad = self.grad + grad
        else:
            self.grad = grad if may_keep else grad.copy()

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` during backward."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def register_hook(self, hook) -> "RemovableHandle":
        """Call ``hook(grad)`` with this tensor's gradient (a Tensor) during backward; a hook may
        return a replacement gradient of the same shape. Returns a handle with ``remove()``."""
        if not self._requires_grad:
            raise RuntimeError("register_hook() on a tensor that does not require grad")
        if not self._hooks:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradient (``grad = None``), or fill it with zeros."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad[...] = 0

    # ------------------------------------------------------------------------------------------
    # in-place changes (they bump the version counter, which backward checks)
    # ------------------------------------------------------------------------------------------

    def _in_place(self, name: str, change) -> "Tensor":
        """Run `change(self.data)`, which modifies the array in place, after refusing changes that
        would corrupt a gradient; count the change in the version counter once it is made (a
        change that raised made none, so saved copies of this tensor stay valid)."""
        if self._requires_grad and autograd.is_grad_enabled():
            kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor that is part of the graph"
            raise RuntimeError(
                f"{name}: in-place change of {kind}; do it under `with minigrad.no_grad():` "
                "(as optimizers do), or use the out-of-place form"
            )
        if not self.data.flags.writeable:
            raise RuntimeError(f"{name}: this tensor is a read-only view (made by expand); clone() it first")
        try:
            change(self.data)
        except ValueError as error:
            raise ValueError(f"{name} on a tensor of shape {self.shape}: {error}") from None
        self._version_counter.value += 1
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        other = _data(other) if alpha == 1 else _data(other) * alpha
        return self._in_place("add_", lambda data: np.add(data, other, out=data))

    def sub_(self, other, alpha=1) -> "Tensor":
        other = _data(other) if alpha == 1 else _data(other) * alpha
        return self._in_place("sub_", lambda data: np.subtract(data, other, out=data))

    def mul_(self, other) -> "Tensor":
        other = _data(other)
        return self._in_place("mul_", lambda data: np.multiply(data, other, out=data))

    def div_(self, other) -> "Tensor":
        other = _data(other)
        return self._in_place("div_", lambda data: np.divide(data, other, out=data))

    def zero_(self) -> "Tensor":
        return self._in_place("zero_", lambda data: data.fill(0))

    def fill_(self, value) -> "Tensor":
        value = _data(value)
        return self._in_place("fill_", lambda data: np.copyto(data, value))

    def copy_(self, source) -> "Tensor":
        source = _data(source)
        try:
            fits = np.broadcast_shapes(np.shape(source), self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"copy_: cannot copy shape {np.shape(source)} into shape {self.shape}")
        return self._in_place("copy_", lambda data: np.copyto(data, source))

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._in_place("clamp_", lambda data: np.clip(data, min, max, out=data))

    # ------------------------------------------------------------------------------------------
    # operators
    # ------------------------------------------------------------------------------------------

    def __add__(self, other): return elementwise.add(self, other)
    def __radd__(self, other): return elementwise.add(other, self)
    def __sub__(self, other): return elementwise.sub(self, other)
    def __rsub__(self, other): return elementwise.sub(other, self)
    def __mul__(self, other): return elementwise.mul(self, other)
    def __rmul__(self, other): return elementwise.mul(other, self)
    def __truediv__(self, other): return elementwise.div(self, other)
    def __rtruediv__(self, other): return elementwise.div(other, self)
    def __pow__(self, other): return elementwise.pow(self, other)
    def __rpow__(self, other): return elementwise.pow(other, self)
    def __matmul__(self, other): return linalg.matmul(self, other)
    def __rmatmul__(self, other): return linalg.matmul(other, self)
    def __neg__(self): return elementwise.neg(self)
    def __pos__(self): return self
    def __abs__(self): return elementwise.abs(self)
    def __getitem__(self, index): return movement.getitem(self, index)

    # Comparisons return boolean tensors without history, as in PyTorch.
    def __lt__(self, other): return Tensor._from_array(self.data < _data(other))
    def __le__(self, other): return Tensor._from_array(self.data <= _data(other))
    def __gt__(self, other): return Tensor._from_array(self.data > _data(other))
    def __ge__(self, other): return Tensor._from_array(self.data >= _data(other))
    def __eq__(self, other): return Tensor._from_array(self.data == _data(other))
    def __ne__(self, other): return Tensor._from_array(self.data != _data(other))
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def any(self) -> bool:
        return bool(self.data.any())

    def all(self) -> bool:
        return bool(self.data.all())

    # ------------------------------------------------------------------------------------------
    # methods: each is the op of the same name in minigrad.ops
    # ------------------------------------------------------------------------------------------

    def exp(self): return elementwise.exp(self)
    def log(self): return elementwise.log(self)
    def sqrt(self): return elementwise.sqrt(self)
    def abs(self): return elementwise.abs(self)
    def pow(self, exponent): return elementwise.pow(self, exponent)
    def clamp(self, min=None, max=None): return elementwise.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return elementwise.maximum(self, other)
    def minimum(self, other): return elementwise.minimum(self, other)
    def erf(self): return elementwise.erf(self)

    def relu(self): return activation.relu(self)
    def sigmoid(self): return activation.sigmoid(self)
    def tanh(self): return activation.tanh(self)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
        return reduce.var(self, dim, keepdim, correction=correction, axis=axis, keepdims=keepdims)

    def std(self, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
        return reduce.std(self, dim, keepdim, correction=correction, axis=axis, keepdims=keepdims)

    def logsumexp(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduce.logsumexp(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False):
        return reduce.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return reduce.argmin(self, dim, keepdim)

    def sum_to_shape(self, shape):
        return reduce.sum_to_shape(self, shape)

    def reshape(self, *shape): return movement.reshape(self, *shape)
    view = reshape
    def flatten(self, start_dim=0, end_dim=-1): return movement.flatten(self, start_dim, end_dim)
    def permute(self, *dims): return movement.permute(self, *dims)
    def transpose(self, dim0, dim1): return movement.transpose(self, dim0, dim1)
    def expand(self, *shape): return movement.expand(self, *shape)
    def broadcast_to(self, shape): return movement.expand(self, shape)
    def squeeze(self, dim=None): return movement.squeeze(self, dim)
    def unsqueeze(self, dim): return movement.unsqueeze(self, dim)
    def gather(self, dim, index): return movement.gather(self, dim, index)

    @property
    def T(self):
        """The tensor with its dimensions reversed (a transpose for 2-D)."""
        return movement.permute(self, *reversed(range(self.ndim)))

    @property
    def mT(self):
        """The last two dimensions swapped (a batch of transposed matrices)."""
        return movement.transpose(self, -2, -1)

    def matmul(self, other): return linalg.matmul(self, other)
    def softmax(self, dim=-1): return nn_ops.softmax(self, dim)
    def log_softmax(self, dim=-1): return nn_ops.log_softmax(self, dim)

    # ------------------------------------------------------------------------------------------
    # printing
    # ------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        # As PyTorch prints: whole numbers as "1.", others with 4 decimals each ("1.5000").
        finite = self.data[np.isfinite(self.data)] if self.is_floating_point() else self.data
        floatmode = "maxprec" if np.all(finite == np.round(finite)) else "fixed"
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4, floatmode=floatmode)
        extras = []
        if self.dtype not in (get_default_dtype(), np.dtype(np.int64), np.dtype(np.bool_)):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"


class RemovableHandle:
    """Returned by register_hook and the Module hook registrations; ``remove()`` unregisters."""

    def __init__(self, hooks, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
        return False


def _data(value):
    """The array behind a Tensor, or the value itself."""
    return value.data if isinstance(value, Tensor) else value


def _as_array(data, dtype=None) -> np.ndarray:
    """Convert to an ndarray: lists and Python floats to the default float dtype, integers to
    int64, ndarrays and NumPy scalars keep their dtype unless `dtype` is given."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype.kind == "f":
        return array.astype(get_default_dtype(), copy=False)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} (dtype {array.dtype})")
    return array
