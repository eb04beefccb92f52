"""Each optimizer's update rule against a reference written out here, line by line, from the
pseudo-code in PyTorch's documentation (torch.optim.SGD, Adam, AdamW, RMSprop, Adagrad).

For random parameters, gradients and hyperparameters (every flag combination), the parameter
after each of several steps must equal the reference in float64 to 1e-12, relative to the
size of the numbers involved (the largest |theta| before or after the step, at least 1).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop

# ----------------------------------------------------------------------------------------------
# references: the documented algorithms, one step per loop iteration, no in-place tricks
# ----------------------------------------------------------------------------------------------


def reference_sgd(theta, grads, lr, momentum, dampening, weight_decay, nesterov, maximize):
    trajectory, buffer = [], None
    for t, g in enumerate(grads, start=1):
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            buffer = g if t == 1 else momentum * buffer + (1 - dampening) * g
            g = g + momentum * buffer if nesterov else buffer
        theta = theta - lr * g
        trajectory.append(theta)
    return trajectory


def reference_adam(theta, grads, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    beta1, beta2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    trajectory = []
    for t, g in enumerate(grads, start=1):
        if maximize:
            g = -g
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        trajectory.append(theta)
    return trajectory


def reference_rmsprop(theta, grads, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    v = np.zeros_like(theta)
    g_ave = np.zeros_like(theta)
    buffer = np.zeros_like(theta)
    trajectory = []
    for g in grads:
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if momentum > 0:
            buffer = momentum * buffer + g / (np.sqrt(v_tilde) + eps)
            theta = theta - lr * buffer
        else:
            theta = theta - lr * g / (np.sqrt(v_tilde) + eps)
        trajectory.append(theta)
    return trajectory


def reference_adagrad(theta, grads, lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize):
    state_sum = np.full_like(theta, initial_accumulator_value)
    trajectory = []
    for t, g in enumerate(grads, start=1):
        if maximize:
            g = -g
        step_lr = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g**2
        theta = theta - step_lr * g / (np.sqrt(state_sum) + eps)
        trajectory.append(theta)
    return trajectory


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------

values = st.floats(-10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
learning_rates = st.floats(1e-4, 1.0)
zero_or = lambda strategy: st.one_of(st.just(0.0), strategy)  # noqa: E731  (zero is its own code path)


@st.composite
def problems(draw):
    """A starting parameter and 1 to 6 gradients of its shape."""
    shape = draw(st.sampled_from([(1,), (5,), (2, 3), (3, 1, 2)]))
    theta = draw(arrays(np.float64, shape, elements=values))
    steps = draw(st.integers(1, 6))
    grads = [draw(arrays(np.float64, shape, elements=values)) for _ in range(steps)]
    return theta, grads


def run_minigrad(optimizer_class, theta, grads, **options):
    """The parameter after each step of `optimizer_class`, fed the given gradients."""
    param = mg.tensor(theta, requires_grad=True)
    optimizer = optimizer_class([param], **options)
    trajectory = []
    for g in grads:
        param.grad = g.copy()
        optimizer.step()
        np.testing.assert_array_equal(param.grad, g, err_msg="step() changed the gradient")
        trajectory.append(param.data.copy())
    assert param.dtype == np.float64
    return trajectory, optimizer, param


def assert_same_trajectory(actual, expected, theta0):
    previous = theta0
    for step, (ours, reference) in enumerate(zip(actual, expected, strict=True), start=1):
        scale = max(1.0, np.abs(previous).max(), np.abs(reference).max())
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12 * scale, err_msg=f"step {step}")
        previous = reference


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------


@given(
    problems(), learning_rates, zero_or(st.floats(0.01, 0.99)), zero_or(st.floats(0.01, 0.9)),
    zero_or(st.floats(1e-4, 0.5)), st.booleans(), st.booleans(),
)
def test_sgd_follows_the_documented_algorithm(problem, lr, momentum, dampening, weight_decay, nesterov, maximize):
    theta, grads = problem
    if nesterov:  # Nesterov needs momentum and no dampening
        momentum, dampening = max(momentum, 0.5), 0.0
    options = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov, maximize=maximize)
    ours, optimizer, param = run_minigrad(SGD, theta, grads, **options)
    assert_same_trajectory(ours, reference_sgd(theta, grads, **options), theta)
    assert ("momentum_buffer" in optimizer.state.get(param, {})) == (momentum != 0)


betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999))
epsilons = st.floats(1e-10, 1e-3)


@given(problems(), learning_rates, betas, epsilons, zero_or(st.floats(1e-4, 0.5)), st.booleans(), st.booleans())
def test_adam_follows_the_documented_algorithm(problem, lr, betas, eps, weight_decay, amsgrad, maximize):
    theta, grads = problem
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    ours, optimizer, param = run_minigrad(Adam, theta, grads, **options)
    assert_same_trajectory(ours, reference_adam(theta, grads, decoupled=False, **options), theta)
    assert optimizer.state[param]["step"] == len(grads)
    assert ("max_exp_avg_sq" in optimizer.state[param]) == amsgrad


@given(problems(), learning_rates, betas, epsilons, st.floats(0.0, 0.5), st.booleans(), st.booleans())
def test_adamw_follows_the_documented_algorithm(problem, lr, betas, eps, weight_decay, amsgrad, maximize):
    theta, grads = problem
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    ours, _, _ = run_minigrad(AdamW, theta, grads, **options)
    assert_same_trajectory(ours, reference_adam(theta, grads, decoupled=True, **options), theta)


@given(
    problems(), learning_rates, st.floats(0.5, 0.999), st.floats(1e-10, 1e-3), zero_or(st.floats(1e-4, 0.5)),
    zero_or(st.floats(0.01, 0.99)), st.booleans(), st.booleans(),
)
def test_rmsprop_follows_the_documented_algorithm(problem, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    theta, grads = problem
    options = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                   centered=centered, maximize=maximize)
    ours, _, _ = run_minigrad(RMSprop, theta, grads, **options)
    assert_same_trajectory(ours, reference_rmsprop(theta, grads, **options), theta)


@given(
    problems(), learning_rates, zero_or(st.floats(1e-3, 1.0)), zero_or(st.floats(1e-4, 0.5)),
    zero_or(st.floats(1e-3, 1.0)), st.floats(1e-10, 1e-3), st.booleans(),
)
def test_adagrad_follows_the_documented_algorithm(problem, lr, lr_decay, weight_decay, initial_accumulator_value,
                                                  eps, maximize):
    theta, grads = problem
    options = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                   initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
    ours, _, _ = run_minigrad(Adagrad, theta, grads, **options)
    assert_same_trajectory(ours, reference_adagrad(theta, grads, **options), theta)


# ----------------------------------------------------------------------------------------------
# the laws the rules share
# ----------------------------------------------------------------------------------------------

ALL_OPTIMIZERS = [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (Adam, dict(lr=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.1)),
    (RMSprop, dict(lr=0.1, momentum=0.5, centered=True)),
    (Adagrad, dict(lr=0.1, lr_decay=0.1)),
]


@pytest.mark.parametrize("optimizer_class, options", ALL_OPTIMIZERS, ids=lambda value: getattr(value, "__name__", ""))
@given(problem=problems())
def test_maximize_equals_minimizing_the_negated_gradient(optimizer_class, options, problem):
    theta, grads = problem
    maximized, _, _ = run_minigrad(optimizer_class, theta, grads, maximize=True, **options)
    minimized, _, _ = run_minigrad(optimizer_class, theta, [-g for g in grads], **options)
    for ours, negated in zip(maximized, minimized):
        np.testing.assert_array_equal(ours, negated)


@pytest.mark.parametrize("optimizer_class, options", ALL_OPTIMIZERS, ids=lambda value: getattr(value, "__name__", ""))
def test_float32_parameters_stay_float32(optimizer_class, options):
    param = mg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    optimizer = optimizer_class([param], **options)
    for _ in range(3):
        param.grad = np.full((2, 3), 0.5, dtype=np.float32)
        optimizer.step()
    assert param.dtype == np.float32
    for name, value in optimizer.state[param].items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, name


@pytest.mark.parametrize("optimizer_class, options", ALL_OPTIMIZERS, ids=lambda value: getattr(value, "__name__", ""))
def test_groups_are_independent(optimizer_class, options):
    """Two groups with different learning rates move exactly as two separate optimizers."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(4), rng.standard_normal((2, 2))]
    grads = [[rng.standard_normal(4), rng.standard_normal((2, 2))] for _ in range(4)]
    together = [mg.tensor(array, requires_grad=True) for array in start]
    apart = [mg.tensor(array, requires_grad=True) for array in start]
    options = dict(options)
    lr = options.pop("lr")
    grouped = optimizer_class([{"params": [together[0]]}, {"params": [together[1]], "lr": lr / 10}], lr=lr, **options)
    separate = [optimizer_class([apart[0]], lr=lr, **options), optimizer_class([apart[1]], lr=lr / 10, **options)]
    for step_grads in grads:
        for param, other, g in zip(together, apart, step_grads):
            param.grad, other.grad = g.copy(), g.copy()
        grouped.step()
        for optimizer in separate:
            optimizer.step()
    for param, other in zip(together, apart):
        np.testing.assert_array_equal(param.data, other.data)
