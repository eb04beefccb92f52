"""Neural-network ops: softmax, log_softmax, linear, dropout, one_hot.

softmax, log_softmax and linear are primitives with fused backward rules: built from exp, sum,
division, transpose and matmul they would be correct but slower, and log(softmax(x)) underflows
to -inf where log_softmax stays finite.
"""

import numpy as np

from minigrad.autograd import Function, as_tensor
from minigrad.ops.elementwise import exp
from minigrad.ops.reduce import sum as sum_
from minigrad.random import default_generator


class Softmax(Function):
    """y_i = e^(x_i - m) / sum_j e^(x_j - m), m = max x (the shift cancels; nothing overflows);
    dL/dx = y * (g - sum(g * y)) along `dim`."""

    uses_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        shifted = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
        return shifted / shifted.sum(axis=dim, keepdims=True)

    def backward(self, grad):
        y = self.output
        return y * (grad - sum_(grad * y, self.dim, keepdim=True))


class LogSoftmax(Function):
    """y_i = x_i - m - ln sum_j e^(x_j - m), m = max x;  dL/dx = g - softmax(x) * sum(g), where
    softmax(x) = e^y. Finite for any finite x (|x| = 1e4 included)."""

    uses_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        shifted = x.data - x.data.max(axis=dim, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(self, grad):
        return grad - exp(self.output) * sum_(grad, self.dim, keepdim=True)


def softmax(x, dim=-1):
    """Probabilities along `dim`: non-negative, summing to 1."""
    return Softmax.apply(x, dim=_check_dim(x, dim, "softmax"))


def log_softmax(x, dim=-1):
    """ln softmax(x), computed without taking the log of a possibly underflowed probability."""
    return LogSoftmax.apply(x, dim=_check_dim(x, dim, "log_softmax"))


def _check_dim(x, dim, name):
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise IndexError(f"{name}: dimension {dim} is out of range for shape {x.shape}")
    return dim


class Linear(Function):
    """y = x W^T + b, W of shape (out, in), x of shape (..., in).

    dL/dx = g W,  dL/dW = g^T x,  dL/db = sum of g over all but the last dimension
    (leading dimensions of x are flattened into one batch dimension for the two sums).

    Fused for speed: built from transpose, matmul and add it gives the same numbers, but
    dL/dW would come out as the transpose of a (in, out) product and need a copy into W's
    layout on every step.
    """

    def forward(self, x, weight, bias=None):
        self.save_for_backward(x, weight)
        self.has_bias = bias is not None
        out = x.data @ weight.data.T
        return out + bias.data if bias is not None else out

    def backward(self, grad):
        x, weight = self.saved_tensors
        grad_x = grad @ weight if self.needs_input_grad[0] else None
        if x.ndim != 2:  # one batch dimension: leading ones folded into it, or added for a 1-D x
            grad, x = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_weight = grad.T @ x if self.needs_input_grad[1] else None
        if not self.has_bias:
            return grad_x, grad_weight
        grad_bias = grad.sum(0) if self.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""
    x = as_tensor(x, weight)
    if x.ndim == 0 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features, but the "
            f"weight of shape {weight.shape} expects {weight.shape[1]}"
        )
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p), so the expected
    value is unchanged ("inverted dropout"); the identity when not training or p = 0.
    The mask is drawn from minigrad's seeded generator (or `generator`)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    generator = generator or default_generator()
    keep = generator.random(x.shape) >= p
    return x * (keep / (1 - p)).astype(x.dtype)


def one_hot(indices, num_classes=-1):
    """int64 tensor with a trailing dimension of size num_classes, 1 at each index
    (num_classes=-1: one more than the largest index)."""
    indices = as_tensor(indices)
    values = indices.data
    if values.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {values.dtype}")
    if num_classes == -1:
        num_classes = int(values.max()) + 1 if values.size else 0
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes}), got [{values.min()}, {values.max()}]")
    return as_tensor((values[..., None] == np.arange(num_classes)).astype(np.int64))
