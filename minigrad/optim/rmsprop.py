"""RMSprop (Hinton, Coursera lecture 6e, 2012), with the centered variant of Graves (2013)."""

from __future__ import annotations

import numpy as np

from minigrad.optim.optimizer import Optimizer, require_non_negative, zeros_state


class RMSprop(Optimizer):
    r"""RMSprop, exactly as PyTorch's ``torch.optim.RMSprop``.

    For each parameter theta with gradient g (lr gamma, smoothing alpha, momentum mu, weight
    decay lambda), with v, g_avg and b starting at 0::

        g <- -g                              if maximize
        g <- g + lambda * theta              if lambda != 0
        v <- alpha * v + (1 - alpha) * g^2   running mean of the squared gradient
        if centered:
            g_avg <- alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg^2            an estimate of the gradient's variance
        else:
            v_tilde = v
        if mu > 0:
            b <- mu * b + g / (sqrt(v_tilde) + eps)
            theta <- theta - gamma * b
        else:
            theta <- theta - gamma * g / (sqrt(v_tilde) + eps)

    eps is added after the square root.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = {
            "lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
            "centered": centered, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        require_non_negative(options, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _update_parameter(self, param, group: dict) -> None:
        grad = param.grad
        alpha, momentum = group["alpha"], group["momentum"]
        if group["maximize"]:
            grad = -grad
        state = self.state.setdefault(param, {})
        state["step"] = state.get("step", 0) + 1
        square_avg = zeros_state(state, "square_avg", param)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data

        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = zeros_state(state, "grad_avg", param)
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            denominator = square_avg - grad_avg * grad_avg
            np.sqrt(denominator, out=denominator)
        else:
            denominator = np.sqrt(square_avg)
        denominator += group["eps"]

        if momentum > 0:
            buffer = zeros_state(state, "momentum_buffer", param)
            buffer *= momentum
            buffer += grad / denominator
            param.sub_(buffer, alpha=group["lr"])
        else:
            update = group["lr"] * grad
            update /= denominator
            param.sub_(update)
