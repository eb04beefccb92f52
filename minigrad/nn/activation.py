"""Activation functions as modules, each a thin wrapper over ``minigrad.functional``.

ReLU, LeakyReLU and ELU accept PyTorch's ``inplace`` flag so that ported code runs unchanged;
minigrad always computes out of place, which gives the same values and gradients.
"""

from minigrad import functional as F
from minigrad.autograd import no_grad
from minigrad.nn.module import Module, check_size, new_parameter


def _inplace_repr(inplace: bool) -> str:
    return ", inplace=True" if inplace else ""


class ReLU(Module):
    """y = max(x, 0)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_repr(self.inplace)}"


class PReLU(Module):
    """y = x where x > 0, else a * x, with a learned slope a (He et al. 2015), initialized to
    `init`. With num_parameters = C > 1 each channel (dimension 1 of the input) has its own.

    dy/dx = 1 where x > 0, else a;  dy/da = 0 where x > 0, else x  (a at x = 0, as PyTorch).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, dtype=None):
        super().__init__()
        check_size("num_parameters", num_parameters, "PReLU")
        self.num_parameters = num_parameters
        self.init = init
        self.weight = new_parameter((num_parameters,), dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with no_grad():
            self.weight.fill_(self.init)

    def forward(self, x):
        if self.num_parameters == 1:
            slope = self.weight.reshape(())
        else:
            if x.ndim < 2 or x.shape[1] != self.num_parameters:
                raise ValueError(
                    f"PReLU: {self.num_parameters} slopes need an input with {self.num_parameters} "
                    f"channels in dimension 1, got shape {x.shape}"
                )
            slope = self.weight.reshape((self.num_parameters,) + (1,) * (x.ndim - 2))
        return F.where(x.data > 0, x, slope * x)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """y = x where x > 0, else alpha * (e^x - 1) (Clevert et al. 2016)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class GELU(Module):
    """y = x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses the tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """y = 1 / (1 + e^-x)."""

    def forward(self, x):
        return F.sigmoid(x)


class Softplus(Module):
    """y = ln(1 + e^(beta x)) / beta, and y = x where beta * x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """Probabilities along `dim`. `dim` is required (PyTorch's implicit choice is deprecated)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """ln softmax(x) along `dim`, computed stably (pair it with NLLLoss)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
