"""Every layer and loss: gradients checked against finite differences in float64 (with respect
to inputs and parameters), and each layer's defining behaviour."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn

F64 = np.float64


def away_from_zero(*shape, seed=0, low=0.1, high=2.0):
    """float64 values with |x| in [low, high] and random signs: no input sits on a kink
    (ReLU's, LeakyReLU's, ELU's at 0), where finite differences straddle two slopes."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)
    return mg.tensor(values, requires_grad=True)


def randn64(*shape, seed=0, requires_grad=True):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


def module_gradcheck(module, *inputs):
    """gradcheck of module(*inputs) with respect to the inputs that require grad and every
    parameter. The parameters are passed to gradcheck as inputs; each call puts the tensors
    gradcheck hands over into the module in place of its parameters (for the analytic pass
    they are the parameters themselves, for the numerical pass shifted copies)."""
    named = list(module.named_parameters())

    def owner_and_leaf(name):
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            owner = owner._modules[part]
        return owner, leaf

    def run(*tensors):
        given_inputs, values = tensors[:len(inputs)], tensors[len(inputs):]
        originals = []
        for (name, _), value in zip(named, values):
            owner, leaf = owner_and_leaf(name)
            originals.append((owner, leaf, owner._parameters[leaf]))
            owner._parameters[leaf] = value
        try:
            return module(*given_inputs)
        finally:
            for owner, leaf, original in originals:
                owner._parameters[leaf] = original

    assert mg.gradcheck(run, tuple(inputs) + tuple(param for _, param in named))


# ----------------------------------------------------------------------------------------------
# gradchecks: layers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: nn.Linear(3, 2, dtype=F64), (4, 3)),
    (lambda: nn.Linear(3, 2, bias=False, dtype=F64), (4, 3)),
    (lambda: nn.Linear(3, 2, dtype=F64), (2, 2, 3)),
    (lambda: nn.ReLU(), (3, 4)),
    (lambda: nn.LeakyReLU(0.2), (3, 4)),
    (lambda: nn.PReLU(dtype=F64), (3, 4)),
    (lambda: nn.PReLU(3, init=0.1, dtype=F64), (2, 3, 2)),
    (lambda: nn.ELU(0.7), (3, 4)),
    (lambda: nn.GELU(), (3, 4)),
    (lambda: nn.GELU("tanh"), (3, 4)),
    (lambda: nn.Tanh(), (3, 4)),
    (lambda: nn.Sigmoid(), (3, 4)),
    (lambda: nn.Softplus(), (3, 4)),
    (lambda: nn.Softmax(dim=1), (3, 4)),
    (lambda: nn.LogSoftmax(dim=0), (3, 4)),
    (lambda: nn.Flatten(), (2, 3, 2)),
    (lambda: nn.Identity(), (2, 3)),
    (lambda: nn.LayerNorm(4, dtype=F64), (3, 4)),
    (lambda: nn.LayerNorm((2, 3), dtype=F64), (2, 2, 3)),
    (lambda: nn.LayerNorm(4, elementwise_affine=False), (3, 4)),
    (lambda: nn.Residual(nn.Linear(3, 3, dtype=F64)), (4, 3)),
    (lambda: nn.Sequential(nn.Linear(3, 4, dtype=F64), nn.Tanh(), nn.Linear(4, 2, dtype=F64)), (5, 3)),
], ids=lambda value: "" if callable(value) else str(value))
def test_layer_gradients(make_layer, shape):
    module_gradcheck(make_layer(), away_from_zero(*shape))


def test_softplus_gradients_on_both_sides_of_its_threshold():
    x = mg.tensor([-2.0, -0.3, 0.4, 1.2, 2.5, 4.0], dtype=F64, requires_grad=True)  # threshold at x = 1.5
    module_gradcheck(nn.Softplus(beta=2.0, threshold=3.0), x)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_gradients_in_training_mode(shape, affine):
    layer = nn.BatchNorm1d(3, affine=affine, dtype=F64)
    if affine:
        with mg.no_grad():
            layer.weight.copy_(np.array([0.5, 1.5, -2.0]))
            layer.bias.copy_(np.array([0.1, -0.3, 0.7]))
    module_gradcheck(layer, randn64(*shape))


