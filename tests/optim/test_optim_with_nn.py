"""Optimizers and schedulers driving minigrad.nn models: a classifier trained like PyTorch's, and
a checkpoint (model + optimizer + scheduler, through minigrad.save) resumed bit for bit."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad import optim
from minigrad.optim import lr_scheduler


def make_model():
    return nn.Sequential(nn.Linear(4, 8, dtype=np.float64), nn.Tanh(), nn.Linear(8, 3, dtype=np.float64))


def classification_data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((32, 4)), rng.integers(0, 3, size=32)


def starting_weights():
    rng = np.random.default_rng(3)
    return {name: rng.standard_normal(param.shape) * 0.5 for name, param in make_model().state_dict().items()}


def train(model, optimizer, scheduler, steps):
    x, y = (mg.tensor(array) for array in classification_data())
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def build(weights):
    model = make_model()
    model.load_state_dict({name: array.copy() for name, array in weights.items()})
    optimizer = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.05, amsgrad=True)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=30)
    return model, optimizer, scheduler


def test_a_checkpoint_through_minigrad_save_resumes_bit_for_bit(tmp_path):
    model, optimizer, scheduler = build(starting_weights())
    first_losses = train(model, optimizer, scheduler, 10)
    assert first_losses[-1] < first_losses[0]
    mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            tmp_path / "checkpoint.npz")
    uninterrupted = train(model, optimizer, scheduler, 15)

    checkpoint = mg.load(tmp_path / "checkpoint.npz")
    resumed_model, resumed_optimizer, resumed_scheduler = build(starting_weights())
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    assert train(resumed_model, resumed_optimizer, resumed_scheduler, 15) == uninterrupted
    for (name, ours), theirs in zip(resumed_model.state_dict().items(), model.state_dict().values()):
        np.testing.assert_array_equal(ours.data, theirs.data, err_msg=name)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("optimizer_name, options", [
    ("SGD", dict(lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
])
def test_nn_model_trains_like_torch(optimizer_name, options):
    torch = pytest.importorskip("torch")
    weights = starting_weights()
    model = make_model()
    model.load_state_dict({name: array.copy() for name, array in weights.items()})
    optimizer = getattr(optim, optimizer_name)(model.parameters(), **options)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    ours = train(model, optimizer, scheduler, 20)

    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    torch_model.load_state_dict({name: torch.tensor(array) for name, array in weights.items()})
    torch_optimizer = getattr(torch.optim, optimizer_name)(torch_model.parameters(), **options)
    torch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(torch_optimizer, T_max=20)
    x, y = classification_data()
    x, y = torch.tensor(x), torch.tensor(y)
    theirs = []
    for _ in range(20):
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch_model(x), y)
        loss.backward()
        torch_optimizer.step()
        torch_scheduler.step()
        theirs.append(loss.item())

    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    for name, param in torch_model.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name].data, param.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
