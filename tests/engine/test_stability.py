"""Numerical stability is part of correctness: for inputs of magnitude 1e4, where e^x overflows
(float64 overflows past e^709, float32 past e^88), log_softmax, cross_entropy, logsumexp,
softplus, sigmoid and BCE-with-logits give finite values and finite gradients, equal to the
exact limits. Each is checked in float32 and float64.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F

BIG = 1e4
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])


def value_and_gradient(fn, array, upstream=None):
    """fn(x) and d sum(fn(x) * upstream) / dx, as arrays."""
    x = mg.Tensor(array, requires_grad=True)
    out = fn(x)
    out.backward(mg.Tensor(np.ones(out.shape, dtype=out.dtype) if upstream is None else upstream))
    return out.data, x.grad


def assert_finite(*arrays):
    for array in arrays:
        assert np.isfinite(array).all(), f"non-finite values: {array}"


# Exact comparisons below are deliberate: at |x| = 1e4 every correction term is e^-1e4, which
# is 0 in both float32 and float64, so the limits are the exact answers in floating point.


@DTYPES
def test_log_softmax_of_huge_logits_is_exact(dtype):
    value, gradient = value_and_gradient(F.log_softmax, np.array([BIG, 0.0], dtype=dtype),
                                         upstream=np.array([1.0, 0.0], dtype=dtype))
    np.testing.assert_array_equal(value, [0.0, -BIG])
    # d log_softmax_0 / dx = onehot_0 - softmax(x) = [1 - 1, 0 - 0]
    np.testing.assert_array_equal(gradient, [0.0, 0.0])
    value, gradient = value_and_gradient(F.log_softmax, np.array([-BIG, BIG, BIG], dtype=dtype))
    np.testing.assert_allclose(value, [-2 * BIG - math.log(2), -math.log(2), -math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(gradient, [1.0, -0.5, -0.5], rtol=1e-6)  # 1 - 3 softmax(x)


@DTYPES
def test_softmax_of_huge_logits_is_exact(dtype):
    value, gradient = value_and_gradient(F.softmax, np.array([BIG, -BIG, 0.0], dtype=dtype))
    np.testing.assert_array_equal(value, [1.0, 0.0, 0.0])
    assert_finite(gradient)


@DTYPES
def test_cross_entropy_of_huge_logits_is_exact(dtype):
    logits = np.array([[BIG, -BIG, 0.0], [BIG, -BIG, 0.0]], dtype=dtype)
    loss_right, gradient_right = value_and_gradient(lambda x: F.cross_entropy(x, np.array([0, 0])), logits)
    loss_wrong, gradient_wrong = value_and_gradient(lambda x: F.cross_entropy(x, np.array([1, 1])), logits)
    assert loss_right == 0.0
    assert loss_wrong == 2 * BIG  # -log_softmax = -(-1e4 - 1e4)
    # d loss / d logits = (softmax - onehot) / N
    np.testing.assert_array_equal(gradient_right, np.zeros((2, 3)))
    np.testing.assert_array_equal(gradient_wrong, [[0.5, -0.5, 0.0], [0.5, -0.5, 0.0]])
    assert loss_wrong.dtype == dtype and gradient_wrong.dtype == dtype


@DTYPES
def test_cross_entropy_with_probabilities_and_smoothing_of_huge_logits(dtype):
    logits = np.array([[BIG, -BIG]], dtype=dtype)
    target = np.array([[0.0, 1.0]], dtype=dtype)
    loss, gradient = value_and_gradient(lambda x: F.cross_entropy(x, target, label_smoothing=0.5), logits)
    # target becomes [0.25, 0.75]; -(0.25 * 0 + 0.75 * (-2e4)) = 1.5e4
    assert loss == 1.5 * BIG
    np.testing.assert_array_equal(gradient, [[0.75, -0.75]])


@DTYPES
def test_logsumexp_of_huge_values_is_exact(dtype):
    value, gradient = value_and_gradient(F.logsumexp, np.array([BIG, BIG], dtype=dtype))
    assert value == pytest.approx(BIG + math.log(2), rel=1e-7)
    np.testing.assert_allclose(gradient, [0.5, 0.5], rtol=1e-6)
    value, gradient = value_and_gradient(F.logsumexp, np.array([-BIG, -BIG, -BIG], dtype=dtype))
    assert value == pytest.approx(-BIG + math.log(3), rel=1e-7)
    np.testing.assert_allclose(gradient, [1 / 3] * 3, rtol=1e-6)
    value, gradient = value_and_gradient(lambda x: F.logsumexp(x, dim=1), np.array([[BIG, -BIG]], dtype=dtype))
    np.testing.assert_array_equal(value, [BIG])
    np.testing.assert_array_equal(gradient, [[1.0, 0.0]])


@DTYPES
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_softplus_of_huge_values_is_exact(dtype, beta):
    value, gradient = value_and_gradient(lambda x: F.softplus(x, beta=beta), np.array([BIG, -BIG], dtype=dtype))
    np.testing.assert_array_equal(value, [BIG, 0.0])
    np.testing.assert_array_equal(gradient, [1.0, 0.0])
    # With a threshold too high to ever switch to the identity, the smooth formula alone holds.
    value, gradient = value_and_gradient(lambda x: F.softplus(x, beta=beta, threshold=1e30),
                                         np.array([BIG, -BIG], dtype=dtype))
    np.testing.assert_array_equal(value, [BIG, 0.0])
    np.testing.assert_array_equal(gradient, [1.0, 0.0])


@DTYPES
def test_sigmoid_of_huge_values_is_exact(dtype):
    value, gradient = value_and_gradient(F.sigmoid, np.array([BIG, -BIG, 0.0], dtype=dtype))
    np.testing.assert_array_equal(value, [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(gradient, [0.0, 0.0, 0.25])
    assert value.dtype == dtype


@DTYPES
def test_bce_with_logits_of_huge_logits_is_exact(dtype):
    logits = np.array([BIG, -BIG, BIG, -BIG], dtype=dtype)
    target = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    losses, gradient = value_and_gradient(
        lambda x: F.binary_cross_entropy_with_logits(x, target, reduction="none"), logits)
    np.testing.assert_array_equal(losses, [BIG, BIG, 0.0, 0.0])
    np.testing.assert_array_equal(gradient, [1.0, -1.0, 0.0, 0.0])  # sigmoid(x) - y
    pos_weight = np.array([3.0, 3.0, 3.0, 3.0], dtype=dtype)
    losses, gradient = value_and_gradient(
        lambda x: F.binary_cross_entropy_with_logits(x, target, pos_weight=pos_weight, reduction="none"), logits)
    np.testing.assert_array_equal(losses, [BIG, 3 * BIG, 0.0, 0.0])
    np.testing.assert_array_equal(gradient, [1.0, -3.0, 0.0, 0.0])


STABLE_ACTIVATIONS = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "gelu": F.gelu,
    "gelu tanh": lambda x: F.gelu(x, approximate="tanh"),
    "erf": F.erf,
}


@DTYPES
@pytest.mark.parametrize("name", list(STABLE_ACTIVATIONS))
def test_activations_are_finite_far_out(name, dtype):
    value, gradient = value_and_gradient(STABLE_ACTIVATIONS[name], np.array([-BIG, -50.0, 50.0, BIG], dtype=dtype))
    assert_finite(value, gradient)


# ----------------------------------------------------------------------------------------------
# the laws that hold for any logits, however large
# ----------------------------------------------------------------------------------------------

HUGE_LOGITS = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                             elements=st.floats(-BIG, BIG, width=32)))


@given(logits=HUGE_LOGITS)
def test_log_softmax_and_logsumexp_laws_for_huge_logits(logits):
    """max x <= logsumexp x <= max x + ln n;  log_softmax <= 0 with its exponentials summing to
    1 (up to rounding: log_softmax values near 0 carry an absolute error of about 1e4 * eps);
    values and gradients finite."""
    lse, lse_gradient = value_and_gradient(lambda x: F.logsumexp(x, dim=-1), logits)
    log_probs, log_softmax_gradient = value_and_gradient(lambda x: F.log_softmax(x, dim=-1), logits)
    assert_finite(lse, lse_gradient, log_probs, log_softmax_gradient)
    largest = logits.max(axis=-1).astype(np.float64)
    slack = BIG * np.finfo(logits.dtype).eps * 4
    assert (lse >= largest - slack).all() and (lse <= largest + math.log(logits.shape[-1]) + slack).all()
    assert (log_probs <= slack).all()
    total_probability = np.exp(log_probs.astype(np.float64)).sum(axis=-1)
    np.testing.assert_allclose(total_probability, 1.0, rtol=0, atol=logits.shape[-1] * slack)
    np.testing.assert_allclose(lse_gradient.sum(axis=-1), 1.0, rtol=1e-5)  # d lse / dx = softmax


@given(logits=HUGE_LOGITS, data=st.data())
def test_losses_are_finite_for_huge_logits(logits, data):
    rows = logits.reshape(-1, logits.shape[-1])
    classes = data.draw(hnp.arrays(np.int64, rows.shape[:1], elements=st.integers(0, rows.shape[1] - 1)))
    loss, gradient = value_and_gradient(lambda x: F.cross_entropy(x, classes), rows)
    assert_finite(loss, gradient)
    assert loss >= 0
    targets = data.draw(hnp.arrays(logits.dtype, logits.shape, elements=st.sampled_from([0.0, 0.5, 1.0])))
    loss, gradient = value_and_gradient(lambda x: F.binary_cross_entropy_with_logits(x, targets), logits)
    assert_finite(loss, gradient)
    assert loss >= 0
    for fn in (F.sigmoid, F.softplus):
        value, gradient = value_and_gradient(fn, logits)
        assert_finite(value, gradient)
        assert (value >= 0).all()
