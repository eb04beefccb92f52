"""stats.py: every statistic the Recorder keeps equals a brute-force count or a direct float64
computation on random arrays, including the float32 edges (squares that overflow or underflow)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from diagnostics import stats

float_dtypes = st.sampled_from([np.float32, np.float64])


def finite_arrays(dtype=float_dtypes, shape=array_shapes(min_dims=1, max_dims=3, max_side=6), **float_options):
    return dtype.flatmap(lambda d: arrays(d, shape, elements=st.floats(
        width=np.finfo(d).bits, allow_nan=False, allow_infinity=False, **float_options)))


def direct_norm(array) -> float:
    """sqrt(sum x^2) in Python floats, scaled by the largest |x| so nothing overflows."""
    values = [abs(float(v)) for v in np.ravel(array)]
    largest = max(values, default=0.0)
    if largest == 0.0:
        return 0.0
    return largest * math.sqrt(sum((v / largest) ** 2 for v in values))


# ---------------------------------------------------------------- norms


@given(finite_arrays())
def test_l2_norm_equals_the_direct_norm(array):
    assert stats.l2_norm(array) == pytest.approx(direct_norm(array), rel=1e-5, abs=0.0)


@given(st.floats(1e20, 3e38), st.integers(1, 40))
def test_l2_norm_survives_float32_squares_that_overflow(value, size):
    array = np.full(size, value, dtype=np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(np.dot(array, array))  # the naive sum of squares overflows
    norm = stats.l2_norm(array)
    assert np.isfinite(norm)
    assert norm == pytest.approx(float(np.float32(value)) * math.sqrt(size), rel=1e-6)


@given(st.floats(1e-44, 1e-20), st.integers(1, 40))
def test_l2_norm_keeps_float32_squares_that_underflow(value, size):
    array = np.full(size, value, dtype=np.float32)
    expected = float(array[0]) * math.sqrt(size)
    assert stats.l2_norm(array) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_l2_norm_is_non_finite_when_an_entry_is(bad):
    array = np.array([1.0, bad, 1e30], dtype=np.float32)
    assert not np.isfinite(stats.l2_norm(array))


def test_l2_norm_of_nothing_and_of_integers():
    assert stats.l2_norm(np.zeros(0)) == 0.0
    assert stats.l2_norm(np.zeros((3, 0), np.float32)) == 0.0
    assert stats.l2_norm(np.array([3, 4])) == 5.0


# ---------------------------------------------------------------- gradient summary


@st.composite
def gradients_with_odd_entries(draw):
    """Gradients with exact zeros, and sometimes NaN and +-Inf, at random places."""
    dtype = draw(float_dtypes)
    values = draw(finite_arrays(dtype=st.just(dtype), min_value=-1e3, max_value=1e3))
    flat = values.reshape(-1)
    for special in (0.0, np.nan, np.inf, -np.inf):
        count = draw(st.integers(0, flat.size if special == 0.0 else 2))
        flat[draw(st.permutations(range(flat.size)))[:count]] = special
    return values


@given(gradients_with_odd_entries())
def test_gradient_summary_equals_brute_force_counts(grad):
    summary = stats.gradient_summary(grad)
    entries = [float(v) for v in grad.reshape(-1)]
    nonfinite = sum(1 for v in entries if not math.isfinite(v))
    assert summary["nonfinite"] == nonfinite
    assert summary["zero_frac"] == pytest.approx(sum(1 for v in entries if v == 0.0) / len(entries), abs=1e-12)
    if nonfinite:
        assert not math.isfinite(summary["norm"])
        return
    assert summary["norm"] == pytest.approx(direct_norm(grad), rel=1e-5)
    assert summary["mean_abs"] == pytest.approx(sum(abs(v) for v in entries) / len(entries), rel=1e-9)
    assert summary["max_abs"] == max(abs(v) for v in entries)


def test_gradient_summary_of_an_empty_gradient_is_zeros():
    assert stats.gradient_summary(np.zeros((0, 4))) == {
        "norm": 0.0, "mean_abs": 0.0, "max_abs": 0.0, "nonfinite": 0.0, "zero_frac": 0.0}


@given(gradients_with_odd_entries())
def test_zero_fraction_equals_a_brute_force_count(array):
    entries = array.reshape(-1).tolist()
    assert stats.zero_fraction(array) == pytest.approx(entries.count(0.0) / len(entries), abs=1e-12)


@given(finite_arrays(min_value=-1e6, max_value=1e6))
def test_mean_and_std_match_float64(array):
    mean, std = stats.mean_and_std(array)
    as_float64 = array.astype(np.float64)
    assert mean == pytest.approx(as_float64.mean(), rel=1e-9, abs=1e-9)
    assert std == pytest.approx(as_float64.std(), rel=1e-6, abs=1e-6)


# ---------------------------------------------------------------- update ratio


@given(finite_arrays(min_value=-1e3, max_value=1e3), st.floats(-0.1, 0.1), st.integers(0, 2**32 - 1))
def test_update_to_weight_ratio_is_the_relative_step(old, step_size, seed):
    rng = np.random.default_rng(seed)
    new = (old + step_size * rng.standard_normal(old.shape)).astype(old.dtype)
    old64, new64 = old.astype(np.float64), new.astype(np.float64)
    if not old64.any():
        assert math.isnan(stats.update_to_weight_ratio(new, old))
        return
    expected = direct_norm(new64 - old64) / direct_norm(old64)
    assert stats.update_to_weight_ratio(new, old) == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_update_ratio_is_nan_for_a_zero_weight_and_zero_for_no_step():
    assert math.isnan(stats.update_to_weight_ratio(np.ones(3), np.zeros(3)))
    assert stats.update_to_weight_ratio(np.full(3, 2.0), np.full(3, 2.0)) == 0.0


# ---------------------------------------------------------------- activation statistics

activation_shapes = st.sampled_from([(7,), (5, 4), (3, 4, 6), (2, 3, 2, 2)])


def activations(shape_strategy=activation_shapes):
    return shape_strategy.flatmap(lambda shape: arrays(np.float32, shape, elements=st.one_of(
        st.just(0.0), st.floats(-3, 3, width=32))))


def per_unit(array):
    """Brute force: {unit: values}, units on axis 1 (axis 0 for a single sample)."""
    if array.ndim == 1:
        return {unit: [float(array[unit])] for unit in range(array.shape[0])}
    units = {}
    for index in np.ndindex(array.shape):
        units.setdefault(index[1], []).append(float(array[index]))
    return units


@given(activations())
def test_unit_activity_counts_positive_pre_activations_per_unit(pre_activation):
    expected = [sum(1 for v in values if v > 0) for _, values in sorted(per_unit(pre_activation).items())]
    assert stats.unit_activity(pre_activation).tolist() == expected


@given(activations())
def test_unit_max_is_the_largest_pre_activation_per_unit(pre_activation):
    expected = [max(values) for _, values in sorted(per_unit(pre_activation).items())]
    assert stats.unit_max(pre_activation).tolist() == expected


@given(activations(), st.sampled_from(["tanh", "sigmoid"]))
def test_saturation_fractions_equal_a_brute_force_count(pre_activation, kind):
    scale = 4.0  # pushes part of the outputs past the soft level (|tanh| > 0.99 near |x| > 2.65)
    x = pre_activation.astype(np.float64) * scale
    output = np.tanh(x) if kind == "tanh" else 1 / (1 + np.exp(-x))
    derivatives = [1 - y * y if kind == "tanh" else y * (1 - y) for y in output.reshape(-1).tolist()]
    soft, hard = stats.saturation_fractions(kind, output)
    assert soft == pytest.approx(sum(d < 0.02 for d in derivatives) / len(derivatives), abs=1e-12)
    assert hard == pytest.approx(sum(d < 1e-7 for d in derivatives) / len(derivatives), abs=1e-12)


def test_saturation_levels_are_the_documented_ones():
    # |tanh x| > 0.99 <=> 1 - tanh^2 < 0.0199: the soft level sits at Glorot & Bengio's 0.99.
    assert stats.saturation_fractions("tanh", np.array([0.9901, 0.9899]))[0] == 0.5
    assert stats.saturation_fractions("sigmoid", np.array([1 - 1e-8, 0.5])) == (0.5, 0.5)


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "gelu", None])
def test_non_saturating_activations_report_no_saturation(kind):
    assert stats.saturation_fractions(kind, np.array([100.0, -100.0])) == (0.0, 0.0)


# ---------------------------------------------------------------- persistence


@given(st.lists(st.booleans(), max_size=30), st.integers(-2, 10))
def test_first_sustained_finds_the_first_long_enough_run(condition, length):
    needed = max(1, min(length, len(condition)))
    expected = next((start for start in range(len(condition) - needed + 1)
                     if all(condition[start:start + needed])), None)
    assert stats.first_sustained(np.array(condition, dtype=bool), length) == expected