def test_batchnorm_gradients_in_eval_mode():
    layer = nn.BatchNorm1d(3, dtype=F64)
    for seed in range(3):
        layer(randn64(5, 3, seed=seed, requires_grad=False))
    module_gradcheck(layer.eval(), randn64(4, 3))


def test_embedding_gradients_with_respect_to_the_table():
    # Without padding_idx: the padding row's output does depend on it, but by design gets no
    # gradient (tested below), which finite differences would rightly flag.
    layer = nn.Embedding(5, 3, dtype=F64)
    module_gradcheck(layer, mg.tensor([[0, 1, 4], [4, 2, 1]]))


def test_dropout_gradients_with_a_fixed_mask():
    layer = nn.Dropout(0.4)

    def with_the_same_mask(x):
        mg.manual_seed(0)
        return layer(x)

    assert mg.gradcheck(with_the_same_mask, (randn64(4, 5),))


# ----------------------------------------------------------------------------------------------
# gradchecks: losses
# ----------------------------------------------------------------------------------------------


LABELS = mg.tensor([0, 2, 1, 2])
LABELS_WITH_IGNORED = mg.tensor([0, -100, 1, 2])
CLASS_WEIGHTS = mg.tensor(np.array([0.2, 1.0, 3.0]))


@pytest.mark.parametrize("loss, shape, target", [
    (lambda: nn.CrossEntropyLoss(), (4, 3), LABELS),
    (lambda: nn.CrossEntropyLoss(reduction="sum"), (4, 3), LABELS),
    (lambda: nn.CrossEntropyLoss(reduction="none"), (4, 3), LABELS),
    (lambda: nn.CrossEntropyLoss(CLASS_WEIGHTS), (4, 3), LABELS),
    (lambda: nn.CrossEntropyLoss(ignore_index=-100), (4, 3), LABELS_WITH_IGNORED),
    (lambda: nn.CrossEntropyLoss(CLASS_WEIGHTS, label_smoothing=0.1), (4, 3), LABELS),
    (lambda: nn.CrossEntropyLoss(), (2, 3, 2), mg.tensor([[0, 2], [1, 1]])),
    (lambda: nn.CrossEntropyLoss(), (4, 3), mg.tensor(np.full((4, 3), 1 / 3))),
    (lambda: nn.NLLLoss(), (4, 3), LABELS),
    (lambda: nn.NLLLoss(CLASS_WEIGHTS, reduction="sum"), (4, 3), LABELS_WITH_IGNORED),
    (lambda: nn.BCEWithLogitsLoss(), (4, 3), mg.tensor(np.random.default_rng(1).uniform(size=(4, 3)))),
    (lambda: nn.BCEWithLogitsLoss(weight=mg.tensor(np.array([1.0, 0.5, 2.0])), pos_weight=mg.tensor(np.array([3.0, 1.0, 0.5]))),
     (4, 3), mg.tensor(np.random.default_rng(2).uniform(size=(4, 3)))),
    (lambda: nn.MSELoss(), (4, 3), randn64(4, 3, seed=3, requires_grad=False)),
    (lambda: nn.MSELoss(reduction="none"), (4, 3), randn64(4, 3, seed=3, requires_grad=False)),
], ids=lambda value: "" if callable(value) or isinstance(value, mg.Tensor) else str(value))
def test_loss_gradients(loss, shape, target):
    module_gradcheck(loss(), randn64(*shape), target)


def test_mse_loss_gradient_with_respect_to_the_target_too():
    module_gradcheck(nn.MSELoss(), randn64(3, 2, seed=0), randn64(3, 2, seed=1))


# ----------------------------------------------------------------------------------------------
# BatchNorm1d
# ----------------------------------------------------------------------------------------------


