"""The stateless API: every op as a function (also importable as ``minigrad.nn.functional``)."""

from minigrad.ops.activation import elu, gelu, leaky_relu, relu, sigmoid, softplus, tanh
from minigrad.ops.elementwise import (
    abs, add, clamp, clip, div, erf, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where,
)
from minigrad.ops.linalg import matmul
from minigrad.ops.loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from minigrad.ops.movement import (
    broadcast_to, cat, concatenate, expand, flatten, gather, pad, permute, reshape, squeeze, stack,
    transpose, unsqueeze, view,
)
from minigrad.ops.nn_ops import dropout, linear, log_softmax, one_hot, softmax
from minigrad.ops.reduce import (
    amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, sum_to_shape, var,
)

__all__ = [
    "elu", "gelu", "leaky_relu", "relu", "sigmoid", "softplus", "tanh",
    "abs", "add", "clamp", "clip", "div", "erf", "exp", "log", "maximum", "minimum", "mul", "neg",
    "pow", "sqrt", "sub", "where",
    "matmul",
    "binary_cross_entropy_with_logits", "cross_entropy", "mse_loss", "nll_loss",
    "broadcast_to", "cat", "concatenate", "expand", "flatten", "gather", "pad", "permute",
    "reshape", "squeeze", "stack", "transpose", "unsqueeze", "view",
    "dropout", "linear", "log_softmax", "one_hot", "softmax",
    "amax", "amin", "argmax", "argmin", "logsumexp", "max", "mean", "min", "std", "sum",
    "sum_to_shape", "var",
]
