"""The LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", sec. 3.3):
train for a short while with a learning rate that grows from tiny to huge, record the loss at
each step, and read a good learning rate off the curve of loss against LR.

    finder = LRFinder(model, optimizer, loss_fn)
    finder.range_test(train_loader, start_lr=1e-7, end_lr=10, num_iter=100)
    print(finder.suggestion())   # suggested lr 0.03 (consensus; steep 0.05, ...); high confidence
    finder.plot("lr_find.png")

The API is pytorch-lr-finder's (davidtvs/pytorch-lr-finder), with what its users asked for:

* The model (parameters, buffers, gradients, the train/eval flag of every module), the
  optimizer (its state_dict: moments, step counts, learning rates) and minigrad's default random
  generator are put back when the test ends, also when it stops on an exception or Ctrl-C (no
  reset() to forget). The history recorded up to an interruption is kept.
* A NaN or Inf loss stops the test: a NaN compares False with any threshold, so a finder that
  only compares the loss with a threshold runs on through NaNs.
* The suggestions read a curve smoothed with zero lag. pytorch-lr-finder smooths with a causal
  exponential moving average (EMA), ema_i = f L_i + (1 - f) ema_(i-1), which lags by
  (1 - f) / f steps (19 at its smooth_f = 0.05, more than a decade of LR) and so moves every
  suggestion to larger LRs. The EMA is kept for the one job it does well, deciding when to stop,
  since it sees only the past: stop once ema > diverge_th x its lowest value so far.
* Four rules (steep, valley, minimum, slide), each a pure function of (lrs, losses); their
  consensus with a confidence; repeats with other batch orders for an error bar.

The curve the rules read ("smoothed" in the history) leaves out the diverged tail
(diverged_tail_start) and smooths the rest in log space (smooth_curve): exp of the zero-lag
smoothing of ln L. A factor on the loss is a shift of its log, so no rule changes its answer
when the loss is multiplied by a constant; and the blow-up just before the stop, often 100x
the loss, cannot leak back into the points before it. Losses must be > 0 (cross-entropy, MSE):
a loss <= 0 has no logarithm and counts as missing.

The rules, the curve they read and the summaries of their answers are pure functions in
diagnostics/lr_suggestions.py, re-exported here; this module runs the test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from diagnostics.lr_suggestions import (
    METHODS, MINIMUM_DIVISOR, SLIDE_TOLERANCE, SLIDE_WINDOW_DECADES, SMOOTHING_BETA, SUGGESTION_RULES, UNSTABLE_RISE,
    diverged_tail_start, lr_spread, median_lr, smooth_curve, stable_length, suggest_all, suggest_minimum,
    suggest_slide, suggest_steep, suggest_valley,
)
from minigrad.autograd import no_grad
from minigrad.random import default_generator
from minigrad.tensor import Tensor

__all__ = [
    "CONFIDENCE_SPREAD", "LRFinder", "Suggestion", "TrainingState", "lr_schedule",
    # from diagnostics.lr_suggestions
    "METHODS", "MINIMUM_DIVISOR", "SLIDE_TOLERANCE", "SLIDE_WINDOW_DECADES", "SMOOTHING_BETA", "SUGGESTION_RULES",
    "UNSTABLE_RISE", "diverged_tail_start", "lr_spread", "median_lr", "smooth_curve", "stable_length",
    "suggest_all", "suggest_minimum", "suggest_slide", "suggest_steep", "suggest_valley",
]

# The methods (or the repeats) disagreeing by more than this factor means low confidence.
CONFIDENCE_SPREAD = 10.0


# ---------------------------------------------------------------- the schedule


def lr_schedule(start_lr: float, end_lr: float, num_iter: int, step_mode: str = "exp") -> np.ndarray:
    """The learning rate of each step, from start_lr to end_lr (both included).

    exp:    lr_i = start * (end / start) ** (i / (num_iter - 1)), a geometric sequence
            (np.geomspace, whose ends are exactly start and end);
    linear: lr_i = start + (end - start) * i / (num_iter - 1), an arithmetic one (np.linspace).
    """
    if isinstance(num_iter, bool) or not isinstance(num_iter, (int, np.integer)) or num_iter < 2:
        raise ValueError(f"lr finder: num_iter must be an integer >= 2, got {num_iter!r}")
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr):
        raise ValueError(
            f"lr finder: need 0 < start_lr < end_lr (finite), got start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    if step_mode == "exp":
        return np.geomspace(start_lr, end_lr, num_iter)
    if step_mode == "linear":
        return np.linspace(start_lr, end_lr, num_iter)
    raise ValueError(f"lr finder: step_mode must be 'exp' or 'linear', got {step_mode!r}")


# ---------------------------------------------------------------- the suggestion


@dataclass(frozen=True)
class Suggestion:
    """A learning rate read off the range test, and how far to trust it.

    lr:             the suggested learning rate (NaN when no rule could answer).
    method:         the rule ("steep", "valley", "minimum", "slide") or "consensus": the
                    median, in log space, of the rules that answered.
    confidence:     "high", or "low" when the rules disagree (or the repeats scatter) by more
                    than CONFIDENCE_SPREAD = 10x, when fewer than two rules answered, or when
                    there is no answer; `reasons` says which.
    spread:         the larger of method_spread and repeat_spread.
    method_spread:  max / min of the rules' LRs.
    repeat_spread:  max / min of this suggestion's LR across repeats (1 for one repeat).
    per_method:     {method: lr}, each the median over the repeats.
    stopped_early:  True when a run stopped before end_lr (divergence or a non-finite loss).
    diverged_at:    the lowest LR at which a run stopped early, or None.
    reasons:        why the confidence is low (empty when high).
    """

    lr: float
    method: str
    confidence: str
    spread: float
    method_spread: float
    repeat_spread: float
    per_method: dict = field(default_factory=dict)
    stopped_early: bool = False
    diverged_at: float | None = None
    reasons: tuple = ()

    def __str__(self) -> str:
        methods = ", ".join(f"{name} {lr:.2g}" for name, lr in self.per_method.items())
        text = f"suggested lr {self.lr:.3g} ({self.method}; {methods}); {self.confidence} confidence"
        if self.reasons:
            text += ": " + "; ".join(self.reasons)
        if self.diverged_at is not None:
            text += f"; the loss diverged at lr {self.diverged_at:.3g}"
        return text


# ---------------------------------------------------------------- what the test changes, and its undo


class TrainingState:
    """A copy of everything a range test changes, to put back afterwards, bit for bit.

    Every parameter and buffer (persistent or not) with its gradient, copied by value and put
    back in place (the same Tensor objects, so the optimizer and any other holder still see
    them); the train/eval flag of every module; optimizer.state_dict() (moments, step counts,
    each group's lr), put back with load_state_dict; minigrad's default random generator.
    """

    def __init__(self, model, optimizer):
        self.optimizer = optimizer
        tensors = [*model.named_parameters(), *model.named_buffers()]
        self.tensors = [(tensor, tensor.data.copy(), None if tensor.grad is None else tensor.grad.copy())
                        for _, tensor in tensors]
        self.modes = [(module, module.training) for module in model.modules()]
        self.optimizer_state = optimizer.state_dict()
        self.generator = default_generator()
        self.generator_state = self.generator.bit_generator.state

    def restore(self) -> None:
        with no_grad():
            for tensor, data, grad in self.tensors:
                tensor.copy_(data)
                tensor.grad = None if grad is None else grad.copy()
        for module, training in self.modes:
            module.training = training
        self.optimizer.load_state_dict(self.optimizer_state)
        self.generator.bit_generator.state = self.generator_state


# ---------------------------------------------------------------- batches


def _as_tensor(value) -> Tensor:
    """A batch field as a Tensor: Tensors as they are; arrays keep their floating dtype, integers
    become int64 (class labels), as the DataLoader does."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    return Tensor(array)


def _unpack(batch, loader_name: str):
    """(inputs, targets) of one batch, as Tensors."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _as_tensor(batch[0]), _as_tensor(batch[1])
    what = f"a {type(batch).__name__}"
    if isinstance(batch, (tuple, list)):
        what += f" of {len(batch)} items"
    raise ValueError(f"lr finder: each batch of {loader_name} must be an (inputs, targets) pair, got {what}")


def _endless(loader, reshuffle: bool):
    """The batches of `loader`, pass after pass (a shuffling DataLoader shuffles each pass).
    With reshuffle, a list or tuple of batches is visited in a new random order on each pass
    (drawn from minigrad's default generator)."""
    while True:
        if reshuffle and isinstance(loader, Sequence):
            order = default_generator().permutation(len(loader))
            batches = (loader[int(i)] for i in order)
        else:
            batches = iter(loader)
        count = 0
        for batch in batches:
            count += 1
            yield batch
        if count == 0:
            raise ValueError(
                "lr finder: train_loader yielded no batches (an empty loader, or a generator that was "
                "used up); pass a list of (inputs, targets) batches or a DataLoader, which can be "
                "iterated again"
            )


# ---------------------------------------------------------------- the finder


class LRFinder:
    """The LR range test on a minigrad model (see the module docstring).

    model:     a minigrad.nn.Module.
    optimizer: an optimizer over the model's parameters. At each step of the test every
               parameter group gets the same lr (groups with different LRs are not scaled).
    loss_fn:   loss_fn(model(inputs), targets) -> a one-element Tensor (a mean over the batch).

    After range_test, `history` holds the first run as float arrays, one entry per step:
    "lr", "loss" (raw), "ema" (the causal EMA that decides when to stop) and "smoothed" (the
    curve the rules read, NaN over the diverged tail); and "stop_reason": "completed",
    "diverged" (the EMA crossed diverge_th x its lowest value), "non_finite" (a NaN or Inf loss)
    or "interrupted" (an exception). With repeats, "repeats" lists every run's history, the
    first one included.
    """

    def __init__(self, model, optimizer, loss_fn):
        for name in ("param_groups", "zero_grad", "step", "state_dict", "load_state_dict"):
            if not hasattr(optimizer, name):
                raise TypeError(
                    f"LRFinder: the optimizer has no {name!r}; pass a minigrad.optim optimizer, got "
                    f"{type(optimizer).__name__}"
                )
        if not callable(loss_fn):
            raise TypeError(
                f"LRFinder: loss_fn must be callable as loss_fn(outputs, targets), got {type(loss_fn).__name__}"
            )
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.history: dict = {}

    def range_test(self, train_loader, val_loader=None, start_lr=1e-7, end_lr=10, num_iter=100,
                   step_mode="exp", smooth_f=0.05, diverge_th=5, accumulation_steps=1, repeats=1,
                   progress=None) -> LRFinder:
        """Train num_iter steps with the LR going from start_lr to end_lr, recording the loss.

        train_loader:       an iterable of (inputs, targets) batches, Tensors or arrays (a
                            DataLoader, a list of tuples); started over when it runs out.
        val_loader:         if given, the loss recorded at each step is the mean loss over all
                            of it (each batch weighted by its size), in eval mode and without
                            gradients: slower, smoother.
        step_mode:          "exp" (geometric) or "linear" (arithmetic) steps; see lr_schedule.
        smooth_f:           the factor f of the causal EMA that decides when to stop
                            (pytorch-lr-finder's; 0 switches the EMA off: ema = loss).
        diverge_th:         stop once the EMA exceeds diverge_th x its lowest value so far
                            (while that value is > 0); a NaN or Inf loss stops at once.
        accumulation_steps: batches per step; their gradients are averaged (each loss divided
                            by accumulation_steps) and their mean loss is recorded.
        repeats:            run the whole test this many times from the same starting state,
                            each with another batch order: a shuffling DataLoader shuffles anew,
                            a list of batches is permuted (minigrad's default generator). A
                            loader that never shuffles gives the same run again.
        progress:           progress(step, total), called after every step, for a progress bar;
                            total is num_iter * repeats and step counts across the repeats.

        The model, optimizer and default random generator are put back as they were when this
        returns or raises (TrainingState). Returns self.
        """
        lrs = lr_schedule(start_lr, end_lr, num_iter, step_mode)
        _check_options(smooth_f, diverge_th, accumulation_steps, repeats)
        runs = []
        state = TrainingState(self.model, self.optimizer)
        # The test drives the model into divergence on purpose: NumPy's overflow warnings on the
        # way there are expected, and the NaN or Inf they end in stops the test.
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for repeat in range(repeats):
                    if repeat > 0:
                        state.restore()
                    runs.append({"lr": [], "loss": [], "ema": [], "stop_reason": "interrupted"})
                    batches = _endless(train_loader, reshuffle=repeat > 0)
                    self._run(runs[-1], lrs, batches, val_loader, smooth_f, diverge_th, accumulation_steps,
                              progress, steps_before=repeat * num_iter, total_steps=repeats * num_iter)
        finally:
            state.restore()
            self.history = _history(runs, diverge_th)
        return self

    def _run(self, run: dict, lrs, batches, val_loader, smooth_f, diverge_th, accumulation_steps, progress,
             steps_before: int, total_steps: int) -> None:
        """One range test, appended to `run` step by step (an exception keeps the steps done)."""
        for step, lr in enumerate(lrs):
            self._record_step(run, lr, batches, val_loader, smooth_f, accumulation_steps)
            if progress is not None:
                progress(steps_before + step + 1, total_steps)
            reason = _stop_reason(run, diverge_th)
            if reason is not None:
                run["stop_reason"] = reason
                return
        run["stop_reason"] = "completed"

    def _record_step(self, run: dict, lr: float, batches, val_loader, smooth_f: float,
                     accumulation_steps: int) -> None:
        """Train one step at `lr` and append its lr, loss and EMA to `run`."""
        loss = self._train_step(batches, lr, accumulation_steps)
        if val_loader is not None and math.isfinite(loss):
            loss = self._validation_loss(val_loader)
        if not run["ema"] or smooth_f == 0:
            ema = loss
        else:
            ema = smooth_f * loss + (1 - smooth_f) * run["ema"][-1]
        run["lr"].append(float(lr))
        run["loss"].append(loss)
        run["ema"].append(ema)

    def _train_step(self, batches, lr: float, accumulation_steps: int) -> float:
        """One optimizer step at `lr` over accumulation_steps batches; returns their mean loss.
        A non-finite loss returns at once, without a step (the test stops there anyway)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad()
        mean_loss = 0.0
        for _ in range(accumulation_steps):
            inputs, targets = _unpack(next(batches), "train_loader")
            loss = self._loss(inputs, targets)
            value = float(loss.item())
            if not math.isfinite(value):
                return value
            (loss / accumulation_steps).backward()
            mean_loss += value / accumulation_steps
        self.optimizer.step()
        return mean_loss

    def _validation_loss(self, val_loader) -> float:
        """Mean loss over the whole val_loader, each batch weighted by its size, in eval mode."""
        self.model.eval()
        total, count = 0.0, 0
        with no_grad():
            for batch in val_loader:
                inputs, targets = _unpack(batch, "val_loader")
                size = len(targets) if targets.ndim else 1
                total += float(self._loss(inputs, targets).item()) * size
                count += size
        if count == 0:
            raise ValueError("lr finder: val_loader yielded no batches; pass a non-empty loader or val_loader=None")
        return total / count

    def _loss(self, inputs, targets) -> Tensor:
        loss = self.loss_fn(self.model(inputs), targets)
        if not isinstance(loss, Tensor) or loss.size != 1:
            got = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(
                f"lr finder: loss_fn must return a one-element Tensor (a loss with reduction='mean'), got {got}"
            )
        return loss

    # ------------------------------------------------------------ reading the curve

    def _per_run_suggestions(self) -> tuple[list[dict], list[dict]]:
        """(the runs' histories, each run's {method: lr})."""
        if not self.history:
            raise RuntimeError("LRFinder: no range test yet; call finder.range_test(train_loader) first")
        runs = self.history.get("repeats", [self.history])
        return runs, [suggest_all(run["lr"], run["smoothed"]) for run in runs]

    def suggestions(self) -> dict[str, float]:
        """{method: lr} for every rule, each the median (in log space) over the repeats; NaN for
        a rule that cannot answer."""
        _, per_run = self._per_run_suggestions()
        return {method: median_lr([answers[method] for answers in per_run]) for method in METHODS}

    def suggestion(self, method=None) -> Suggestion:
        """The suggested LR with its confidence: one rule's (method="steep", ...) or, with
        method=None, the consensus: in each run the median of the rules in log space, then
        the median over the runs. See Suggestion."""
        if method is not None and method not in METHODS:
            raise ValueError(f"LRFinder.suggestion: unknown method {method!r}; choose one of {METHODS}, or None")
        runs, per_run = self._per_run_suggestions()
        per_method = {name: median_lr([answers[name] for answers in per_run]) for name in METHODS}
        if method is None:
            per_repeat = [median_lr(list(answers.values())) for answers in per_run]
        else:
            per_repeat = [answers[method] for answers in per_run]
        lr = median_lr(per_repeat)
        answered = [value for value in per_method.values() if np.isfinite(value)]
        method_spread, repeat_spread = lr_spread(answered), lr_spread(per_repeat)
        reasons = []
        if not np.isfinite(lr):
            reasons.append("no rule could read a learning rate off the curve")
        elif len(answered) < 2:
            reasons.append("only one rule could answer")
        if method_spread > CONFIDENCE_SPREAD:
            reasons.append(f"the rules disagree by {method_spread:.0f}x")
        if repeat_spread > CONFIDENCE_SPREAD:
            reasons.append(f"the repeats scatter by {repeat_spread:.0f}x")
        if any((np.asarray(run["loss"]) <= 0).any() for run in runs):
            reasons.append("losses <= 0 were left out (the curve is smoothed in log space)")
        stops = [run["lr"][-1] for run in runs if run["stop_reason"] in ("diverged", "non_finite")]
        return Suggestion(
            lr=lr, method=method or "consensus", confidence="low" if reasons else "high",
            spread=max(method_spread, repeat_spread) if answered else float("nan"),
            method_spread=method_spread, repeat_spread=repeat_spread, per_method=per_method,
            stopped_early=bool(stops), diverged_at=float(min(stops)) if stops else None, reasons=tuple(reasons),
        )

    def plot(self, path=None, ax=None):
        """The loss against the LR with each rule's suggestion marked
        (diagnostics.plots.plot_lr_finder); saved to `path` if given."""
        from diagnostics.plots import plot_lr_finder

        return plot_lr_finder(self.history, self.suggestions(), path=path, ax=ax)


def _check_options(smooth_f, diverge_th, accumulation_steps, repeats) -> None:
    if not 0 <= smooth_f < 1:
        raise ValueError(f"lr finder: smooth_f must be in [0, 1), got {smooth_f!r}")
    if not diverge_th > 1:
        raise ValueError(f"lr finder: diverge_th must be > 1 (a factor over the lowest loss), got {diverge_th!r}")
    for name, value in (("accumulation_steps", accumulation_steps), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"lr finder: {name} must be a positive integer, got {value!r}")


def _stop_reason(run: dict, diverge_th: float) -> str | None:
    """"non_finite" after a NaN or Inf loss, "diverged" once the EMA exceeds diverge_th x its
    lowest value so far (only while that value is > 0: a ratio means nothing for a loss that
    can be negative), else None: go on."""
    if not math.isfinite(run["loss"][-1]):
        return "non_finite"
    lowest_ema = min(run["ema"])
    if lowest_ema > 0 and run["ema"][-1] > diverge_th * lowest_ema:
        return "diverged"
    return None


def _history(runs: list[dict], diverge_th: float) -> dict:
    """The recorded runs as arrays, each with its smoothed curve; the first run at the top level
    and, for several runs, all of them under "repeats"."""
    histories = []
    for run in runs:
        history = {name: np.asarray(run[name], dtype=np.float64) for name in ("lr", "loss", "ema")}
        tail = diverged_tail_start(history["loss"], history["ema"], diverge_th)
        tail_gap = np.full(len(history["loss"]) - tail, np.nan)
        history["smoothed"] = np.concatenate([smooth_curve(history["loss"][:tail]), tail_gap])
        history["stop_reason"] = run["stop_reason"]
        histories.append(history)
    if not histories:
        return {}
    history = dict(histories[0])
    if len(histories) > 1:
        history["repeats"] = histories
    return history
