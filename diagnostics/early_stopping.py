"""Early stopping: stop when the validation loss stops improving, and keep the best weights.

    stopper = EarlyStopping(patience=10)
    for epoch in range(max_epochs):
        train_one_epoch(...)
        if stopper.step(validation_loss(model), model, train_loss=train_loss):
            break                      # the model now holds the weights of the best epoch
    print(stopper.reason)

A step improves when the monitored value beats the best so far by more than `min_delta`
(mode "min": value < best - min_delta; mode "max": value > best + min_delta). After `patience`
steps without improvement it stops and, with `restore_best`, copies the best weights back.

Double descent (Nakkiran et al. 2019, "Deep Double Descent") breaks the usual assumption that
a validation loss that rose will not fall again: around the point where the model starts to
fit its training data exactly, the validation loss can rise and then fall to a lower minimum.
With `allow_second_descent=True`, when patience runs out the stopper keeps going while a second
descent is still possible — while the training loss is still clearly falling (the model has not
yet fit the training set; the second descent comes as it does) — for at most
`second_descent_patience` more steps; a new best resets the count as usual.
"""

from __future__ import annotations

import math

import numpy as np

from diagnostics.curves import theil_sen_slope

# The training loss "is still falling" when its log falls by more than this fraction per
# `patience` steps over the last `patience` steps, or TREND_POINTS when patience is shorter
# (a robust Theil-Sen slope needs a few points, however small the patience).
STILL_FALLING = 0.05
TREND_POINTS = 3


class EarlyStopping:
    """Stop after `patience` steps without improvement; keep and restore the best weights.

    patience:              steps without improvement before stopping (>= 1).
    min_delta:             how much better than the best a value must be to count.
    mode:                  "min" (a loss) or "max" (an accuracy).
    restore_best:          on stop, load the best step's weights back into the model.
    allow_second_descent:  keep going past patience while the training loss still falls.
    second_descent_patience: the most extra steps allowed for a second descent (default 3x patience).

    After each step: `best`, `best_step`, `steps_without_improvement`; once stopped, `reason`
    says why (and `second_descent_step` is the first new best found after patience ran out).
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, mode: str = "min", restore_best: bool = True,
                 allow_second_descent: bool = False, second_descent_patience: int | None = None):
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {patience}")
        if not min_delta >= 0:  # also refuses NaN
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.restore_best = restore_best
        self.allow_second_descent = allow_second_descent
        self.second_descent_patience = 3 * patience if second_descent_patience is None else second_descent_patience
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_state: dict | None = None
        self.second_descent_step: int | None = None
        self.steps = 0
        self.steps_without_improvement = 0
        self.values: list[float] = []
        self.train_losses: list[float] = []
        self.stopped = False
        self.reason = ""

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value, model=None, train_loss=None) -> bool:
        """Record one evaluation; True when training should stop (the best weights are then
        back in `model` if restore_best)."""
        if self.stopped:
            return True
        value = float(value.item() if hasattr(value, "item") else value)
        self.values.append(value)
        if train_loss is not None:
            self.train_losses.append(float(train_loss.item() if hasattr(train_loss, "item") else train_loss))
        if self.improves(value):
            if self.steps_without_improvement >= self.patience and self.second_descent_step is None:
                self.second_descent_step = self.steps
            self.best, self.best_step = value, self.steps
            self.steps_without_improvement = 0
            if model is not None:
                self.best_state = {name: tensor.data.copy() for name, tensor in model.state_dict().items()}
        else:
            self.steps_without_improvement += 1
        self.steps += 1
        if self.steps_without_improvement < self.patience:
            return False
        if self.allow_second_descent and self._second_descent_possible():
            return False
        self._stop(model)
        return True

    def _second_descent_possible(self) -> bool:
        """While the training loss still falls, within the extra budget."""
        extra = self.steps_without_improvement - self.patience
        if extra >= self.second_descent_patience:
            self.reason = (f"no improvement for {self.steps_without_improvement} steps, including "
                           f"{self.second_descent_patience} extra steps allowed for a further descent that did "
                           "not come")
            return False
        window = max(self.patience, TREND_POINTS)
        recent = np.asarray(self.train_losses[-window:], dtype=float)
        if len(recent) < TREND_POINTS or not np.all(np.isfinite(recent)) or np.any(recent <= 0):
            self.reason = (f"no improvement for {self.steps_without_improvement} steps; the last {window} "
                           "training losses were not all given (train_loss=...), finite and positive, "
                           "so a second descent could not be judged")
            return False
        slope = theil_sen_slope(np.arange(len(recent)), np.log(recent))
        falling = -slope * self.patience > STILL_FALLING
        if not falling:
            self.reason = (f"no improvement for {self.steps_without_improvement} steps and the training loss "
                           "stopped falling, so no second descent is expected")
        return falling

    def _stop(self, model) -> None:
        self.stopped = True
        if not self.reason:
            self.reason = f"no improvement for {self.steps_without_improvement} steps (patience {self.patience})"
        if self.best_step is not None:
            self.reason += f"; best {self.best:.4g} at step {self.best_step}"
        if self.second_descent_step is not None:
            self.reason += (f"; a second descent after patience ran out gave a new best at step "
                            f"{self.second_descent_step}")
        if self.restore_best and model is not None and self.best_state is not None:
            model.load_state_dict(self.best_state)
            self.reason += " (best weights restored)"

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, best={self.best:.4g} at step {self.best_step}, "
                f"stopped={self.stopped})")

