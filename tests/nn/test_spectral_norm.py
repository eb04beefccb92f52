"""Spectral normalization (as torch.nn.utils.spectral_norm): power iteration in training mode
converges to the largest singular value, so the normalized weight has spectral norm 1; eval mode
leaves u and v alone; the gradient through W / sigma(W) passes gradcheck and matches PyTorch's;
the state dict is PyTorch's; remove_spectral_norm gives a plain weight back; a model using it trains."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
from minigrad import optim
from minigrad.nn.utils import spectral_norm, remove_spectral_norm

F64 = np.float64
TOLERANCE = dict(rtol=1e-10, atol=1e-10)


def weight_with_spectrum(rows, columns, gap, seed):
    """U diag(s) V^T with random orthonormal U, V and s_1 = gap * s_2: power iteration's error in
    sigma shrinks by (s_2 / s_1)^2 = 1 / gap^2 per step (Golub & Van Loan, section 8.2)."""
    rng = np.random.default_rng(seed)
    rank = min(rows, columns)
    left, _ = np.linalg.qr(rng.standard_normal((rows, rank)))
    right, _ = np.linalg.qr(rng.standard_normal((columns, rank)))
    singular_values = np.sort(rng.uniform(0.1, 1.0, rank))[::-1]
    singular_values[0] = gap * singular_values[1] if rank > 1 else singular_values[0]
    return left @ np.diag(singular_values) @ right.T


def normalized_linear(in_features, out_features, weight=None, dim=None):
    layer = nn.Linear(in_features, out_features, dtype=F64)
    if weight is not None:
        with mg.no_grad():
            layer.weight.copy_(mg.tensor(weight))
    return spectral_norm(layer) if dim is None else spectral_norm(layer, dim=dim)


def sigma_estimate(layer):
    """u^T W v with the layer's current u and v."""
    return float(layer.weight_u.data @ layer.weight_orig.data @ layer.weight_v.data)


def forward(layer, batch=4, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch, layer.in_features))
    return layer(mg.tensor(x))


# ---------------------------------------------------------------- the estimate


@given(rows=st.integers(1, 8), columns=st.integers(1, 8), gap=st.floats(1.5, 4), seed=st.integers(0, 2**32 - 1))
def test_power_iteration_converges_to_the_largest_singular_value(rows, columns, gap, seed):
    weight = weight_with_spectrum(rows, columns, gap, seed)
    mg.manual_seed(seed)
    layer = normalized_linear(columns, rows, weight)
    for step in range(40):  # error ~ gap^-80 < 1e-14
        forward(layer, seed=step)
    largest = np.linalg.svd(weight, compute_uv=False)[0]
    assert sigma_estimate(layer) == pytest.approx(largest, rel=1e-10)
    assert np.linalg.svd(layer.weight.data, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-10)
    np.testing.assert_allclose(layer.weight.data, weight / largest, **TOLERANCE)


def test_n_power_iterations_iterates_that_often_per_forward():
    weight = weight_with_spectrum(5, 4, 1.2, seed=1)
    mg.manual_seed(0)
    once = normalized_linear(4, 5, weight)
    mg.manual_seed(0)
    three_times = spectral_norm(nn.Linear(4, 5, dtype=F64), n_power_iterations=3)
    with mg.no_grad():
        three_times.weight_orig.copy_(mg.tensor(weight))
    for _ in range(3):
        forward(once)
    forward(three_times)
    np.testing.assert_allclose(three_times.weight_u.data, once.weight_u.data, **TOLERANCE)
    np.testing.assert_allclose(three_times.weight.data, once.weight.data, **TOLERANCE)


def test_eval_mode_does_not_update_u_and_v():
    layer = normalized_linear(4, 3)
    forward(layer)
    u, v = layer.weight_u.data.copy(), layer.weight_v.data.copy()
    layer.eval()
    for step in range(3):
        forward(layer, seed=step)
    assert np.array_equal(layer.weight_u.data, u) and np.array_equal(layer.weight_v.data, v)
    sigma = u @ layer.weight_orig.data @ v
    np.testing.assert_allclose(layer.weight.data, layer.weight_orig.data / sigma, **TOLERANCE)
    layer.train()
    forward(layer)
    assert not np.array_equal(layer.weight_u.data, u)  # one more power-iteration step moved it


