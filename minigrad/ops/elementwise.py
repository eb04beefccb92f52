"""Elementwise ops: arithmetic, exp/log/sqrt/abs/erf, clamp, maximum/minimum, where, cast.

Binary ops broadcast as NumPy does; each backward returns gradients of the broadcast shape and
the engine sums them back to each input's shape. Backward rules are written with Tensor ops so
that they can be differentiated again.
"""

import math

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.special import erf as _erf_array


class Add(Function):
    """z = a + b;  dz/da = 1,  dz/db = 1."""

    def forward(self, a, b):
        return a.data + b.data

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """z = a - b;  dz/da = 1,  dz/db = -1."""

    def forward(self, a, b):
        return a.data - b.data

    def backward(self, grad):
        return grad, (-grad if self.needs_input_grad[1] else None)


class Mul(Function):
    """z = a * b;  dz/da = b,  dz/db = a."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a.data * b.data

    def backward(self, grad):
        a, b = self.saved_tensors
        return (
            grad * b if self.needs_input_grad[0] else None,
            grad * a if self.needs_input_grad[1] else None,
        )


class Div(Function):
    """z = a / b;  dz/da = 1 / b,  dz/db = -a / b^2."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a.data / b.data

    def backward(self, grad):
        a, b = self.saved_tensors
        return (
            grad / b if self.needs_input_grad[0] else None,
            -grad * a / (b * b) if self.needs_input_grad[1] else None,
        )


class Neg(Function):
    """z = -a;  dz/da = -1."""

    def forward(self, a):
        return -a.data

    def backward(self, grad):
        return -grad


class Pow(Function):
    """z = a ** b;  dz/da = b * a^(b-1),  dz/db = a^b * ln(a).

    dz/db is taken as 0 where a = 0 and b >= 0 (the limit of a^b ln a), as PyTorch does, instead
    of the 0 * (-inf) = NaN the formula gives there. Likewise dz/da is 0 where b = 0 (a^0 = 1 is
    constant), also at a = 0, where the formula gives 0 * 0^-1 = NaN: a is replaced by 1 there.
    """

    uses_output = True

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a.data ** b.data

    def backward(self, grad):
        a, b = self.saved_tensors
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = grad * b * where(b.data == 0, 1.0, a) ** (b - 1)
        if self.needs_input_grad[1]:
            at_zero = (a.data == 0) & (b.data >= 0)
            safe_a = where(at_zero, 1.0, a)
            grad_b = grad * where(at_zero, 0.0, self.output * log(safe_a))
        return grad_a, grad_b


class Exp(Function):
    """y = e^x;  dy/dx = e^x = y."""

    uses_output = True

    def forward(self, x):
        return np.exp(x.data)

    def backward(self, grad):
        return grad * self.output


class Log(Function):
    """y = ln x;  dy/dx = 1 / x."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.log(x.data)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad / x


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)."""

    uses_output = True

    def forward(self, x):
        return np.sqrt(x.data)

    def backward(self, grad):
        return grad / (2 * self.output)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x), taken as 0 at x = 0 (PyTorch's subgradient)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.abs(x.data)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * np.sign(x.data)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt;  dy/dx = 2/sqrt(pi) * e^(-x^2)."""

    def forward(self, x):
        self.save_for_backward(x)
        return _erf_array(x.data)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * exp(-(x * x))


class Clamp(Function):
    """y = min(max(x, low), high);  dy/dx = 1 where low <= x <= high, else 0.

    The boundary counts as inside, as in PyTorch, so a value sitting exactly on a bound still
    gets a gradient.
    """

    def forward(self, x, low=None, high=None):
        self.save_for_backward(x)
        self.low, self.high = low, high
        return np.clip(x.data, low, high)

    def backward(self, grad):
        (x,) = self.saved_tensors
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x.data >= self.low
        if self.high is not None:
            inside &= x.data <= self.high
        return grad * inside


class Maximum(Function):
    """z = max(a, b);  dz/da = 1 where a > b, 0 where a < b, 1/2 where they tie (so do b's)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return np.maximum(a.data, b.data)

    def backward(self, grad):
        a, b = self.saved_tensors
        share_a = (a.data > b.data) + 0.5 * (a.data == b.data)
        return grad * share_a.astype(grad.dtype), grad * (1 - share_a).astype(grad.dtype)


class Minimum(Function):
    """z = min(a, b);  dz/da = 1 where a < b, 0 where a > b, 1/2 where they tie (so do b's)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return np.minimum(a.data, b.data)

    def backward(self, grad):
        a, b = self.saved_tensors
        share_a = (a.data < b.data) + 0.5 * (a.data == b.data)
        return grad * share_a.astype(grad.dtype), grad * (1 - share_a).astype(grad.dtype)


class Where(Function):
    """z = a where cond else b;  dz/da = cond,  dz/db = not cond.  (cond has no gradient.)

    The trap: the gradient of the branch that was not taken is multiplied by 0, and
    0 * inf = NaN. where(x > 0, sqrt(x), 0) has a NaN gradient at x < 0 because sqrt's
    derivative there is NaN. The fix is a second where inside: sqrt(where(x > 0, x, 1)).
    """

    def forward(self, condition, a, b):
        self.condition = condition.data.astype(bool, copy=False)
        return np.where(self.condition, a.data, b.data)

    def backward(self, grad):
        return (
            None,
            grad * self.condition if self.needs_input_grad[1] else None,
            grad * ~self.condition if self.needs_input_grad[2] else None,
        )


class Cast(Function):
    """y = x converted to another dtype;  dy/dx = 1, converted back to x's dtype."""

    def forward(self, x, dtype=None, copy=False):
        return x.data.astype(dtype, copy=copy)

    def backward(self, grad):
        return grad.to(self.inputs[0].dtype)


def add(a, b): return Add.apply(a, b)
def sub(a, b): return Sub.apply(a, b)
def mul(a, b): return Mul.apply(a, b)
def div(a, b): return Div.apply(a, b)
def neg(x): return Neg.apply(x)
def pow(a, b): return Pow.apply(a, b)
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def abs(x): return Abs.apply(x)
def erf(x): return Erf.apply(x)
def maximum(a, b): return Maximum.apply(a, b)
def minimum(a, b): return Minimum.apply(a, b)
def where(condition, a, b): return Where.apply(condition, a, b)


def clamp(x, min=None, max=None):
    """Limit x to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(x, low=_bound(min), high=_bound(max))


clip = clamp


def cast(x, dtype, copy=False):
    """x converted to `dtype` (a copy when `copy` is set, even if the dtype is the same)."""
    return Cast.apply(x, dtype=np.dtype(dtype), copy=copy)


def _bound(value):
    return value.item() if hasattr(value, "item") and getattr(value, "size", 1) == 1 else value
