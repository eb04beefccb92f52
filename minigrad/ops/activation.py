"""Activation functions.

ReLU, LeakyReLU, sigmoid, tanh and softplus are primitives with their own backward: they are on
every training step's hot path, and sigmoid and softplus need care to stay finite for large
|x|. The backward rules of sigmoid and tanh are primitives too (SigmoidBackward, TanhBackward:
one NumPy expression instead of three ops), with their own derivatives for second-order
gradients. ELU and GELU are built from primitives and get their gradients for free.
"""

import math

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.elementwise import clamp, erf, exp, where


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.maximum(x.data, 0)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * (x.data > 0)


class LeakyReLU(Function):
    """y = x where x > 0, else slope * x;  dy/dx = 1 where x > 0, else slope."""

    def forward(self, x, negative_slope=0.01):
        self.save_for_backward(x)
        self.negative_slope = negative_slope
        return np.where(x.data > 0, x.data, x.data * negative_slope)

    def backward(self, grad):
        (x,) = self.saved_tensors
        slope = np.where(x.data > 0, 1, self.negative_slope).astype(grad.dtype)
        return grad * slope


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  dy/dx = y (1 - y).

    Computed from e^-|x|, which never overflows: 1 / (1 + e^-|x|) for x >= 0 and
    e^-|x| / (1 + e^-|x|) for x < 0, so the output is finite for any finite x.
    """

    uses_output = True

    def forward(self, x):
        decay = np.exp(-np.abs(x.data))
        return np.where(x.data >= 0, 1 / (1 + decay), decay / (1 + decay))

    def backward(self, grad):
        return SigmoidBackward.apply(grad, self.output)


class SigmoidBackward(Function):
    """The gradient sigmoid passes back, z = g y (1 - y), from its output y.

    One op instead of three (multiply, subtract, multiply): sigmoid runs on every step of a
    training loop that uses it. Its own derivatives, for second-order gradients:
    dz/dg = y (1 - y),  dz/dy = g (1 - 2y).
    """

    def forward(self, grad, y):
        self.save_for_backward(grad, y)
        return grad.data * y.data * (1 - y.data)

    def backward(self, upstream):
        grad, y = self.saved_tensors
        return (
            upstream * y * (1 - y) if self.needs_input_grad[0] else None,
            upstream * grad * (1 - 2 * y) if self.needs_input_grad[1] else None,
        )


class Tanh(Function):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    uses_output = True

    def forward(self, x):
        return np.tanh(x.data)

    def backward(self, grad):
        return TanhBackward.apply(grad, self.output)


class TanhBackward(Function):
    """The gradient tanh passes back, z = g (1 - y^2), from its output y.

    One op instead of three (multiply, subtract, multiply), for speed. Its own derivatives,
    for second-order gradients: dz/dg = 1 - y^2,  dz/dy = -2 g y.
    """

    def forward(self, grad, y):
        self.save_for_backward(grad, y)
        return grad.data * (1 - y.data * y.data)

    def backward(self, upstream):
        grad, y = self.saved_tensors
        return (
            upstream * (1 - y * y) if self.needs_input_grad[0] else None,
            upstream * grad * y * -2 if self.needs_input_grad[1] else None,
        )


class Softplus(Function):
    """y = ln(1 + e^(beta x)) / beta;  dy/dx = sigmoid(beta x).

    Computed as max(x, 0) + ln(1 + e^-|beta x|) / beta, which never overflows. Where
    beta * x > threshold the result is x itself (PyTorch's linear regime).
    """

    def forward(self, x, beta=1.0, threshold=20.0):
        self.save_for_backward(x)
        self.beta, self.threshold = beta, threshold
        scaled = beta * x.data
        smooth = np.maximum(x.data, 0) + np.log1p(np.exp(-np.abs(scaled))) / beta
        return np.where(scaled > threshold, x.data, smooth).astype(x.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        linear = x.data * self.beta > self.threshold
        return grad * where(linear, 1.0, sigmoid(x * self.beta))


def relu(x): return ReLU.apply(x)
def leaky_relu(x, negative_slope=0.01): return LeakyReLU.apply(x, negative_slope=negative_slope)
def sigmoid(x): return Sigmoid.apply(x)
def tanh(x): return Tanh.apply(x)
def softplus(x, beta=1.0, threshold=20.0): return Softplus.apply(x, beta=beta, threshold=threshold)


def elu(x, alpha=1.0):
    """y = x where x > 0, else alpha (e^x - 1);  dy/dx = 1 where x > 0, else alpha e^x.

    The exponential sees min(x, 0), not x: where() differentiates both branches, and e^x of a
    large positive x would overflow to inf in the branch that is not used, turning its zero
    gradient into 0 * inf = NaN (the "where trap").
    """
    return where(x.data > 0, x, alpha * (exp(clamp(x, max=0.0)) - 1))


def gelu(x, approximate="none"):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016).

    exact ("none"): y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, the normal CDF;
    "tanh":         y = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    dy/dx follows from the primitives: Phi(x) + x * phi(x) for the exact form.
    """
    if approximate == "none":
        return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
