"""The LR range test's suggestion rules and the curve they read: pure functions of arrays.

    suggest_steep, suggest_valley,   one rule each: (lrs, smoothed losses) -> a learning rate,
    suggest_minimum, suggest_slide   NaN when the rule cannot read one off the curve
    suggest_all                      every rule on the stable part of one curve (stable_length)
    smooth_curve                     the curve the rules read: exp of the zero-lag smoothing of ln L
    diverged_tail_start              where a run's blow-up begins (left out of the curve)
    median_lr, lr_spread             the middle and the spread of several answers, in log space

diagnostics.lr_finder runs the test and reads its curves with these (and re-exports them).
Each constant below says where its value comes from.
"""

from __future__ import annotations

import numpy as np

from diagnostics.curves import smooth_zero_lag

METHODS = ("steep", "valley", "minimum", "slide")
# fastai and Sylvain Gugger's post: the LR at the minimum is already "on the edge"; go one
# order of magnitude lower.
MINIMUM_DIVISOR = 10.0
# fastai's slide rule counts in steps of its default test (100 steps over 1e-7..10, 8 decades,
# 0.081 decade per step): a window of lr_diff = 15 steps = 1.2 decades, and slopes agreeing
# within thresh = 0.005 loss per step = 0.062 loss per decade. Here the window is in decades
# and the tolerance is per decade and a fraction of the median loss, so the rule changes
# neither with num_iter nor with the scale of the loss.
SLIDE_WINDOW_DECADES = 1.2
SLIDE_TOLERANCE = 0.062
# The zero-lag smoother's weights beta^|k| (as curves.VALIDATION_BETA): neighbours weigh 0.5,
# 0.25, ..., a kernel of standard deviation 2 points (0.16 decade at the default 100 steps over
# 8 decades). Heavier smoothing blurs the decline to the left and pulls valley and minimum to
# smaller LRs: on the spirals tasks of benchmarks/bench_lr_finder.py, beta = 0.9 (which removes
# as much noise as the EMA at smooth_f = 0.05) put the consensus 5-35x lower than beta = 0.5 in
# 5 runs of 6, and the loss after training at it 3-19x higher; on the regression tasks the two
# were close.
SMOOTHING_BETA = 0.5
# The rules read the curve only until the smoothed loss first rises above this factor times its
# lowest value so far (stable_length): a doubling of the loss is the instability the test is
# looking for, not part of the curve to read.
UNSTABLE_RISE = 2.0


# ---------------------------------------------------------------- the suggestion rules


def _finite_curve(lrs, losses):
    """(lrs, losses) as float arrays, keeping the points with a positive finite LR and a finite
    loss. Unequal lengths are a caller's bug and raise."""
    lrs = np.asarray(lrs, dtype=np.float64).reshape(-1)
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    if len(lrs) != len(losses):
        raise ValueError(f"lr finder: {len(lrs)} learning rates for {len(losses)} losses; pass one LR per loss")
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(lrs) & (lrs > 0) & np.isfinite(losses)
    return lrs[keep], losses[keep]


def _as_answer(lr) -> float:
    """A rule answers with a positive finite LR, or NaN (a subnormal LR / 10 can round to 0)."""
    return float(lr) if np.isfinite(lr) and lr > 0 else float("nan")


def _is_flat(losses) -> bool:
    return losses.size == 0 or losses.max() == losses.min()


def suggest_steep(lrs, smoothed) -> float:
    """The LR where the smoothed loss falls fastest against log LR (fastai's `steep`).

    slope_i = dL/d(ln lr) at point i, by central differences (np.gradient over ln lr, which
    also handles the uneven spacing of a linear schedule); the answer is lr at argmin slope_i
    over the points up to the lowest loss: past it the loss is climbing out, and a drop there
    is an oscillation of a too-large LR, not the descent. fastai takes forward differences
    (L_(i+1) - L_i) / (ln lr_(i+1) - ln lr_i) over the whole curve and reports the left point,
    half a step early; central differences are centred on the point reported.
    NaN with fewer than 3 points or when the curve never falls.
    """
    lrs, losses = _finite_curve(lrs, smoothed)
    if len(losses) < 3 or _is_flat(losses):
        return float("nan")
    with np.errstate(all="ignore"):
        slopes = np.gradient(losses, np.log(lrs))
    slopes[~np.isfinite(slopes)] = np.inf
    steepest = int(np.argmin(slopes[:np.argmin(losses) + 1]))
    return float(lrs[steepest]) if slopes[steepest] < 0 else float("nan")