def test_the_default_float32_layer_stays_float32():
    layer = spectral_norm(nn.Linear(4, 3))
    out = layer(mg.randn(2, 4))
    assert layer.weight_u.dtype == layer.weight_v.dtype == out.dtype == np.float32


# ---------------------------------------------------------------- gradients


def with_weight_orig(layer, weight_orig, x):
    """layer(x) with `weight_orig` in place of the layer's own: gradcheck evaluates fn on fresh
    tensors, and the spectral-norm hook reads the weight by name."""
    del layer.weight_orig
    layer.weight_orig = weight_orig
    return layer(x)


@pytest.mark.parametrize("rows, columns, dim", [(3, 4, 0), (4, 2, 0), (1, 3, 0), (3, 4, 1)])
def test_gradcheck_with_respect_to_the_weight_and_the_input(rows, columns, dim):
    mg.manual_seed(0)
    layer = normalized_linear(columns, rows, dim=dim)
    for step in range(3):
        forward(layer, seed=step)
    layer.eval()  # u and v fixed, so that fn is one function of (weight, x)
    weight = mg.tensor(layer.weight_orig.data.copy(), requires_grad=True)
    x = mg.tensor(np.random.default_rng(1).standard_normal((2, columns)), requires_grad=True)
    assert mg.gradcheck(lambda w, inputs: with_weight_orig(layer, w, inputs), (weight, x))


# ---------------------------------------------------------------- against PyTorch


def torch_copy(ours, torch, dim=0):
    """The PyTorch layer of the same kind with spectral_norm on `dim`, holding our weight_orig,
    u, v and bias (loaded by name, strictly: the state-dict keys must agree)."""
    if isinstance(ours, nn.Embedding):
        theirs = torch.nn.Embedding(*ours.weight_orig.shape, dtype=torch.float64)
    else:
        theirs = torch.nn.Linear(ours.in_features, ours.out_features, dtype=torch.float64)
    theirs = torch.nn.utils.spectral_norm(theirs, dim=dim)
    theirs.load_state_dict({name: torch.from_numpy(value.data.copy()) for name, value in ours.state_dict().items()})
    return theirs


def assert_same_forward_and_backward(ours, theirs, make_input, torch, forwards=2):
    """`forwards` forwards (each a power-iteration step in training mode) summed into one loss,
    then one backward: the same normalized weight, u, v, output and gradients in both."""
    our_loss, their_loss = 0.0, 0.0
    for step in range(forwards):
        our_x, their_x = make_input(step)
        our_out, their_out = ours(our_x), theirs(their_x)
        upstream = np.random.default_rng(step + 10).standard_normal(our_out.shape)
        our_loss = our_loss + (our_out * mg.tensor(upstream)).sum() ** 2
        their_loss = their_loss + (their_out * torch.from_numpy(upstream)).sum() ** 2
    np.testing.assert_allclose(our_loss.item(), their_loss.item(), **TOLERANCE)
    our_loss.backward()
    their_loss.backward()
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), **TOLERANCE)
    for name in ("weight_u", "weight_v"):
        np.testing.assert_allclose(getattr(ours, name).data, getattr(theirs, name).numpy(), **TOLERANCE)
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, their_parameters[name].grad.numpy(), **TOLERANCE, err_msg=name)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("training", [True, False])
def test_linear_matches_pytorch(dim, training):
    """Two training-mode forwards before one backward (a GAN discriminator on a real and a fake
    batch): each forward's graph must keep the u, v it used, though the next one updates them."""
    torch = pytest.importorskip("torch")
    mg.manual_seed(0)
    ours = normalized_linear(4, 3, dim=dim).train(training)
    theirs = torch_copy(ours, torch, dim).train(training)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((5, 4)) for _ in range(2)]

    def make_input(step):
        x = inputs[step]
        return mg.tensor(x), torch.from_numpy(x)

    assert_same_forward_and_backward(ours, theirs, make_input, torch)


