"""Gradient clipping: the laws each clip obeys (bounded after, direction kept, a no-op below the
limit), the norm it returns, its errors, and the telemetry (ClipStats and its findings)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import minigrad as mg
from diagnostics.clipping import (
    ALWAYS_FIRES_FRACTION, MIN_CLIP_CALLS, ClipStats, adaptive_clip_grad_, clip_grad_norm_, clip_grad_value_,
    clipping_findings, unitwise_norm,
)

RELATIVE_SLACK = 1 + 1e-6


def parameter_with_grad(grad, weight=None):
    p = mg.nn.Parameter(np.ones_like(grad) if weight is None else weight)
    p.grad = grad
    return p


@st.composite
def gradient_lists(draw, min_value=-1e3, max_value=1e3):
    """1-4 parameters of one float dtype, gradients scaled by 10^k so norms span many decades."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scale = 10.0 ** draw(st.integers(-4, 4))
    grads = draw(st.lists(arrays(dtype, array_shapes(min_dims=1, max_dims=3, max_side=5),
                                 elements=st.floats(min_value, max_value, width=np.finfo(dtype).bits)),
                          min_size=1, max_size=4))
    return [(grad * scale).astype(dtype) for grad in grads]


def direct_total_norm(grads, norm_type) -> float:
    """(sum over every entry of every gradient of |g|^p)^(1/p), or max |g| for p = inf, in float64."""
    entries = np.concatenate([np.abs(g.astype(np.float64)).ravel() for g in grads])
    if math.isinf(norm_type):
        return float(entries.max())
    largest = entries.max()
    if largest == 0:
        return 0.0
    return float(largest * np.sum((entries / largest) ** norm_type) ** (1 / norm_type))


norm_types = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, math.inf])


# ---------------------------------------------------------------- clip_grad_norm_


@given(gradient_lists(), st.floats(1e-3, 1e3), norm_types)
def test_clip_grad_norm_bounds_the_norm_and_keeps_every_direction(grads, max_norm, norm_type):
    before = [g.copy() for g in grads]
    params = [parameter_with_grad(g.copy()) for g in grads]
    total = float(clip_grad_norm_(params, max_norm, norm_type=norm_type).item())
    after = [p.grad for p in params]
    assert direct_total_norm(after, norm_type) <= max_norm * RELATIVE_SLACK
    # One positive factor for all: each gradient is a positive multiple of what it was.
    factor = min(1.0, max_norm / (total + 1e-6))
    for old, new in zip(before, after):
        assert new.dtype == old.dtype and new.shape == old.shape
        np.testing.assert_allclose(new, old * factor, rtol=1e-6, atol=0)
        if np.any(old):
            cosine = np.dot(old.ravel().astype(np.float64), new.ravel()) / (
                np.linalg.norm(old.astype(np.float64)) * np.linalg.norm(new.astype(np.float64)))
            assert cosine == pytest.approx(1.0, abs=1e-6)


@given(gradient_lists(), norm_types, st.floats(1.0, 100.0))
def test_clip_grad_norm_changes_nothing_below_the_limit(grads, norm_type, headroom):
    norm = direct_total_norm(grads, norm_type)
    params = [parameter_with_grad(g.copy()) for g in grads]
    clip_grad_norm_(params, norm * headroom + 1e-5, norm_type=norm_type)
    for old, p in zip(grads, params):
        assert p.grad.tobytes() == old.tobytes()  # bit for bit


@given(gradient_lists(), norm_types)
def test_clip_grad_norm_returns_the_norm_before_clipping(grads, norm_type):
    params = [parameter_with_grad(g.copy()) for g in grads]
    returned = clip_grad_norm_(params, 1e-3, norm_type=norm_type)
    assert isinstance(returned, mg.Tensor) and returned.shape == () and returned.dtype == grads[0].dtype
    assert float(returned.item()) == pytest.approx(direct_total_norm(grads, norm_type), rel=1e-6)


def test_clip_grad_norm_takes_one_tensor_and_skips_parameters_without_grad():
    p = parameter_with_grad(np.array([3.0, 4.0]))
    no_grad = mg.nn.Parameter(np.ones(2))
    assert clip_grad_norm_([p, no_grad], 1.0).item() == pytest.approx(5.0)
    assert no_grad.grad is None
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    single = parameter_with_grad(np.array([0.0, 2.0]))
    assert clip_grad_norm_(single, 1.0).item() == pytest.approx(2.0)
    np.testing.assert_allclose(single.grad, [0.0, 1.0], rtol=1e-6)
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.parametrize("max_norm", [-1.0, -1e-9])
def test_negative_max_norm_raises(max_norm):
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm_([parameter_with_grad(np.ones(3))], max_norm)


