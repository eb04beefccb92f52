"""Recorder: what a training run does, per step and per layer, kept as NumPy arrays.

    rec = Recorder(model)                  # hooks in
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)       # optional; the Recorder sees it fire
        optimizer.step()
        rec.step(loss=loss.item(), lr=optimizer.param_groups[0]["lr"])
    rec.history                            # a History: named columns, one row per recorded step
    rec.detach()                           # removes every hook

The Recorder only records; the detectors (gradients.py, activations.py, curves.py) judge.
It attaches through public hooks: a forward hook on every activation module (and any module
named in `modules`) sees its input and output, a tensor hook on that output sees the gradient
flowing back into it, and a forward pre-hook on the model marks the parameters' values before
the step, so the update the optimizer really applied can be measured. Gradients are read from
the parameters when `step()` is called (or just before clipping changes them).

Columns (see history.py for their meaning): loss, lr, val_loss, grad_norm, clip_norm,
clip_threshold, clip_fired; per parameter p: grad_norm/p, grad_mean_abs/p, grad_max_abs/p, grad_nonfinite/p,
grad_zero_frac/p, param_norm/p, update_ratio/p; per activation module m: act_mean/m, act_std/m,
act_zero_frac/m, act_dead_frac/m (ReLU family), act_sat_soft/m and act_sat_hard/m (tanh,
sigmoid), act_grad_std/m (the standard deviation of the gradient flowing back into m's output).
Per unit (not per step): `unit_stats(m)`.
"""

from __future__ import annotations

import numpy as np

from diagnostics import clipping, stats
from diagnostics.adapters import adapt
from diagnostics.adapters.base import RELU_FAMILY, SATURATING
from diagnostics.history import History

# A unit is "active" on a sample when its pre-activation is > 0. Over the recent window of
# recorded steps, a unit active on fewer than 1 % of the samples counts as dead (SageMaker
# Debugger's dead-ReLU rule uses the same 1 % level per unit).
ACTIVE_FRACTION_THRESHOLD = 0.01
DEFAULT_WINDOW = 20


class _Columns:
    """Per-step float columns in preallocated arrays that double when full. A column that
    first appears at a later row is NaN for the rows before it."""

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self.rows = 0
        self.arrays: dict[str, np.ndarray] = {}

    def new_row(self) -> None:
        if self.rows == self.capacity:
            self.capacity *= 2
            for name, array in self.arrays.items():
                grown = np.full(self.capacity, np.nan)
                grown[:self.rows] = array[:self.rows]
                self.arrays[name] = grown
        self.rows += 1

    def set(self, name: str, value: float) -> None:
        if name not in self.arrays:
            self.arrays[name] = np.full(self.capacity, np.nan)
        self.arrays[name][self.rows - 1] = value

    def view(self) -> dict[str, np.ndarray]:
        return {name: array[:self.rows] for name, array in self.arrays.items()}


