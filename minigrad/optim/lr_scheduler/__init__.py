"""Learning-rate schedulers: each one sets ``group["lr"]`` of an optimizer's parameter groups.

Call ``scheduler.step()`` once per epoch (or per batch for OneCycleLR and CyclicLR), after
``optimizer.step()``. ``last_epoch`` counts the steps taken; creating a scheduler takes the
first one, to ``last_epoch = 0``. Each group remembers the learning rate it started with in
``group["initial_lr"]``, and ``base_lrs`` lists those.

The values are PyTorch's, computed the way PyTorch computes them. Most schedulers are
"chainable": each step scales the group's *current* lr by a factor, so two schedulers on one
optimizer compose, and a change you make to ``group["lr"]`` carries forward. Their docstrings
give the closed form the chain follows when nothing else touches the lr.

state_dict() returns every attribute but the optimizer; functions (lr_lambda, scale_fn) are
not saved, as in PyTorch: after load_state_dict the scheduler keeps the functions it was
built with.

The schedulers, by family:

    base.py        LRScheduler (the base class) and the helpers every scheduler shares
    simple.py      schedules that are a function of the step: LambdaLR, StepLR, MultiStepLR,
                   ExponentialLR, CosineAnnealingLR, LinearLR
    sequential.py  SequentialLR: one scheduler after another
    cyclic.py      cyclical schedules, stepped once per batch: OneCycleLR, CyclicLR
    plateau.py     a schedule driven by a metric: ReduceLROnPlateau
"""

from minigrad.optim.lr_scheduler.base import LRScheduler
from minigrad.optim.lr_scheduler.cyclic import CyclicLR, OneCycleLR
from minigrad.optim.lr_scheduler.plateau import ReduceLROnPlateau
from minigrad.optim.lr_scheduler.sequential import SequentialLR
from minigrad.optim.lr_scheduler.simple import (
    CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR, StepLR,
)

__all__ = [
    "CosineAnnealingLR", "CyclicLR", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR",
    "OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "StepLR",
]