@pytest.mark.parametrize("norm_type", [0, -2.0])
def test_norm_type_must_be_positive(norm_type):
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([parameter_with_grad(np.ones(3))], 1.0, norm_type=norm_type)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_error_if_nonfinite_raises_and_leaves_the_gradients(bad):
    grad = np.array([1.0, bad, 2.0])
    p = parameter_with_grad(grad.copy())
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad, grad)


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")
@pytest.mark.parametrize("bad, p_after, q_after", [
    (np.nan, [np.nan, np.nan, np.nan], [np.nan, np.nan]),  # coefficient NaN: everything NaN
    (np.inf, [0.0, np.nan, 0.0], [0.0, 0.0]),              # coefficient 0: zeros, and inf * 0
])
def test_a_non_finite_norm_clips_as_pytorch_does(bad, p_after, q_after):
    p = parameter_with_grad(np.array([1.0, bad, 2.0]))
    q = parameter_with_grad(np.array([1.0, 1.0]))
    total = clip_grad_norm_([p, q], 1.0).item()
    assert not math.isfinite(total)
    np.testing.assert_array_equal(p.grad, p_after)
    np.testing.assert_array_equal(q.grad, q_after)


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((4, 3)) * 10, rng.standard_normal(3)]
    for norm_type in (1.0, 2.0, 3.0, math.inf):
        params = [parameter_with_grad(g.copy()) for g in grads]
        torch_params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for tp, g in zip(torch_params, grads):
            tp.grad = torch.tensor(g)
        ours = clip_grad_norm_(params, 2.0, norm_type=norm_type).item()
        theirs = torch.nn.utils.clip_grad_norm_(torch_params, 2.0, norm_type=norm_type).item()
        assert ours == pytest.approx(theirs, rel=1e-12)
        for p, tp in zip(params, torch_params):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- clip_grad_value_


@given(gradient_lists(), st.floats(1e-3, 1e3))
def test_clip_grad_value_bounds_every_entry_and_keeps_the_rest(grads, clip_value):
    params = [parameter_with_grad(g.copy()) for g in grads]
    assert clip_grad_value_(params, clip_value) is None
    limit = np.float64(clip_value)
    for old, p in zip(grads, params):
        assert np.all(np.abs(p.grad) <= limit.astype(old.dtype))
        inside = np.abs(old) <= clip_value
        np.testing.assert_array_equal(p.grad[inside], old[inside])
        np.testing.assert_array_equal(np.sign(p.grad[~inside]), np.sign(old[~inside]))
        np.testing.assert_array_equal(np.abs(p.grad[~inside]), limit.astype(old.dtype))


def test_negative_clip_value_raises():
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value_([parameter_with_grad(np.ones(3))], -0.5)


# ---------------------------------------------------------------- adaptive clipping


@st.composite
def weights_and_gradients(draw):
    """Parameters with weights (some units near 0, below eps) and gradients of any size."""
    grads = draw(gradient_lists())
    weights = []
    for grad in grads:
        weight = draw(arrays(grad.dtype, grad.shape, elements=st.floats(-2, 2, width=np.finfo(grad.dtype).bits)))
        if draw(st.booleans()):
            weight[0] = 0.0  # one unit (or a whole bias) with a zero weight: eps takes over
        weights.append(weight)
    return grads, weights


def unit_ratios(grad, weight, eps):
    """||G_i|| / max(||W_i||, eps) per unit: rows of a matrix, the whole of a vector, in float64."""
    grad, weight = grad.astype(np.float64), weight.astype(np.float64)
    if grad.ndim <= 1:
        return np.array([np.linalg.norm(grad) / max(np.linalg.norm(weight), eps)])
    return np.array([np.linalg.norm(g) / max(np.linalg.norm(w), eps) for g, w in zip(grad, weight)])