class _ActivationProbe:
    """Accumulates one activation module's statistics over the forward passes of one step, and
    its per-unit activity over a window of recorded steps."""

    def __init__(self, name: str, kind: str | None, window: int):
        self.name, self.kind, self.window = name, kind, window
        self.recent_active: list[np.ndarray] = []   # per recorded step: active count per unit
        self.recent_samples: list[int] = []         # per recorded step: samples seen
        self.recent_max: list[np.ndarray] = []      # per recorded step: max pre-activation per unit
        self.window_active = None                   # sum of recent_active, kept as steps come and go
        self.window_samples = 0                     # sum of recent_samples
        self.first_active: np.ndarray | None = None  # active counts on the first recorded step
        self.per_unit = kind in RELU_FAMILY           # keep per-unit activity (see observe)
        self.reset_step()

    def reset_step(self) -> None:
        self.count = 0
        self.total = 0.0
        self.total_squares = 0.0
        self.zeros = 0
        self.soft_saturated = 0
        self.hard_saturated = 0
        self.active = None
        self.samples = 0
        self.unit_max = None
        self.grad_count = 0
        self.grad_total = 0.0
        self.grad_total_squares = 0.0

    def observe(self, pre_activation: np.ndarray, output: np.ndarray) -> None:
        flat = output.reshape(-1)
        self.count += flat.size
        self.total += float(flat.sum())
        self.total_squares += float(np.dot(flat, flat))
        self.zeros += stats.count_zeros(flat)
        if self.kind in SATURATING:
            derivative = stats.activation_derivative(self.kind, flat)
            self.soft_saturated += int(np.count_nonzero(derivative < stats.SOFT_SATURATION_DERIVATIVE))
            self.hard_saturated += int(np.count_nonzero(derivative < stats.HARD_SATURATION_DERIVATIVE))
        if self.per_unit:
            active = stats.unit_activity(pre_activation)
            if self.active is not None and active.shape != self.active.shape:
                # One module reused for layers of different widths (self.act = nn.ReLU() called
                # twice): its "units" are no single layer's, so it gets no per-unit statistics.
                self.per_unit, self.active, self.first_active, self.window_active = False, None, None, None
                del self.recent_active[:], self.recent_samples[:], self.recent_max[:]
                return
            unit_max = stats.unit_max(pre_activation)
            self.active = active if self.active is None else self.active + active
            self.unit_max = unit_max if self.unit_max is None else np.maximum(self.unit_max, unit_max)
            self.samples += stats.units_first(pre_activation).shape[0]

    def observe_gradient(self, grad: np.ndarray) -> None:
        flat = grad.reshape(-1)
        self.grad_count += flat.size
        self.grad_total += float(flat.sum())
        self.grad_total_squares += float(np.dot(flat, flat))

    def write(self, columns: _Columns) -> None:
        """Finish the step: write this module's columns and push per-unit counts into the window."""
        if self.count:
            mean = self.total / self.count
            columns.set(f"act_mean/{self.name}", mean)
            columns.set(f"act_std/{self.name}", np.sqrt(max(self.total_squares / self.count - mean * mean, 0.0)))
            columns.set(f"act_zero_frac/{self.name}", self.zeros / self.count)
            if self.kind in SATURATING:
                columns.set(f"act_sat_soft/{self.name}", self.soft_saturated / self.count)
                columns.set(f"act_sat_hard/{self.name}", self.hard_saturated / self.count)
        if self.grad_count:
            grad_mean = self.grad_total / self.grad_count
            grad_variance = max(self.grad_total_squares / self.grad_count - grad_mean * grad_mean, 0.0)
            columns.set(f"act_grad_std/{self.name}", np.sqrt(grad_variance))
        if self.active is not None:
            if self.first_active is None:
                self.first_active = self.active.copy()
            self._push_to_window()
            columns.set(f"act_dead_frac/{self.name}", float(np.mean(self.unit_activity_fraction() < ACTIVE_FRACTION_THRESHOLD)))
        self.reset_step()

    def _push_to_window(self) -> None:
        """Add this step's per-unit counts to the window, dropping the oldest step once the
        window is full; the window's sums are updated rather than recomputed."""
        self.recent_active.append(self.active)
        self.recent_samples.append(self.samples)
        self.recent_max.append(self.unit_max)
        self.window_active = self.active.copy() if self.window_active is None else self.window_active + self.active
        self.window_samples += self.samples
        if len(self.recent_active) > self.window:
            self.window_active -= self.recent_active.pop(0)
            self.window_samples -= self.recent_samples.pop(0)
            self.recent_max.pop(0)

    def unit_activity_fraction(self) -> np.ndarray:
        """Per unit, the fraction of samples in the window on which it was active."""
        return self.window_active / max(self.window_samples, 1)


