"""Statistics of one array: the numbers the Recorder keeps per step and per layer.

Pure functions of NumPy arrays (no framework, no state), each written to read the array as few
times as possible, because the Recorder calls them on every recorded training step.

Gradient health                          Activation health
    l2_norm(g)      = sqrt(sum g^2)          zero_fraction(y)      = #(y == 0) / n
    mean_abs(g)     = sum |g| / n            unit_activity(x)      = per unit, #(x > 0) over samples
    max_abs(g)      = max |g|                saturation_fractions  = fractions of f'(x) < 0.02 and
    nonfinite_count = #(NaN or Inf)                                  < 1e-7 (tanh, sigmoid)
    update_to_weight_ratio(new, old) = ||new - old|| / ||old||
"""

from __future__ import annotations

import numpy as np

# Saturation is measured on the derivative, not the output: a unit is "soft-saturated" when
# f'(x) < 0.02 (for tanh that is |tanh x| > 0.99, Glorot & Bengio 2010's saturation level) and
# "hard-saturated" when f'(x) < 1e-7 (the gradient is gone for any practical learning rate).
SOFT_SATURATION_DERIVATIVE = 0.02
HARD_SATURATION_DERIVATIVE = 1e-7


def l2_norm(array: np.ndarray) -> float:
    """sqrt(sum of squares), via a BLAS dot product (one pass, no temporary); NaN or Inf
    anywhere gives a non-finite result."""
    flat = np.ravel(array)
    if flat.size == 0:
        return 0.0
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)
    with np.errstate(over="ignore"):
        squares = np.dot(flat, flat)
    norm = float(np.sqrt(squares))
    # Squares that overflow (float32 entries above ~1e19) or underflow (below ~1e-19, where
    # they lose digits or become 0) although every entry is finite: redo it scaled, in float64.
    if (not np.isfinite(norm) or squares < flat.size * np.finfo(flat.dtype).tiny) and np.isfinite(flat).all():
        scale = float(np.abs(flat).max())
        if scale == 0.0:
            return 0.0
        scaled = flat.astype(np.float64) / scale
        norm = scale * float(np.sqrt(np.dot(scaled, scaled)))
    return norm


def gradient_summary(grad: np.ndarray) -> dict[str, float]:
    """L2 norm, mean |g|, max |g|, count of NaN/Inf entries, and the fraction of exact zeros.

    Non-finite entries are counted only when the norm says there are some (a finite norm
    means every entry is finite), which keeps the common case to a few fast passes.
    """
    size = grad.size
    if size == 0:
        return {"norm": 0.0, "mean_abs": 0.0, "max_abs": 0.0, "nonfinite": 0.0, "zero_frac": 0.0}
    norm = l2_norm(grad)
    magnitudes = np.abs(grad)
    nonfinite = 0 if np.isfinite(norm) else int(size - np.count_nonzero(np.isfinite(grad)))
    return {
        "norm": norm,
        "mean_abs": float(magnitudes.sum()) / size,
        "max_abs": float(magnitudes.max()),
        "nonfinite": float(nonfinite),
        "zero_frac": count_zeros(grad) / size,
    }


def count_zeros(array: np.ndarray) -> int:
    """How many entries are exactly 0. Counting the True entries of `array == 0` is several
    times faster than counting a float array's nonzero entries directly."""
    return int(np.count_nonzero(array == 0))


def update_to_weight_ratio(new: np.ndarray, old: np.ndarray, old_norm: float | None = None, out=None) -> float:
    """||theta_t - theta_{t-1}|| / ||theta_{t-1}||: the relative size of the step the optimizer
    actually took (CS231n's rule of thumb: about 1e-3 is healthy). NaN when ||old|| is 0.
    A known `old_norm` and a buffer `out` for the difference (it may be `old` itself, which is
    then overwritten) save passes over the arrays on the Recorder's hot path."""
    old_norm = l2_norm(old) if old_norm is None else old_norm
    if old_norm == 0.0:
        return float("nan")
    return l2_norm(np.subtract(new, old, out=out)) / old_norm


def zero_fraction(array: np.ndarray) -> float:
    """Fraction of entries exactly 0 (dead ReLU outputs are exact zeros)."""
    if array.size == 0:
        return 0.0
    return count_zeros(array) / array.size


def mean_and_std(array: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation, accumulated in float64."""
    if array.size == 0:
        return float("nan"), float("nan")
    mean = float(array.mean(dtype=np.float64))
    return mean, float(array.std(dtype=np.float64))


def units_first(array: np.ndarray) -> np.ndarray:
    """View an activation as (samples, units): the unit axis is 1 for (N, C, ...) arrays (a
    channel), 0 for a 1-D array (one sample); all other axes count as samples."""
    if array.ndim <= 1:
        return array.reshape(1, -1)
    if array.ndim == 2:
        return array
    return np.moveaxis(array, 1, -1).reshape(-1, array.shape[1])


def unit_activity(pre_activation: np.ndarray) -> np.ndarray:
    """Per unit, the number of samples on which the unit is active, i.e. x > 0, where a ReLU
    passes its input and its gradient. A unit with count 0 on every batch is dead."""
    return np.count_nonzero(units_first(pre_activation) > 0, axis=0)


def unit_max(pre_activation: np.ndarray) -> np.ndarray:
    """Per unit, the largest pre-activation seen: how far a dead unit is from reviving (it
    revives only if some input pushes this above 0)."""
    return units_first(pre_activation).max(axis=0)


def activation_derivative(kind: str, output: np.ndarray) -> np.ndarray | None:
    """f'(x) computed from the output y = f(x), for the saturating activations:
    tanh: 1 - y^2;  sigmoid: y (1 - y). None for activations that do not saturate."""
    if kind == "tanh":
        return 1.0 - output * output
    if kind == "sigmoid":
        return output * (1.0 - output)
    return None


def saturation_fractions(kind: str, output: np.ndarray,
                         soft: float = SOFT_SATURATION_DERIVATIVE,
                         hard: float = HARD_SATURATION_DERIVATIVE) -> tuple[float, float]:
    """Fractions of outputs whose derivative is below the soft and the hard level.
    (0, 0) for activations that do not saturate (ReLU family, GELU...)."""
    derivative = activation_derivative(kind, output)
    if derivative is None or derivative.size == 0:
        return 0.0, 0.0
    return (float(np.count_nonzero(derivative < soft) / derivative.size),
            float(np.count_nonzero(derivative < hard) / derivative.size))


def first_sustained(condition: np.ndarray, length: int) -> int | None:
    """Index of the first entry of the first run of `length` consecutive True values in
    `condition` (all of it when it is shorter than `length`), or None. Rules use it so that one
    noisy step does not fire them."""
    condition = np.asarray(condition, dtype=bool)
    length = max(1, min(length, condition.size))
    run = 0
    for index, holds in enumerate(condition):
        run = run + 1 if holds else 0
        if run >= length:
            return index - length + 1
    return None


def last_finite(values) -> float:
    """The last finite entry of `values` (NaN when there is none, or no values at all)."""
    if values is None:
        return float("nan")
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite[-1]) if finite.size else float("nan")
