"""nn.init: the distributions have the variances their formulas promise, uniform draws stay in
their bounds, orthogonal_ is orthogonal, and seeds reproduce weights.

Statistical checks allow 5 standard errors of the estimate for the sample size: for n draws
of X with E[X] = 0, mean(X^2) estimates Var(X) with standard error sqrt(Var(X^2) / n), where
Var(X^2) = 2 sigma^4 for a normal and 4 c^4 / 45 for a uniform on [-c, c].
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
from minigrad.nn import init

TOLERANCE_IN_STANDARD_ERRORS = 5


def assert_uniform(values: np.ndarray, bound: float) -> None:
    """Drawn from U(-bound, bound): inside the bounds, reaching near them, variance bound^2/3."""
    values = values.astype(np.float64).ravel()
    assert np.all(np.abs(values) <= bound * (1 + 1e-6))
    # Each draw falls inside (1 - 15/n) * bound with probability 1 - 15/n; all n do with
    # probability (1 - 15/n)^n < e^-15.
    assert np.abs(values).max() > bound * (1 - 15 / values.size)
    standard_error = math.sqrt(4 * bound**4 / 45 / values.size)
    assert abs(np.mean(values**2) - bound**2 / 3) < TOLERANCE_IN_STANDARD_ERRORS * standard_error


def assert_normal(values: np.ndarray, std: float, mean: float = 0.0) -> None:
    """Drawn from N(mean, std^2): sample mean and variance within their standard errors."""
    values = values.astype(np.float64).ravel() - mean
    assert abs(values.mean()) < TOLERANCE_IN_STANDARD_ERRORS * std / math.sqrt(values.size)
    standard_error = math.sqrt(2 * std**4 / values.size)
    assert abs(np.mean(values**2) - std**2) < TOLERANCE_IN_STANDARD_ERRORS * standard_error


weight_shapes = st.tuples(st.integers(20, 120), st.integers(20, 120)) | st.tuples(
    st.integers(8, 32), st.integers(4, 16), st.integers(1, 3), st.integers(1, 3)
)
seeds = st.integers(0, 2**32 - 1)


@given(shape=weight_shapes, gain=st.floats(0.1, 3.0), seed=seeds)
def test_xavier_variance_is_gain_squared_times_two_over_fan_sum(shape, gain, seed):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(mg.zeros(*shape))
    variance = gain**2 * 2 / (fan_in + fan_out)
    uniform = init.xavier_uniform_(mg.zeros(*shape), gain, generator=np.random.default_rng(seed))
    assert_uniform(uniform.data, math.sqrt(3 * variance))
    normal = init.xavier_normal_(mg.zeros(*shape), gain, generator=np.random.default_rng(seed))
    assert_normal(normal.data, math.sqrt(variance))


@given(
    shape=weight_shapes,
    mode=st.sampled_from(["fan_in", "fan_out"]),
    nonlinearity_and_slope=st.sampled_from([("relu", 0), ("leaky_relu", 0), ("leaky_relu", 0.2),
                                            ("leaky_relu", math.sqrt(5)), ("tanh", 0), ("linear", 0)]),
    seed=seeds,
)
def test_kaiming_variance_is_gain_squared_over_fan(shape, mode, nonlinearity_and_slope, seed):
    nonlinearity, slope = nonlinearity_and_slope
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(mg.zeros(*shape))
    fan = fan_in if mode == "fan_in" else fan_out
    variance = init.calculate_gain(nonlinearity, slope) ** 2 / fan
    uniform = init.kaiming_uniform_(mg.zeros(*shape), slope, mode, nonlinearity, generator=np.random.default_rng(seed))
    assert_uniform(uniform.data, math.sqrt(3 * variance))
    normal = init.kaiming_normal_(mg.zeros(*shape), slope, mode, nonlinearity, generator=np.random.default_rng(seed))
    assert_normal(normal.data, math.sqrt(variance))


@given(rows=st.integers(1, 40), cols=st.integers(1, 40), gain=st.floats(0.5, 2.0), seed=seeds)
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(rows, cols, gain, seed):
    weight = init.orthogonal_(mg.zeros(rows, cols), gain, generator=np.random.default_rng(seed)).data.astype(np.float64)
    gram = weight @ weight.T if rows <= cols else weight.T @ weight
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_flattens_trailing_dimensions_and_needs_two():
    weight = init.orthogonal_(mg.zeros(4, 3, 2, 2)).data.reshape(4, 12).astype(np.float64)
    np.testing.assert_allclose(weight @ weight.T, np.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(mg.zeros(5))


@given(bounds=st.tuples(st.floats(-3, 3), st.floats(-3, 3)).filter(lambda ab: abs(ab[0] - ab[1]) > 1e-3), seed=seeds)
def test_uniform_stays_within_its_bounds(bounds, seed):
    low, high = min(bounds), max(bounds)
    values = init.uniform_(mg.zeros(500), low, high, generator=np.random.default_rng(seed)).data
    assert np.all(values >= np.float32(low)) and np.all(values <= np.float32(high))


@given(mean=st.floats(-2, 2), std=st.floats(0.1, 3), seed=seeds)
def test_normal_has_the_requested_mean_and_std(mean, std, seed):
    values = init.normal_(mg.zeros(4000, dtype=np.float64), mean, std, generator=np.random.default_rng(seed)).data
    assert_normal(values, std, mean)


def truncated_normal_moments(mean, std, a, b):
    """Mean and variance of N(mean, std^2) restricted to [a, b] (the standard formulas with
    alpha, beta the standardized bounds, phi and Phi the normal pdf and cdf)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift**2
    return mean + std * shift, std**2 * variance