class Recorder:
    """Records gradient, parameter, update and activation statistics of `model` per step.

    model:    a minigrad.nn.Module (or a torch.nn.Module, through its adapter).
    every:    record every k-th call of `step()` (steps 0, k, 2k, ...).
    modules:  names (as in named_modules) of extra modules to probe besides the activations.
    window:   number of recorded steps over which per-unit activity is counted.
    activations, updates: turn those probes off to save time.
    """

    def __init__(self, model, every: int = 1, modules=(), window: int = DEFAULT_WINDOW,
                 activations: bool = True, updates: bool = True):
        if every < 1:
            raise ValueError(f"Recorder: every must be >= 1, got {every}")
        self.adapter = adapt(model)
        self.every, self.window = every, window
        self.step_count = 0
        self.columns = _Columns()
        self.parameters = self.adapter.named_parameters()
        self._parameter_ids = {id(p) for _, p in self.parameters}
        self._clipping_ours = False  # the clip call in progress is on this model's parameters
        self.probes: dict[str, _ActivationProbe] = {}
        self._handles = []
        self._gradient_stats: dict[str, float] | None = None  # measured this step, written by step()
        self._snapshot: dict[str, np.ndarray] | None = None
        self._snapshot_taken = False
        self._parameter_norms, self._parameter_norms_step = {}, None
        self._clip = (np.nan, np.nan, np.nan)  # pre-clip norm, threshold, fired, this step
        if activations:
            self._attach_activation_probes(set(modules))
        if updates:
            self._handles.append(self.adapter.add_forward_pre_hook(self._before_forward))
        clipping.add_clip_listener(self)

    # -- attaching -------------------------------------------------------------------------------

    def _attach_activation_probes(self, extra_names: set) -> None:
        found = set()
        for name, module in self.adapter.named_modules():
            kind = self.adapter.kind(module)
            if kind is None and name not in extra_names:
                continue
            found.add(name)
            probe = _ActivationProbe(name or "<model>", kind, self.window)
            self.probes[probe.name] = probe
            self._handles.append(self.adapter.add_forward_hook(module, self._activation_callback(probe)))
        missing = extra_names - found
        if missing:
            raise ValueError(f"Recorder: no module named {', '.join(sorted(missing))} in the model")

    def _activation_callback(self, probe: _ActivationProbe):
        def on_forward(pre_activation, output, output_handle):
            if self.recording and self.adapter.is_training():
                probe.observe(pre_activation, output)
                self.adapter.add_gradient_hook(output_handle, probe.observe_gradient)
        return on_forward

    def detach(self) -> None:
        """Remove every hook; the recorded history stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        clipping.remove_clip_listener(self)

    @property
    def recording(self) -> bool:
        """True when the current step (the one the next `step()` call closes) is recorded."""
        return self.step_count % self.every == 0

    # -- hooks -------------------------------------------------------------------------------------

    def _before_forward(self) -> None:
        """Keep the parameters' values before this step's update (once per recorded step)."""
        if not self.recording or self._snapshot_taken:
            return
        if self._snapshot is None:
            self._snapshot = {name: np.array(self.adapter.value(p), copy=True) for name, p in self.parameters}
        else:
            for name, p in self.parameters:
                np.copyto(self._snapshot[name], self.adapter.value(p))
        self._snapshot_taken = True

    def before_clip(self, parameters) -> None:
        """Called by the clipping functions: measure the gradients before they are changed.
        Clipping another model's parameters (a second network, a GAN's other half) is ignored."""
        self._clipping_ours = any(id(p) in self._parameter_ids for p in parameters)
        if self._clipping_ours and self.recording and self._gradient_stats is None:
            self._gradient_stats = self._measure_gradients()

    def after_clip(self, kind: str, total_norm: float, threshold: float, fired: bool) -> None:
        if self._clipping_ours:
            self._clip = (total_norm, threshold, float(fired))

    # -- recording ---------------------------------------------------------------------------------

    def _measure_gradients(self) -> dict[str, float]:
        """This step's gradient columns; kept until `step()` opens the step's row."""
        measured = {}
        squares = 0.0
        for name, p in self.parameters:
            grad = self.adapter.grad(p)
            if grad is None:
                continue
            summary = stats.gradient_summary(grad)
            squares += summary["norm"] ** 2
            for key, value in summary.items():
                measured[f"grad_{key}/{name}"] = value
        if measured:
            measured["grad_norm"] = np.sqrt(squares)
        return measured

    def _record_parameters(self) -> None:
        """Parameter norms, and update ratios against the values kept before the step. When the
        previous step was recorded too, its parameter norms are the norms before this step's
        update, and the kept values can be overwritten by the update itself: each array is then
        read three times (norm, difference, norm of the difference)."""
        previous_norms = self._parameter_norms if self._parameter_norms_step == self.step_count - 1 else {}
        norms = {}
        for name, p in self.parameters:
            value = self.adapter.value(p)
            norms[name] = stats.l2_norm(value)
            self.columns.set(f"param_norm/{name}", norms[name])
            if self._snapshot_taken:
                before = self._snapshot[name]
                ratio = stats.update_to_weight_ratio(value, before, previous_norms.get(name), out=before)
                self.columns.set(f"update_ratio/{name}", ratio)
        self._parameter_norms, self._parameter_norms_step = norms, self.step_count

    def step(self, loss=None, lr=None, val_loss=None, **scalars) -> None:
        """Close one optimizer step (call it after `optimizer.step()`). On recorded steps, write
        a row: the given loss, lr, val_loss and any other named scalars, and every statistic."""
        if self.recording:
            self.columns.new_row()
            self.columns.set("step", self.step_count)
            for name, value in (("loss", loss), ("lr", lr), ("val_loss", val_loss), *scalars.items()):
                if value is not None:
                    self.columns.set(name, _as_float(value, name))
            if self._gradient_stats is None:
                self._gradient_stats = self._measure_gradients()
            for name, value in self._gradient_stats.items():
                self.columns.set(name, value)
            self._record_parameters()
            for name, value in zip(("clip_norm", "clip_threshold", "clip_fired"), self._clip):
                self.columns.set(name, value)
            for probe in self.probes.values():
                probe.write(self.columns)
        self.step_count += 1
        self._gradient_stats = None
        self._snapshot_taken = False
        self._clip = (np.nan, np.nan, np.nan)

    # -- reading -----------------------------------------------------------------------------------

    @property
    def history(self) -> History:
        """Everything recorded so far, as a History (arrays are copies)."""
        columns = self.columns.view()
        if not np.isfinite(columns.get("clip_fired", np.array([np.nan]))).any():
            for name in ("clip_norm", "clip_threshold", "clip_fired"):
                columns.pop(name, None)
        return History({name: values.copy() for name, values in columns.items()})

    def unit_stats(self, name: str) -> dict:
        """Per-unit statistics of a ReLU-family module over the recent window:
        active_fraction (fraction of samples with pre-activation > 0), max_preactivation (the
        largest seen: how far a dead unit is from reviving), samples, and born_dead (units
        never active on the first recorded step)."""
        probe = self.probes.get(name)
        if probe is None or not probe.recent_active:
            return {}
        return {
            "active_fraction": probe.unit_activity_fraction(),
            "max_preactivation": np.max(probe.recent_max, axis=0),
            "samples": int(sum(probe.recent_samples)),
            "born_dead": probe.first_active == 0,
        }

    def layer_kinds(self) -> dict[str, str | None]:
        """{activation module name: kind} for every probed module."""
        return {name: probe.kind for name, probe in self.probes.items()}

    def to_dict(self) -> dict:
        return self.history.to_dict()

    def to_csv(self, path) -> None:
        self.history.to_csv(path)

    def to_jsonl(self, path) -> None:
        self.history.to_jsonl(path)

    def __repr__(self) -> str:
        return (f"Recorder({self.adapter.framework} model, {len(self.parameters)} parameters, "
                f"{len(self.probes)} probed modules, {self.columns.rows} recorded steps, every={self.every})")


def _as_float(value, name: str) -> float:
    """Python numbers, NumPy scalars and one-element tensors (minigrad or torch) as a float."""
    if hasattr(value, "item"):
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Recorder.step: {name} must be a number, got {type(value).__name__}") from None