@given(
    batch=st.integers(2, 8), channels=st.integers(1, 4), length=st.sampled_from([None, 1, 3]),
    scale=st.floats(0.1, 100), seed=st.integers(0, 2**32 - 1),
)
def test_batchnorm_training_output_has_zero_mean_and_unit_biased_variance_per_channel(batch, channels, length, scale, seed):
    shape = (batch, channels) if length is None else (batch, channels, length)
    values = scale * np.random.default_rng(seed).standard_normal(shape) + 3.0
    layer = nn.BatchNorm1d(channels, eps=0.0, dtype=F64)
    out = layer(mg.tensor(values)).data
    dims = (0,) if length is None else (0, 2)
    np.testing.assert_allclose(out.mean(axis=dims), 0, atol=1e-9)
    spread = values.var(axis=dims) > 1e-12 * scale**2
    np.testing.assert_allclose(out.var(axis=dims)[spread], 1, rtol=1e-9)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batchnorm_running_statistics_follow_the_momentum_rule(momentum, shape):
    layer = nn.BatchNorm1d(3, momentum=momentum, dtype=F64)
    running_mean, running_var = np.zeros(3), np.ones(3)
    dims = (0,) if len(shape) == 2 else (0, 2)
    for step in range(1, 5):
        batch = np.random.default_rng(step).standard_normal(shape) * step + step
        layer(mg.tensor(batch))
        factor = 1 / step if momentum is None else momentum
        running_mean = (1 - factor) * running_mean + factor * batch.mean(axis=dims)
        running_var = (1 - factor) * running_var + factor * batch.var(axis=dims, ddof=1)
        np.testing.assert_allclose(layer.running_mean.data, running_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var.data, running_var, rtol=1e-12)
        assert layer.num_batches_tracked.item() == step


def test_batchnorm_cumulative_average_is_the_mean_of_the_batch_statistics():
    # momentum=None: factor 1/k at step k, so step 1 replaces the initial values and after n
    # steps each running statistic is the plain mean of the n batch statistics.
    layer = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    batches = [np.random.default_rng(seed).standard_normal((5, 2)) + seed for seed in range(6)]
    for batch in batches:
        layer(mg.tensor(batch))
    np.testing.assert_allclose(layer.running_mean.data, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.data, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


def test_batchnorm_eval_uses_the_running_statistics_and_does_not_update_them():
    layer = nn.BatchNorm1d(3, dtype=F64)
    for seed in range(3):
        layer(randn64(6, 3, seed=seed, requires_grad=False))
    with mg.no_grad():
        layer.weight.copy_(np.array([1.0, 2.0, 3.0]))
        layer.bias.copy_(np.array([0.0, -1.0, 1.0]))
    state = {name: tensor.data.copy() for name, tensor in layer.state_dict().items()}
    x = randn64(4, 3, seed=9, requires_grad=False).data
    out = layer.eval()(mg.tensor(x)).data
    expected = (x - state["running_mean"]) / np.sqrt(state["running_var"] + layer.eps) * state["weight"] + state["bias"]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    for name, tensor in layer.state_dict().items():
        np.testing.assert_array_equal(tensor.data, state[name])
    single = layer(mg.tensor(x[:1]))
    assert single.shape == (1, 3)


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval_too():
    layer = nn.BatchNorm1d(3, track_running_stats=False, dtype=F64)
    assert [name for name, _ in layer.named_buffers()] == []
    x = randn64(5, 3, requires_grad=False)
    np.testing.assert_array_equal(layer.eval()(x).data, layer.train()(x).data)


def test_batchnorm_refuses_bad_inputs():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(mg.randn(1, 3))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\) or \(N, 3, L\), got \(4, 2\)"):
        layer(mg.randn(4, 2))
    assert layer(mg.randn(1, 3, 4)).shape == (1, 3, 4)


# ----------------------------------------------------------------------------------------------
# LayerNorm, Embedding, Dropout, PReLU, Flatten, losses
# ----------------------------------------------------------------------------------------------


