"""Weight initialization, as torch.nn.init: each function fills a tensor in place (under
no_grad, so it works on parameters) and returns it.

Random draws come from minigrad's seeded generator (``minigrad.manual_seed``), or from the
`generator` argument (a ``numpy.random.Generator``). Values are drawn in float64 and stored in
the tensor's own dtype.

Why the scale matters: for y = W x with n inputs of unit variance, Var(y) = n Var(W). Keeping
activations (forward) or gradients (backward) at constant variance through many layers needs
Var(W) = gain^2 / fan, where fan counts the inputs (fan_in) or outputs (fan_out) of a unit and
the gain compensates for what the nonlinearity does to the variance.

Sources:
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
        networks" (xavier_*): Var(W) = 2 / (fan_in + fan_out), a compromise between both passes.
    He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers" (kaiming_*): Var(W) = 2 / fan for
        ReLU, which zeroes half of its inputs and so halves the variance.
    Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in
        deep linear neural networks" (orthogonal_): orthogonal matrices preserve norms exactly.
"""

import math

import numpy as np

from minigrad.autograd import no_grad
from minigrad.random import default_generator
from minigrad.tensor import Tensor

_LINEAR_NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The gain to multiply an initialization's standard deviation by, PyTorch's table:

        linear, conv*, sigmoid   1
        tanh                     5/3
        relu                     sqrt(2)                       (He et al. 2015)
        leaky_relu               sqrt(2 / (1 + slope^2)), slope = param (default 0.01)
        selu                     3/4

    The ReLU gain undoes the halving of the variance; leaky_relu keeps slope^2 of the negative
    half. 5/3 for tanh and 3/4 for SELU are PyTorch's empirical choices.
    """
    if nonlinearity in _LINEAR_NONLINEARITIES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{', '.join(_LINEAR_NONLINEARITIES)}, sigmoid, tanh, relu, leaky_relu, selu"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), as PyTorch:
    fan_in = in * prod(kernel), fan_out = out * prod(kernel) (a Linear weight has no kernel;
    a convolution's output unit sees `in` channels times the kernel's receptive field)."""
    _check_tensor(tensor, "_calculate_fan_in_and_fan_out")
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(shape {tensor.shape})"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check_tensor(tensor, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor (or Parameter), got {type(tensor).__name__}")


def _fill(tensor: Tensor, values) -> Tensor:
    """Write `values` into `tensor` in place, without recording a graph."""
    with no_grad():
        tensor.copy_(values)
    return tensor


def _generator(generator) -> np.random.Generator:
    return generator if generator is not None else default_generator()


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of U(a, b)."""
    _check_tensor(tensor, "uniform_")
    return _fill(tensor, _generator(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    _check_tensor(tensor, "normal_")
    return _fill(tensor, _generator(generator).normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2) conditioned on [a, b] (absolute bounds, as PyTorch).

    Drawn by rejection: samples outside [a, b] are drawn again until none is left. Each round
    keeps a fraction P(a <= X <= b) of them, so this refuses intervals holding less than 0.1 %
    of the probability (a PyTorch user would get a warning there).
    """
    _check_tensor(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: the lower bound a={a} must be smaller than b={b}")

    def normal_cdf(x):
        return 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))

    mass = normal_cdf(b) - normal_cdf(a)
    if mass < 1e-3:
        raise ValueError(
            f"trunc_normal_: [{a}, {b}] holds only {mass:.2g} of the probability of N({mean}, {std}^2); "
            "choose bounds closer to the mean"
        )
    generator = _generator(generator)
    values = generator.normal(mean, std, size=tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = generator.normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    _check_tensor(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    _check_tensor(tensor, "zeros_")
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    _check_tensor(tensor, "ones_")
    return _fill(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot & Bengio 2010: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)),
    whose variance is gain^2 * 2 / (fan_in + fan_out) (a uniform on [-c, c] has variance c^2/3)."""
    _check_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot & Bengio 2010: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _check_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """He et al. 2015: U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan), so that
    Var = gain^2 / fan; gain = calculate_gain(nonlinearity, a), `a` being the negative slope
    of a leaky ReLU. mode='fan_in' keeps the forward activations' variance, 'fan_out' the
    backward gradients'. nn.Linear uses a = sqrt(5), which gives bound = 1 / sqrt(fan_in)."""
    _check_tensor(tensor, "kaiming_uniform_")
    if tensor.size == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """He et al. 2015: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    _check_tensor(tensor, "kaiming_normal_")
    if tensor.size == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Saxe et al. 2014: a (semi-)orthogonal matrix times `gain`.

    The tensor is viewed as a matrix of shape (rows, cols) = (shape[0], size / shape[0]). A
    Gaussian matrix of the taller orientation is factored as Q R; multiplying Q's columns by the
    signs of R's diagonal makes the result uniformly distributed over orthogonal matrices
    (Mezzadri 2007). Afterwards W W^T = gain^2 I when rows <= cols, else W^T W = gain^2 I.
    """
    _check_tensor(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape {tensor.shape}")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    gaussian = _generator(generator).standard_normal((rows, cols))
    if rows < cols:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