def suggest_valley(lrs, smoothed) -> float:
    """The middle of the longest decline of the loss (fastai's `valley`, by Zachary Mueller).

    The longest decline is the longest strictly decreasing subsequence of the losses:
    run_i = 1 + max(run_j for j < i with L_j > L_i) (1 if there is none), ending at
    e = argmax run_i with length m = run_e. Like fastai, the valley is taken as the m points
    ending at e, from s = e - (m - 1) (fastai writes e - m), and the suggestion sits in the
    middle of its middle third: fastai's index s + int(d / 3) + int(d / 6), d = e - s, is the
    midpoint. Here the midpoint is taken in log LR: sqrt(lr_s * lr_e).
    NaN when the loss never decreases.
    """
    lrs, losses = _finite_curve(lrs, smoothed)
    if len(losses) < 2 or _is_flat(losses):
        return float("nan")
    run = np.ones(len(losses), dtype=np.int64)
    for i in range(1, len(losses)):
        higher_before = losses[:i] > losses[i]
        if higher_before.any():
            run[i] = 1 + run[:i][higher_before].max()
    end = int(np.argmax(run))
    length = int(run[end])
    if length < 2:
        return float("nan")
    start = end - (length - 1)
    return _as_answer(np.sqrt(lrs[start]) * np.sqrt(lrs[end]))


def suggest_minimum(lrs, smoothed) -> float:
    """The LR at the lowest smoothed loss, divided by MINIMUM_DIVISOR = 10 (fastai's `minimum`).

    NaN when the lowest loss is at the first LR (the loss never fell: the range started too
    high, or the curve is flat).
    """
    lrs, losses = _finite_curve(lrs, smoothed)
    if _is_flat(losses):
        return float("nan")
    lowest = int(np.argmin(losses))
    return _as_answer(lrs[lowest] / MINIMUM_DIVISOR) if lowest > 0 else float("nan")


def suggest_slide(lrs, smoothed, window_decades: float = SLIDE_WINDOW_DECADES,
                  tolerance: float = SLIDE_TOLERANCE) -> float:
    """fastai's `slide` rule (Zachary Mueller's interval slide), made scale-free.

    g_i = dL/d(log10 lr) at point i (central differences). A window [l, r] whose ends lie
    `window_decades` apart slides from the right end of the curve to the left while the
    slopes at its ends disagree, |g_r - g_l| > tolerance * median |L|; the suggestion is the
    left end l of the last window that disagreed (or of the first window, when that one already
    agrees). Starting from the divergence, the rule walks back over the bend of the curve
    until it finds an interval of uniform slope and suggests the LR just before it.

    fastai compares |g_r - g_l| with an absolute 0.005 per step; multiplying the loss by c
    multiplies both sides here, so the answer does not change.
    NaN when the curve spans less than one window, is flat, or no window ever agrees.
    """
    lrs, losses = _finite_curve(lrs, smoothed)
    decades = np.log10(lrs)
    if len(losses) < 3 or _is_flat(losses) or decades[-1] - decades[0] < window_decades:
        return float("nan")
    with np.errstate(all="ignore"):
        slopes = np.gradient(losses, decades)
    allowed = tolerance * float(np.median(np.abs(losses)))
    # left_of[r]: the last point at least one window to the left of point r (-1 if none).
    left_of = np.searchsorted(decades, decades - window_decades, side="right") - 1
    right = len(losses) - 1
    suggestion = lrs[left_of[right]]
    while left_of[right] >= 0:
        left = left_of[right]
        if abs(slopes[right] - slopes[left]) <= allowed:
            return float(suggestion)
        suggestion = lrs[left]
        right -= 1
    return float("nan")


