"""Gradient clipping, and telemetry of how often it fires.

clip_grad_norm_(parameters, max_norm)      scale all gradients by min(1, max_norm / (||g|| + 1e-6)),
                                           ||g|| the norm of all gradients together (PyTorch's rule)
clip_grad_value_(parameters, clip_value)   clamp every entry to [-clip_value, clip_value]
adaptive_clip_grad_(parameters, 0.01)      unit-wise: scale each output unit's gradient so that
                                           ||G_i|| / max(||W_i||, eps) <= clip_factor
                                           (AGC, Brock et al. 2021, "High-Performance Large-Scale
                                           Image Recognition Without Normalization")

Each call tells the registered listeners (a Recorder attached to a model, or a ClipStats) twice:
before touching the gradients, so they can measure the gradients the backward pass produced,
and after, with the pre-clip norm and whether the clip changed anything. ClipStats turns that
into findings: clipping that fires on almost every step has become a learning-rate rescale;
clipping that never fires does nothing.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

import minigrad
from diagnostics.findings import Finding

# Fraction of steps above which clipping "always" fires: it then rescales every step, which
# is a smaller learning rate in disguise (and hides the gradient scale from the optimizer).
ALWAYS_FIRES_FRACTION = 0.9
# Fewer recorded clip calls than this are not enough to call the rate.
MIN_CLIP_CALLS = 20

_listeners: list[weakref.ref] = []


def add_clip_listener(listener) -> None:
    """Register an object with ``before_clip(parameters)`` and
    ``after_clip(kind, total_norm, threshold, fired)`` methods (held weakly)."""
    _listeners.append(weakref.ref(listener))


def remove_clip_listener(listener) -> None:
    _listeners[:] = [ref for ref in _listeners if ref() is not None and ref() is not listener]


def _live_listeners() -> list:
    listeners = [ref() for ref in _listeners]
    return [listener for listener in listeners if listener is not None]


def _with_grads(parameters) -> list:
    """The parameters (a tensor or an iterable of them) that have a gradient."""
    if hasattr(parameters, "grad"):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _as_tensor(value: float, like):
    """The total norm as a 0-d tensor of the gradients' dtype, as PyTorch returns it."""
    dtype = like[0].grad.dtype if like else np.float32
    return minigrad.tensor(np.asarray(value, dtype=dtype))


