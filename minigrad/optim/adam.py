"""Adam (Kingma & Ba, 2015), its AMSGrad variant (Reddi et al., 2018), and AdamW (Loshchilov &
Hutter, 2019), whose weight decay shrinks the parameter instead of adding to the gradient."""

from __future__ import annotations

import numpy as np

from minigrad.optim.optimizer import Optimizer, require_non_negative, zeros_state


class Adam(Optimizer):
    r"""Adam, exactly as PyTorch's ``torch.optim.Adam``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (lr gamma, betas (b1, b2),
    weight decay lambda), with m, v and v_max starting at 0::

        g <- -g                              if maximize
        theta <- theta * (1 - gamma*lambda)  if decoupled_weight_decay   (AdamW)
        g <- g + lambda * theta              otherwise, if lambda != 0  (L2 penalty)
        m <- b1 * m + (1 - b1) * g           first-moment estimate
        v <- b2 * v + (1 - b2) * g^2         second-moment estimate
        v_max <- max(v_max, v)               if amsgrad, and then v_max replaces v below
        theta <- theta - gamma * m_hat / (sqrt(v_hat) + eps)
                 with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    AMSGrad keeps the running maximum of v itself (not of the bias-corrected v_hat), and eps is
    added after the square root. The last line is computed as PyTorch does:
    ``(gamma / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = {
            "lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
            "amsgrad": amsgrad, "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        require_non_negative(options, "lr", "eps", "weight_decay")
        betas = options["betas"]
        if len(betas) != 2:
            raise ValueError(f"invalid betas {betas!r}: expected a pair (beta1, beta2)")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta parameter at index {index}: {beta!r}; betas must be in [0, 1)")

    def _update_parameter(self, param, group: dict) -> None:
        grad = param.grad
        lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        state = self.state.setdefault(param, {})
        state["step"] = state.get("step", 0) + 1
        step = state["step"]
        exp_avg = zeros_state(state, "exp_avg", param)
        exp_avg_sq = zeros_state(state, "exp_avg_sq", param)

        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param.data

        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = zeros_state(state, "max_exp_avg_sq", param)
            np.maximum(second_moment, exp_avg_sq, out=second_moment)

        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        denominator = np.sqrt(second_moment)
        denominator /= bias_correction2 ** 0.5
        denominator += eps
        update = exp_avg * step_size
        update /= denominator
        param.sub_(update)


class AdamW(Adam):
    r"""AdamW, exactly as PyTorch's ``torch.optim.AdamW``: Adam with decoupled weight decay.

    Before the Adam update, the parameter itself shrinks: theta <- theta * (1 - lr * weight_decay).
    The decay never enters m and v, so it is not rescaled by the adaptive step size.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
