"""The measurements the loss-curve rules share (diagnostics.curves lists the rules).

smooth_zero_lag and theil_sen_slope are public (the LR finder, early stopping and the gradient
rules use them too); the rest turns a loss curve into the curve every rule reads,
y = log(loss - floor), and measures it: its noise, robust slopes and their t, running medians,
initial and final levels, and windows over it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Estimation settings, not thresholds (so not overridable): the shift of the floor below the
# lowest loss; the initial loss is the median of the first 5 entries (one lucky batch does not set it).
_LOG_SHIFT_FRACTION = 0.1
_INITIAL_POINTS = 5
# The final loss is the median of this fraction of the run (at least _INITIAL_POINTS entries).
_FINAL_FRACTION = 0.1
# Theil-Sen over all pairs costs m^2 / 2 slopes; longer series are first summarised by the
# medians of this many consecutive blocks (less noise per point, same trend).
_THEIL_SEN_MAX_POINTS = 200


# Every public function runs under np.errstate(all="ignore"): extreme inputs (1e308, 5e-324)
# overflow to inf or NaN, which the rules skip as missing; there is nothing to warn about.


@np.errstate(all="ignore")
def smooth_zero_lag(values, beta: float) -> np.ndarray:
    """Exponential smoothing that looks both ways, so peaks and minima stay where they are.

    s_t = sum_j beta^|t-j| v_j / sum_j beta^|t-j|, over the finite v_j. A causal EMA
    s_t = beta s_(t-1) + (1 - beta) v_t lags by about beta / (1 - beta) entries; weighing the
    past and the future alike cancels the lag. Dividing by the sum of the weights actually used is
    the bias correction (as in Adam): the ends are not pulled toward the zero the sums start from.
    Both sums run as recursions A_t = beta A_(t-1) + v_t, forward and backward: O(n).
    Within about 1 / (1 - beta) entries of either end only one side is seen, so a peak there
    drifts toward the end; further in, the weights are symmetric and nothing moves.
    Non-finite values get weight 0; where no finite value has weight left, the result is NaN.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"smooth_zero_lag: beta must be in [0, 1), got {beta}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    weight = np.isfinite(values).astype(np.float64)
    weighted = np.where(weight > 0, values, 0.0)
    sums, weights = np.zeros((2, len(values))), np.zeros((2, len(values)))
    for direction, order in enumerate((range(len(values)), reversed(range(len(values))))):
        total, total_weight = 0.0, 0.0
        for t in order:
            total, total_weight = beta * total + weighted[t], beta * total_weight + weight[t]
            sums[direction, t], weights[direction, t] = total, total_weight
    # Both directions include v_t itself; count it once.
    numerator, denominator = sums.sum(axis=0) - weighted, weights.sum(axis=0) - weight
    return np.where(denominator > 0, numerator / denominator, np.nan)


@np.errstate(all="ignore")
def theil_sen_slope(x, y) -> float:
    """Median of the pairwise slopes (y_j - y_i) / (x_j - x_i) (Theil 1950, Sen 1968).

    A robust straight-line slope: up to 29 % of the points can be arbitrarily wrong (spikes)
    without carrying it away, and for Gaussian noise it is nearly as precise as least squares.
    More than _THEIL_SEN_MAX_POINTS points are summarised by the medians of that many blocks.
    NaN when fewer than two finite points have distinct x.
    """
    x, y = _thin(*_finite_pairs(x, y))
    first, second = np.triu_indices(len(x), k=1)
    run = x[second] - x[first]
    slopes = (y[second] - y[first])[run != 0] / run[run != 0]
    return float(np.median(slopes)) if slopes.size else float("nan")


# ---------------------------------------------------------------- shared measurements


