"""The base class of every learning-rate scheduler, and the helpers the schedulers share.

LRScheduler takes the constructor's first step, writes each step's learning rates into the
optimizer's groups and saves its state; a subclass only says how the lr moves (`get_lr`).
"""

from __future__ import annotations

import copy
import types

from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class. A subclass computes the next learning rates in `get_lr`, from
    ``self.last_epoch`` (already advanced), ``self.base_lrs`` and the groups' current "lr"."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{index}] when resuming a "
                        f"scheduler with last_epoch={last_epoch}; load the optimizer's state dict (saved "
                        "while the scheduler ran) first, or start with last_epoch=-1"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """The step the constructor takes. Chainable schedulers leave the lr as it is on it
        (except where the schedule starts off the base lr, as LinearLR's start_factor does)."""
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """The learning rates for step ``self.last_epoch``, one per group (called by `step`; to
        read the current learning rates, use `get_last_lr`)."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_lr")

    def _closed_form_lr(self) -> list:
        """The learning rates at ``self.last_epoch`` computed from ``base_lrs`` alone (used by
        SequentialLR when it switches to this scheduler). Schedulers whose `get_lr` does not read
        the current lr use it as is."""
        return self.get_lr()

    def step(self) -> None:
        """Advance one step and write the new learning rates into the optimizer's groups."""
        self.last_epoch += 1
        self._set_lrs(self.get_lr())

    def _set_lrs(self, lrs) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = _current_lrs(self.optimizer)

    def get_last_lr(self) -> list:
        """The learning rates the last step set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, copied."""
        return copy.deepcopy({key: value for key, value in vars(self).items() if key != "optimizer"})

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))


def _current_lrs(optimizer: Optimizer) -> list:
    return [group["lr"] for group in optimizer.param_groups]


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    """`value` once per parameter group: a list or tuple must have one entry per group; a single
    value is repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. {name} has "
                f"{len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def _saved_callable(function):
    """What a state dict keeps of a user function: nothing for a plain function or lambda (it
    cannot be saved as data), the attributes of a callable object (PyTorch's rule)."""
    if function is None or isinstance(function, types.FunctionType) or not hasattr(function, "__dict__"):
        return None
    return copy.deepcopy(vars(function))
