"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from minigrad.optim.optimizer import Optimizer, require_non_negative


class SGD(Optimizer):
    r"""SGD, exactly as PyTorch's ``torch.optim.SGD``.

    For each parameter theta with gradient g, at step t (lr gamma, momentum mu, dampening tau,
    weight decay lambda)::

        g <- -g                          if maximize
        g <- g + lambda * theta          if lambda != 0   (L2 penalty folded into the gradient)
        if mu != 0:
            b <- g                       at the first step (a copy of g: no dampening)
            b <- mu * b + (1 - tau) * g  afterwards
            g <- g + mu * b              if nesterov
            g <- b                       otherwise
        theta <- theta - gamma * g

    Nesterov momentum (Sutskever et al., 2013) needs momentum > 0 and dampening = 0.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = {
            "lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
            "nesterov": nesterov, "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        require_non_negative(options, "lr", "momentum", "weight_decay")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening, got "
                f"momentum={options['momentum']!r}, dampening={options['dampening']!r}"
            )

    def _update_parameter(self, param, group: dict) -> None:
        grad = param.grad
        momentum = group["momentum"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        if momentum != 0:
            state = self.state.setdefault(param, {})
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= momentum
                # (1 - 0) * grad would be an exact but needless copy on the common path
                buffer += grad if group["dampening"] == 0 else (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param.sub_(grad, alpha=group["lr"])
