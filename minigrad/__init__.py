"""minigrad: a from-scratch NumPy autograd engine whose gradients and activations are plain arrays."""

from minigrad.tensor import Tensor  # noqa: I001  (first: it loads the autograd engine and the ops)
from minigrad.autograd import (
    AnomalyError, Function, detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
    set_grad_enabled,
)
from minigrad.dtypes import get_default_dtype, set_default_dtype
from minigrad.factories import (
    arange, eye, full, full_like, linspace, ones, ones_like, rand, randint, randn, tensor, zeros,
    zeros_like,
)
from minigrad.functional import (
    abs, amax, amin, argmax, argmin, cat, clamp, clip, concatenate, erf, exp, expand, flatten,
    gather, log, logsumexp, matmul, max, maximum, mean, min, minimum, permute, reshape, sigmoid,
    softmax, log_softmax, sqrt, squeeze, stack, std, sum, tanh, transpose, unsqueeze, var, where,
    relu, pad,
)
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigrad.random import manual_seed
from minigrad.serialization import CheckpointError, load, save
from minigrad import data, nn, optim  # noqa: E402  (subpackages, after the names they use)

from numpy import bool_, float16, float32, float64, int32, int64  # dtype names, as torch.float32

__version__ = "0.1.0"