def test_layernorm_normalizes_each_example_over_the_last_dimensions():
    x = randn64(3, 2, 5, requires_grad=False) * 4 + 2
    out = nn.LayerNorm((2, 5), eps=0.0, dtype=F64)(x).data
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(1, 2)), 1, rtol=1e-12)
    with pytest.raises(ValueError, match=r"last dimensions of the input must be \(2, 5\)"):
        nn.LayerNorm((2, 5))(mg.randn(5, 2))
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []


def test_embedding_looks_up_rows_and_sums_the_gradient_of_repeated_indices():
    layer = nn.Embedding(4, 2, dtype=F64)
    indices = mg.tensor([[3, 0], [3, 3]])
    out = layer(indices)
    np.testing.assert_array_equal(out.data, layer.weight.data[indices.data])
    out.backward(mg.tensor(np.arange(8.0).reshape(2, 2, 2)))
    expected = np.zeros((4, 2))
    expected[0] = [2, 3]
    expected[3] = [0, 1] + np.array([4, 5]) + np.array([6, 7])
    np.testing.assert_array_equal(layer.weight.grad, expected)


def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient():
    layer = nn.Embedding(5, 3, padding_idx=2)
    assert not np.any(layer.weight.data[2]) and np.all(layer.weight.data[[0, 1, 3, 4]] != 0)
    with mg.no_grad():
        layer.weight.data[2] = 7.0  # whatever the row holds is returned, as in PyTorch
    out = layer(mg.tensor([2, 0, 2]))
    np.testing.assert_array_equal(out.data[0], [7.0, 7.0, 7.0])
    out.sum().backward()
    assert not np.any(layer.weight.grad[2]) and np.all(layer.weight.grad[0] == 1)


def test_embedding_refuses_bad_indices():
    layer = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 4\)"):
        layer(mg.tensor([1, 4]))
    with pytest.raises(TypeError, match="indices must be integers"):
        layer(mg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_dropout_zeroes_a_fraction_p_and_scales_survivors_by_one_over_one_minus_p(p, seed):
    layer = nn.Dropout(p)
    mg.manual_seed(seed)
    x = mg.ones(4000)
    out = layer(x).data
    dropped = out == 0
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / x.size)
    np.testing.assert_allclose(out[~dropped], 1 / (1 - p), rtol=1e-6)
    assert layer.eval()(x) is x


def test_dropout_is_reproducible_under_a_seed_and_checks_p():
    layer = nn.Dropout(0.5)
    mg.manual_seed(3)
    first = layer(mg.ones(50)).data
    mg.manual_seed(3)
    np.testing.assert_array_equal(layer(mg.ones(50)).data, first)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)


def test_prelu_slope_gradient_is_the_sum_of_the_negative_inputs():
    layer = nn.PReLU(dtype=F64)
    x = mg.tensor(np.array([-2.0, -0.5, 1.0, 3.0]))
    out = layer(x)
    np.testing.assert_array_equal(out.data, [-0.5, -0.125, 1.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad, [-2.5])
    with pytest.raises(ValueError, match="3 slopes need an input with 3 channels"):
        nn.PReLU(3)(mg.randn(4, 2))


def test_flatten_and_identity():
    assert nn.Flatten()(mg.zeros(2, 3, 4)).shape == (2, 12)
    assert nn.Flatten(0, 1)(mg.zeros(2, 3, 4)).shape == (6, 4)
    x = mg.zeros(2)
    assert nn.Identity(54, unused=True)(x) is x


def test_gelu_checks_its_approximation():
    with pytest.raises(ValueError, match="'none' or 'tanh'"):
        nn.GELU("fast")


def test_loss_modules_validate_options_and_keep_weights_as_buffers():
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="average")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None, None, -1)  # PyTorch's deprecated positional slots are not accepted
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=2.0)
    assert list(nn.CrossEntropyLoss(CLASS_WEIGHTS).state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=mg.ones(3)).state_dict()) == ["pos_weight"]
    assert list(nn.NLLLoss().state_dict()) == []
