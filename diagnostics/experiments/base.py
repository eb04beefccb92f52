"""What every lab experiment shares: a training loop with a Recorder attached, and a Run.

An experiment module is a short script with four names:

    TITLE      one line: what goes wrong
    FAILURE    the finding kind the doctor should name for reproduce() (its `primary`)
    STATEMENT  what you should see, in numbers
    reproduce(fast=False) -> Run   the failing setup
    fix(fast=False) -> Run         the textbook remedy (same data, same seed)

Both train through `train()` below, so the only differences between the two runs are the
ones the experiment makes on purpose. `fast=True` shrinks the run for the test suite; the
statements hold in both configurations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import minigrad as mg
from diagnostics.clipping import clip_grad_norm_
from diagnostics.doctor import Report, diagnose
from diagnostics.probes import Recorder

# Once the loss is NaN/Inf, a few more steps are recorded (to show the gradients) and the run stops.
STEPS_AFTER_NON_FINITE = 5


@dataclass
class Run:
    """One run of an experiment: its label, the History the doctor read (a Recorder's, or one
    built by hand, e.g. test error against model size), the doctor's report, and any extra
    measurements (accuracy, test error, ...). `model` and `recorder` are set for training runs."""

    label: str
    history: object
    report: Report
    measurements: dict = field(default_factory=dict)
    model: object = None
    recorder: Recorder = None

    def summary(self) -> str:
        """One line: the label, the final loss, the diagnosis and the scalar measurements
        (tables and per-layer lists are left to the experiment's own formatting)."""
        loss = self.history["loss"]
        finite = loss[np.isfinite(loss)]
        final = f"{finite[-1]:.4g}" if finite.size == len(loss) else "NaN"
        extras = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in self.measurements.items()
                           if isinstance(value, (int, float, str)) or value is None)
        return (f"{self.label}: final loss {final}; diagnosis {self.report.primary}"
                + (f"; {extras}" if extras else ""))


def default_loss(data) -> object:
    """Cross-entropy for classification data, mean squared error for regression."""
    return mg.nn.CrossEntropyLoss() if data.num_classes else mg.nn.MSELoss()


def accuracy(model, X, y) -> float:
    """Fraction of examples whose largest logit is the label (model in eval mode, no graph)."""
    training = model.training
    model.eval()
    with mg.no_grad():
        predictions = model(mg.tensor(X)).data.argmax(axis=1)
    model.train(training)
    return float(np.mean(predictions == y))


def evaluate(model, loss_fn, X, y) -> float:
    """The loss on (X, y), in eval mode and without building a graph."""
    training = model.training
    model.eval()
    with mg.no_grad():
        loss = float(loss_fn(model(mg.tensor(X)), mg.tensor(y)).item())
    model.train(training)
    return loss


def train(label: str, model, data, optimizer, steps: int, *, batch_size: int | None = None, loss_fn=None,
          max_norm: float | None = None, scheduler=None, val_every: int = 10, seed: int = 0,
          batch_hook=None, extra_findings=(), **recorder_options) -> Run:
    """Train `model` on `data` (a minigrad.data.Splits) for `steps` optimizer steps with a
    Recorder attached, and ask the doctor.

    batch_size: None for full-batch gradient descent, else minibatches from a seeded DataLoader.
    max_norm:   clip the gradient norm to this value before each step.
    scheduler:  stepped once per step, after the optimizer.
    val_every:  evaluate the validation loss every this many steps (recorded as val_loss).
    batch_hook: f(step, inputs, targets) -> (inputs, targets), to corrupt a batch on purpose.
    """
    loss_fn = loss_fn or default_loss(data)
    recorder = Recorder(model, **recorder_options)
    # Overflow to inf/NaN is what some experiments are about: the Recorder and the doctor
    # report it, so NumPy's warnings would only repeat it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _train_steps(model, data, optimizer, steps, batch_size, loss_fn, max_norm, scheduler, val_every,
                           seed, batch_hook, recorder)
    recorder.detach()
    measurements = {"val_loss": evaluate(model, loss_fn, data.X_val, data.y_val)}
    if data.num_classes:
        measurements["val_accuracy"] = accuracy(model, data.X_val, data.y_val)
    report = diagnose(recorder, extra_findings=extra_findings)
    return Run(label, report.history, report, measurements, model=model, recorder=recorder)


def _train_steps(model, data, optimizer, steps, batch_size, loss_fn, max_norm, scheduler, val_every, seed,
                 batch_hook, recorder) -> None:
    batches = _batches(data, batch_size, seed)
    non_finite_steps = 0
    for step in range(steps):
        inputs, targets = next(batches)
        if batch_hook is not None:
            inputs, targets = batch_hook(step, inputs, targets)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        if max_norm is not None:
            clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        val_loss = evaluate(model, loss_fn, data.X_val, data.y_val) if step % val_every == 0 else None
        recorder.step(loss=loss.item(), lr=optimizer.param_groups[0]["lr"], val_loss=val_loss)
        non_finite_steps += not math.isfinite(loss.item())
        if non_finite_steps > STEPS_AFTER_NON_FINITE:
            break


def _batches(data, batch_size, seed):
    """Endless (inputs, targets) Tensor batches: the whole training set, or seeded minibatches
    over epochs."""
    if batch_size is None or batch_size >= len(data.X_train):
        inputs, targets = mg.tensor(data.X_train), mg.tensor(data.y_train)
        while True:
            yield inputs, targets
    loader = mg.data.DataLoader(data.train, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed)
    while True:
        yield from loader


def mlp(sizes, activation=mg.nn.ReLU, final_activation=None, init=None, bias: float | None = None):
    """Linear layers of the given sizes with `activation` between them. `init(weight)`
    re-initializes every weight in place; `bias` sets every bias to a constant."""
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = mg.nn.Linear(n_in, n_out)
        if init is not None:
            init(linear.weight)
        if bias is not None:
            mg.nn.init.constant_(linear.bias, bias)
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    if final_activation is not None:
        layers.append(final_activation())
    return mg.nn.Sequential(*layers)