def test_embedding_matches_pytorch():
    torch = pytest.importorskip("torch")
    mg.manual_seed(0)
    ours = spectral_norm(nn.Embedding(6, 3, dtype=F64))
    theirs = torch_copy(ours, torch)
    indices = np.array([[0, 2, 5], [1, 1, 4]])

    def make_input(step):
        return mg.tensor(indices), torch.from_numpy(indices)

    assert_same_forward_and_backward(ours, theirs, make_input, torch)


def test_state_dict_keys_match_pytorch():
    torch = pytest.importorskip("torch")
    ours = spectral_norm(nn.Linear(4, 3))
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [name for name, _ in ours.named_parameters()] == ["bias", "weight_orig"]
    assert [name for name, _ in ours.named_buffers()] == ["weight_u", "weight_v"]


def test_remove_spectral_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    mg.manual_seed(0)
    ours = normalized_linear(4, 3)
    theirs = torch_copy(ours, torch)
    for step in range(3):
        x = np.random.default_rng(step).standard_normal((2, 4))
        ours(mg.tensor(x))
        theirs(torch.from_numpy(x))
    remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), **TOLERANCE)


# ---------------------------------------------------------------- applying and removing


def test_remove_spectral_norm_gives_back_a_plain_trainable_weight():
    mg.manual_seed(0)
    layer = normalized_linear(4, 3)
    forward(layer)
    layer.eval()
    normalized = forward(layer).data
    expected_weight = layer.weight.data.copy()
    assert remove_spectral_norm(layer) is layer
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad
    assert np.array_equal(layer.weight.data, expected_weight)
    assert [name for name, _ in layer.named_parameters()] == ["bias", "weight"]
    assert list(layer.named_buffers()) == [] and layer._forward_pre_hooks == []
    for name in ("weight_orig", "weight_u", "weight_v"):
        assert not hasattr(layer, name)
    out = forward(layer)
    np.testing.assert_allclose(out.data, normalized, **TOLERANCE)  # the same map, now without the hook
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == (3, 4)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in Linear"):
        remove_spectral_norm(layer)


def test_applying_it_twice_raises_and_changes_nothing():
    layer = normalized_linear(4, 3)
    keys = list(layer.state_dict())
    with pytest.raises(RuntimeError, match="'weight' of this module is already spectrally normalized"):
        spectral_norm(layer)
    assert list(layer.state_dict()) == keys and len(layer._forward_pre_hooks) == 1


@pytest.mark.parametrize("module, arguments, error, message", [
    (lambda: nn.ReLU(), {}, ValueError, "ReLU has no parameter named 'weight'"),
    (lambda: nn.Linear(2, 2), {"name": "scale"}, ValueError, "Linear has no parameter named 'scale'"),
    (lambda: nn.Linear(2, 2), {"n_power_iterations": 0}, ValueError, "n_power_iterations must be positive, got 0"),
])
def test_bad_arguments_are_refused(module, arguments, error, message):
    target = module()
    with pytest.raises(error, match=message):
        spectral_norm(target, **arguments)
    assert not any(name.endswith("_orig") for name, _ in target.named_parameters())


# ---------------------------------------------------------------- training


def test_a_model_with_spectral_norm_trains():
    """A 1-Lipschitz network (every layer normalized, tanh 1-Lipschitz) fits a 0.5-Lipschitz
    target; the power iteration runs alongside, and the layers stay at spectral norm ~1."""
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (64, 1))
    y = 0.5 * np.sin(x)
    model = nn.Sequential(spectral_norm(nn.Linear(1, 32, dtype=F64)), nn.Tanh(),
                          spectral_norm(nn.Linear(32, 32, dtype=F64)), nn.Tanh(),
                          spectral_norm(nn.Linear(32, 1, dtype=F64)))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(150):
        loss = nn.functional.mse_loss(model(mg.tensor(x)), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.1 * losses[0]
    for layer in (model[0], model[2], model[4]):
        assert np.linalg.svd(layer.weight.data, compute_uv=False)[0] == pytest.approx(1.0, rel=0.05)