def total_grad_norm(parameters, norm_type: float = 2.0) -> float:
    """The norm of all gradients taken together as one vector: (sum_p ||g_p||^q)^(1/q), or
    max |g| for norm_type = inf."""
    grads = [p.grad for p in _with_grads(parameters)]
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        return float(max(np.abs(g).max() if g.size else 0.0 for g in grads))
    per_parameter = [np.linalg.norm(g.ravel().astype(np.float64, copy=False), norm_type) for g in grads]
    return float(np.linalg.norm(per_parameter, norm_type))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False):
    """Scale the gradients in place so that their total norm is at most `max_norm`.

    coefficient = min(1, max_norm / (total_norm + 1e-6)); every gradient is multiplied by it,
    so directions are kept. Returns the total norm before clipping (a 0-d tensor). As in
    PyTorch, a NaN total norm turns every gradient into NaN and an Inf one zeroes them (NaN
    where they were Inf), unless `error_if_nonfinite` is set, which raises instead. Unlike
    PyTorch, a negative `max_norm` is an error (PyTorch silently reverses every gradient).
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 (or inf), got {norm_type}")
    parameters = _with_grads(parameters)
    listeners = _live_listeners()
    for listener in listeners:
        listener.before_clip(parameters)
    total_norm = total_grad_norm(parameters, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of the gradients is {total_norm}; pass "
            "error_if_nonfinite=False to clip anyway (the gradients become NaN)"
        )
    coefficient = max_norm / (total_norm + 1e-6)
    fired = not coefficient >= 1.0  # NaN (a NaN norm) counts as fired: the gradients change
    if fired:
        for p in parameters:
            p.grad *= coefficient
    for listener in listeners:
        listener.after_clip("norm", total_norm, max_norm, fired)
    return _as_tensor(total_norm, parameters)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value], in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    parameters = _with_grads(parameters)
    listeners = _live_listeners()
    for listener in listeners:
        listener.before_clip(parameters)
    largest = max((float(np.abs(p.grad).max()) for p in parameters if p.grad.size), default=0.0)
    for p in parameters:
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
    for listener in listeners:
        listener.after_clip("value", largest, clip_value, not largest <= clip_value)


def unitwise_norm(array: np.ndarray) -> np.ndarray:
    """Norm of each output unit: over all axes but the first for a weight of 2 or more
    dimensions (one row of a Linear weight), the whole vector for a bias."""
    if array.ndim <= 1:
        return np.asarray(np.linalg.norm(array))
    axes = tuple(range(1, array.ndim))
    return np.sqrt(np.sum(np.square(array, dtype=np.float64), axis=axes, keepdims=True))


def adaptive_clip_grad_(parameters, clip_factor: float = 0.01, eps: float = 1e-3) -> None:
    """Adaptive gradient clipping (AGC): for each unit i of each parameter W,
    if ||G_i|| > clip_factor * max(||W_i||, eps), scale G_i to that length.

    The limit is relative to the weight's own size, so one clip_factor suits every layer
    (Brock et al. 2021 use 0.01 for batch size 4096 and larger values for small batches).
    """
    if clip_factor <= 0 or eps <= 0:
        raise ValueError(f"adaptive_clip_grad_: clip_factor and eps must be > 0, got {clip_factor} and {eps}")
    parameters = _with_grads(parameters)
    listeners = _live_listeners()
    for listener in listeners:
        listener.before_clip(parameters)
    fired = False
    largest_ratio = 0.0
    for p in parameters:
        weight_norm = np.maximum(unitwise_norm(p.data), eps)
        grad_norm = unitwise_norm(p.grad)
        limit = clip_factor * weight_norm
        too_large = grad_norm > limit
        largest_ratio = max(largest_ratio, float(np.max(grad_norm / weight_norm)))
        if np.any(too_large):
            fired = True
            scale = np.where(too_large, limit / np.maximum(grad_norm, 1e-6), 1.0)
            p.grad *= scale.astype(p.grad.dtype)
    for listener in listeners:
        listener.after_clip("adaptive", largest_ratio, clip_factor, fired)


class ClipStats:
    """Counts clipping calls while it is active (``with ClipStats() as stats:`` or start/stop).

    pre_clip_norms: the total norm (or largest entry / largest unit ratio) before each call;
    fired: whether that call changed the gradients; fire_rate: the fraction that did.
    """

    def __init__(self):
        self.pre_clip_norms: list[float] = []
        self.thresholds: list[float] = []
        self.fired: list[bool] = []

    def start(self) -> "ClipStats":
        add_clip_listener(self)
        return self

    def stop(self) -> None:
        remove_clip_listener(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def before_clip(self, parameters) -> None:
        pass

    def after_clip(self, kind: str, total_norm: float, threshold: float, fired: bool) -> None:
        self.pre_clip_norms.append(total_norm)
        self.thresholds.append(threshold)
        self.fired.append(bool(fired))

    @property
    def fire_rate(self) -> float:
        return float(np.mean(self.fired)) if self.fired else float("nan")

    def findings(self) -> list[Finding]:
        return clipping_findings(np.asarray(self.fired, dtype=float), np.asarray(self.pre_clip_norms),
                                 np.asarray(self.thresholds))


def clipping_findings(fired: np.ndarray, pre_clip_norms: np.ndarray, thresholds: np.ndarray,
                      always_fraction: float = ALWAYS_FIRES_FRACTION,
                      min_calls: int = MIN_CLIP_CALLS) -> list[Finding]:
    """Notes (severity info: neither is a failure) when clipping fires on more than
    `always_fraction` of the calls (it has become a learning-rate rescale: lower the LR or raise
    the threshold) or never fires (the threshold is above every gradient norm seen)."""
    fired = np.asarray(fired, dtype=float)
    fired = fired[np.isfinite(fired)]
    if fired.size < min_calls:
        return []
    rate = float(fired.mean())
    median_norm = _finite_median(pre_clip_norms)
    threshold = _finite_median(thresholds)
    evidence = {"fire_rate": rate, "calls": int(fired.size), "median_pre_clip_norm": median_norm,
                "threshold": threshold}
    if rate > always_fraction:
        return [Finding(
            "clipping",
            f"gradient clipping fired on {rate:.0%} of {fired.size} steps (> {always_fraction:.0%}): "
            f"median norm {median_norm:.3g} vs threshold {threshold:.3g}; it acts as a constant "
            "learning-rate rescale — lower the learning rate or raise the threshold",
            severity="info", evidence={**evidence, "limit": always_fraction},
        )]
    if rate == 0.0:
        return [Finding(
            "clipping",
            f"gradient clipping never fired in {fired.size} steps: median norm {median_norm:.3g} is "
            f"below the threshold {threshold:.3g}, so clipping has no effect",
            severity="info", evidence=evidence,
        )]
    return []


def _finite_median(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")