def _finite_pairs(x, y):
    x, y = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _thin(x, y):
    """At most _THEIL_SEN_MAX_POINTS points: the medians of as many consecutive blocks."""
    if len(x) <= _THEIL_SEN_MAX_POINTS:
        return x, y
    size = -(-len(x) // _THEIL_SEN_MAX_POINTS)  # entries per block, rounded up
    padded = np.full((2, size * -(-len(x) // size)), np.nan)  # the last block is padded with NaN
    padded[:, :len(x)] = x, y
    return np.nanmedian(padded.reshape(2, -1, size), axis=2)


def _as_arrays(loss, steps):
    loss = np.asarray(loss, dtype=np.float64).reshape(-1)
    steps = np.arange(len(loss), dtype=np.float64) if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    if len(steps) != len(loss):
        raise ValueError(f"curves: {len(steps)} steps for {len(loss)} losses; pass one step per loss")
    return loss, steps


def _floor_for(curves, floor) -> float:
    """`floor`, or, when some loss is at or below it, _LOG_SHIFT_FRACTION of the range lower."""
    finite = np.concatenate([curve[np.isfinite(curve)] for curve in curves])
    if finite.size == 0 or finite.min() > floor:
        return float(floor)
    lowest, span = float(finite.min()), float(finite.max() - finite.min())
    return lowest - _LOG_SHIFT_FRACTION * (span if 0 < span < np.inf else max(abs(lowest), 1.0))


def _log_curve(loss, steps, floor):
    """(steps, log(loss - floor)) at the finite entries: the curve every rule reads."""
    return _finite_pairs(steps, np.log(loss - floor))


def _curve(loss, steps, floor):
    """The steps, y = log(loss - floor) and the floor used, for a rule that reads one curve."""
    loss, steps = _as_arrays(loss, steps)
    floor = _floor_for([loss], floor)
    return *_log_curve(loss, steps, floor), floor


def _noise_sd(y) -> float:
    """Noise sd of a series, robustly: 1.4826 MAD of the first differences / sqrt(2).

    Differencing removes a slow trend; the difference of two noisy values has variance 2 sd^2.
    """
    differences = np.diff(y)
    if differences.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(differences - np.median(differences))) / np.sqrt(2))


def _slope_and_t(x, y):
    """Theil-Sen slope b of y over x, t = b / se with se = noise sd / sqrt(sum (x - mean x)^2), and se."""
    x, y = _thin(x, y)
    slope = theil_sen_slope(x, y)
    standard_error = _noise_sd(y) / np.sqrt(np.sum((x - x.mean()) ** 2)) if len(x) > 1 else np.nan
    t = slope / standard_error if standard_error > 0 else (0.0 if slope == 0 else np.copysign(np.inf, slope))
    return slope, float(t), float(standard_error)


def _running_median(y, window):
    """Median of the `window` entries centred on each point; near the ends, of the first or last
    `window` entries (padding would let one end value set the median)."""
    if len(y) <= window:
        return np.full(len(y), np.median(y) if len(y) else np.nan)
    medians = np.median(sliding_window_view(y, window), axis=1)
    return medians[np.clip(np.arange(len(y)) - window // 2, 0, len(medians) - 1)]


def _block_median(values, block):
    """Each entry gets the median of its block: consecutive blocks of at least `block` entries."""
    blocks = np.array_split(values, max(len(values) // block, 1))
    return np.concatenate([np.full(len(part), np.median(part) if len(part) else np.nan) for part in blocks])


def _initial_level(y, initial_loss, floor) -> float:
    if initial_loss is not None and initial_loss > floor:
        return float(np.log(initial_loss - floor))
    return float(np.median(y[:_INITIAL_POINTS]))


def _final_level(y) -> float:
    return float(np.median(y[-max(_INITIAL_POINTS, int(_FINAL_FRACTION * len(y))):]))


def _loss(level, floor) -> float:
    """Back from y = log(loss - floor) to the loss."""
    return float(np.exp(level) + floor)


def _ratio(log_difference) -> float:
    return float(np.exp(log_difference))


def _step(value):
    return int(value) if float(value).is_integer() else float(value)


def _windows(n, window):
    """Start indices of windows of `window` entries overlapping by half and covering all n."""
    if window < 1 or n < window:
        return []
    starts = list(range(0, n - window + 1, max(window // 2, 1)))
    return starts if starts[-1] == n - window else starts + [n - window]


def _runs(mask):
    """(start, end) of each run of consecutive True entries, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