SUGGESTION_RULES = {"steep": suggest_steep, "valley": suggest_valley, "minimum": suggest_minimum,
                    "slide": suggest_slide}


# ---------------------------------------------------------------- the curve, and summaries of the answers


def diverged_tail_start(losses, ema, diverge_th: float) -> int:
    """Where the diverged tail of a run begins: the start of the final run of losses that are
    non-finite or above diverge_th x the lowest EMA so far (len(losses) when there is none).

    The test stops once the EMA crosses the threshold, a few steps after the raw loss did;
    those last losses (often 100x the rest, or NaN) describe the blow-up, not the curve.
    """
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    ema = np.asarray(ema, dtype=np.float64).reshape(-1)
    lowest_ema = np.minimum.accumulate(np.where(np.isnan(ema), np.inf, ema))
    with np.errstate(invalid="ignore"):
        in_tail = ~(losses <= diverge_th * lowest_ema)
    start = len(losses)
    while start > 0 and in_tail[start - 1]:
        start -= 1
    return start


def smooth_curve(losses, beta: float = SMOOTHING_BETA) -> np.ndarray:
    """exp(zero-lag smoothing of ln L), curves.smooth_zero_lag with weights beta^|k|; NaN where
    L is not a positive finite number (those points are also left out of their neighbours'
    averages). A constant factor on L is a constant shift of ln L: the curve just scales."""
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    with np.errstate(all="ignore"):
        logs = np.where(np.isfinite(losses) & (losses > 0), np.log(losses), np.nan)
        smoothed = np.exp(smooth_zero_lag(logs, beta))
    smoothed[np.isnan(logs)] = np.nan
    return smoothed


def _positive_finite(lrs) -> np.ndarray:
    lrs = np.asarray(lrs, dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        return lrs[np.isfinite(lrs) & (lrs > 0)]


def median_lr(lrs) -> float:
    """The median in log space, exp(median(ln lr)), of the finite positive LRs (NaN if none):
    learning rates are compared by ratios, so their middle is a geometric one. The log is
    monotone, so that is the middle LR itself for an odd count, and the geometric mean
    sqrt(a b) of the middle two for an even count."""
    lrs = np.sort(_positive_finite(lrs))
    if lrs.size == 0:
        return float("nan")
    middle = lrs.size // 2
    if lrs.size % 2:
        return float(lrs[middle])
    return float(np.sqrt(lrs[middle - 1]) * np.sqrt(lrs[middle]))


def lr_spread(lrs) -> float:
    """max / min of the finite positive LRs: 1 when they agree (or there is one), NaN if none."""
    lrs = _positive_finite(lrs)
    return float(lrs.max() / lrs.min()) if lrs.size else float("nan")


def stable_length(smoothed) -> int:
    """How many points of the curve come before it turns unstable: before the first point at
    which the smoothed loss rises above UNSTABLE_RISE x its lowest value so far. Past it, the
    loss of a too-high learning rate swings chaotically, and one lucky batch can make a deep,
    meaningless dip that `minimum` and `steep` would pick (a ratio, so scale-free)."""
    smoothed = np.asarray(smoothed, dtype=np.float64).reshape(-1)
    lowest = np.minimum.accumulate(np.where(np.isfinite(smoothed), smoothed, np.inf))
    with np.errstate(invalid="ignore"):
        unstable = np.flatnonzero((lowest > 0) & (smoothed > UNSTABLE_RISE * lowest))
    return int(unstable[0]) if unstable.size else len(smoothed)


def suggest_all(lrs, smoothed) -> dict[str, float]:
    """Every rule of SUGGESTION_RULES on the stable part of one curve (see stable_length):
    {method: lr}, NaN where a rule cannot answer."""
    end = stable_length(smoothed)
    lrs, smoothed = np.asarray(lrs)[:end], np.asarray(smoothed)[:end]
    return {method: rule(lrs, smoothed) for method, rule in SUGGESTION_RULES.items()}