@given(weights_and_gradients(), st.floats(1e-3, 1.0), st.sampled_from([1e-3, 1e-2]))
def test_adaptive_clipping_bounds_every_unit_ratio(weights_and_grads, clip_factor, eps):
    grads, weights = weights_and_grads
    params = [parameter_with_grad(g.copy(), w) for g, w in zip(grads, weights)]
    adaptive_clip_grad_(params, clip_factor=clip_factor, eps=eps)
    for old, weight, p in zip(grads, weights, params):
        assert np.all(unit_ratios(p.grad, weight, eps) <= clip_factor * RELATIVE_SLACK)
        before = unit_ratios(old, weight, eps)
        under = before <= clip_factor
        rows_old = old.reshape(len(before), -1) if old.ndim > 1 else old.reshape(1, -1)
        rows_new = p.grad.reshape(len(before), -1) if old.ndim > 1 else p.grad.reshape(1, -1)
        # Units under the limit are untouched, bit for bit; the others only shrink.
        assert rows_new[under].tobytes() == rows_old[under].tobytes()
        for old_row, new_row in zip(rows_old[~under], rows_new[~under]):
            factor = np.linalg.norm(new_row.astype(np.float64)) / np.linalg.norm(old_row.astype(np.float64))
            assert 0 <= factor < 1
            np.testing.assert_allclose(new_row, old_row * factor, rtol=1e-5, atol=1e-30)


def test_unitwise_norm_is_per_row_for_matrices_and_whole_for_vectors():
    matrix = np.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(unitwise_norm(matrix).ravel(), [5.0, 1.0])
    assert unitwise_norm(np.array([3.0, 4.0])) == 5.0


@pytest.mark.parametrize("options", [{"clip_factor": 0.0}, {"clip_factor": -1.0}, {"eps": 0.0}])
def test_adaptive_clipping_refuses_non_positive_settings(options):
    with pytest.raises(ValueError, match="must be > 0"):
        adaptive_clip_grad_([parameter_with_grad(np.ones(3))], **options)


# ---------------------------------------------------------------- telemetry


def test_clip_stats_counts_every_call_and_every_fire():
    params = [parameter_with_grad(np.array([3.0, 4.0]))]
    with ClipStats() as clip_stats:
        for max_norm in (1.0, 10.0, 2.0):
            params[0].grad = np.array([3.0, 4.0])
            clip_grad_norm_(params, max_norm)
        clip_grad_value_(params, 10.0)
        adaptive_clip_grad_(params, clip_factor=1e-3)
    clip_grad_norm_(params, 1e-3)  # after the block: not counted
    assert clip_stats.fired == [True, False, True, False, True]
    assert clip_stats.thresholds == [1.0, 10.0, 2.0, 10.0, 1e-3]
    assert clip_stats.pre_clip_norms[:3] == pytest.approx([5.0, 5.0, 5.0])
    assert clip_stats.fire_rate == pytest.approx(3 / 5)


def stats_after(fires):
    params = [parameter_with_grad(np.ones(4))]
    with ClipStats() as clip_stats:
        for fire in fires:
            params[0].grad = np.ones(4)
            clip_grad_norm_(params, 0.5 if fire else 10.0)
    return clip_stats


def test_clipping_that_always_fires_is_noted():
    findings = stats_after([True] * MIN_CLIP_CALLS).findings()
    assert [(f.kind, f.severity) for f in findings] == [("clipping", "info")]  # a note, not a failure
    assert "fired on 100%" in findings[0].message
    assert findings[0].evidence["fire_rate"] == 1.0
    assert findings[0].evidence["threshold"] == 0.5
    assert findings[0].evidence["median_pre_clip_norm"] == pytest.approx(2.0)


def test_clipping_that_never_fires_is_noted():
    findings = stats_after([False] * MIN_CLIP_CALLS).findings()
    assert [(f.kind, f.severity) for f in findings] == [("clipping", "info")]
    assert "never fired" in findings[0].message


@pytest.mark.parametrize("fires", [
    [True] * (MIN_CLIP_CALLS - 1),                      # too few calls to call the rate
    [True, False] * MIN_CLIP_CALLS,                     # half the time: clipping doing its job
])
def test_clipping_in_between_or_too_rare_to_judge_is_silent(fires):
    assert stats_after(fires).findings() == []


def test_the_always_threshold_is_a_strict_fraction():
    calls = 100
    at_limit = int(ALWAYS_FIRES_FRACTION * calls)
    fired = np.array([1.0] * at_limit + [0.0] * (calls - at_limit))
    assert clipping_findings(fired, np.ones(calls), np.ones(calls)) == []
    fired[at_limit] = 1.0
    assert clipping_findings(fired, np.ones(calls), np.ones(calls))[0].kind == "clipping"


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40))
def test_clipping_findings_never_raise(values):
    values = np.array(values, dtype=float)
    for finding in clipping_findings(values, values, values):
        assert finding.kind == "clipping"
