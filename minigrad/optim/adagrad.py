"""Adagrad (Duchi, Hazan & Singer, 2011): per-coordinate steps shrink with the accumulated
squared gradient."""

from __future__ import annotations

import numpy as np

from minigrad.optim.optimizer import Optimizer, require_non_negative


class Adagrad(Optimizer):
    r"""Adagrad, exactly as PyTorch's ``torch.optim.Adagrad``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (lr gamma, lr decay eta,
    weight decay lambda), with the sum starting at initial_accumulator_value::

        g <- -g                            if maximize
        g <- g + lambda * theta            if lambda != 0
        gamma_t = gamma / (1 + (t - 1) * eta)
        sum <- sum + g^2
        theta <- theta - gamma_t * g / (sqrt(sum) + eps)

    The state is created at a parameter's first update (PyTorch creates it in the constructor;
    the values are the same).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = {
            "lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value, "eps": eps, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        require_non_negative(options, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _update_parameter(self, param, group: dict) -> None:
        grad = param.grad
        if group["maximize"]:
            grad = -grad
        state = self.state.get(param)
        if state is None:
            state = self.state[param] = {
                "step": 0, "sum": np.full_like(param.data, group["initial_accumulator_value"]),
            }
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data

        step_lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        denominator = np.sqrt(state["sum"])
        denominator += group["eps"]
        update = step_lr * grad
        update /= denominator
        param.sub_(update)