@given(mean=st.floats(-1, 1), std=st.floats(0.2, 2), width=st.floats(0.5, 3), seed=seeds)
def test_trunc_normal_stays_in_bounds_with_the_truncated_moments(mean, std, width, seed):
    a, b = mean - width * std, mean + 0.5 * width * std
    values = init.trunc_normal_(mg.zeros(4000, dtype=np.float64), mean, std, a, b,
                                generator=np.random.default_rng(seed)).data
    assert np.all((values >= a) & (values <= b))
    expected_mean, expected_variance = truncated_normal_moments(mean, std, a, b)
    standard_error = math.sqrt(expected_variance / values.size)
    assert abs(values.mean() - expected_mean) < TOLERANCE_IN_STANDARD_ERRORS * standard_error
    # A bounded variable's X^2 has variance at most (max X^2)^2; a loose but valid bound.
    loose_error = max(abs(a - expected_mean), abs(b - expected_mean)) ** 2 / math.sqrt(values.size)
    assert abs(values.var() - expected_variance) < TOLERANCE_IN_STANDARD_ERRORS * loose_error


def test_trunc_normal_refuses_bounds_it_cannot_sample():
    with pytest.raises(ValueError, match="closer to the mean"):
        init.trunc_normal_(mg.zeros(3), 0.0, 1.0, 10.0, 11.0)
    with pytest.raises(ValueError, match="smaller than"):
        init.trunc_normal_(mg.zeros(3), a=1.0, b=-1.0)


def test_constant_zeros_ones():
    np.testing.assert_array_equal(init.constant_(mg.zeros(2, 3), 0.25).data, np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.zeros_(mg.ones(4)).data, np.zeros(4))
    np.testing.assert_array_equal(init.ones_(mg.zeros(4)).data, np.ones(4))


def test_calculate_gain_table():
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid"]:
        assert init.calculate_gain(name) == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 1) == pytest.approx(1.0)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_fan_in_and_fan_out_count_the_receptive_field():
    assert init._calculate_fan_in_and_fan_out(mg.zeros(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(mg.zeros(8, 4, 3, 2)) == (24, 48)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(mg.zeros(5))
    with pytest.raises(ValueError, match="'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(mg.zeros(2, 2), mode="fan_avg")


def test_init_works_in_place_on_parameters_without_recording_a_graph():
    weight = nn.Parameter(mg.zeros(3, 4))
    version = weight._version
    for initializer in [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                        init.orthogonal_, init.normal_, init.uniform_, init.trunc_normal_, init.ones_, init.zeros_]:
        assert initializer(weight) is weight
        assert weight.requires_grad and weight.grad_fn is None and weight.dtype == np.float32
    assert weight._version > version
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.xavier_uniform_(np.zeros((3, 4)))


def test_the_same_seed_gives_the_same_weights():
    mg.manual_seed(7)
    first = nn.Linear(6, 5)
    mg.manual_seed(7)
    second = nn.Linear(6, 5)
    np.testing.assert_array_equal(first.weight.data, second.weight.data)
    np.testing.assert_array_equal(first.bias.data, second.bias.data)
    assert not np.array_equal(first.weight.data, nn.Linear(6, 5).weight.data)


def test_an_explicit_generator_leaves_the_default_one_alone():
    state = mg.random.default_generator().bit_generator.state
    a = init.kaiming_normal_(mg.zeros(4, 4), generator=np.random.default_rng(1))
    b = init.kaiming_normal_(mg.zeros(4, 4), generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a.data, b.data)
    assert mg.random.default_generator().bit_generator.state == state


@given(fan_in=st.integers(30, 200), fan_out=st.integers(30, 200), seed=seeds)
def test_linear_default_init_is_uniform_within_one_over_sqrt_fan_in(fan_in, fan_out, seed):
    mg.manual_seed(seed)
    layer = nn.Linear(fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    assert_uniform(layer.weight.data, bound)
    assert np.all(np.abs(layer.bias.data) <= bound)


def test_embedding_init_is_standard_normal():
    mg.manual_seed(0)
    assert_normal(nn.Embedding(200, 30).weight.data, 1.0)
