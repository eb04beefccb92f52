"""End to end: a small MLP learns the spirals, and a run resumed from a checkpoint continues
exactly as the uninterrupted one."""

import numpy as np

import minigrad as mg
from minigrad import nn, optim


def spirals_model():
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))


def train_epochs(model, optimizer, loader, loss_fn, epochs):
    for _ in range(epochs):
        for inputs, targets in loader:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def test_a_two_layer_mlp_learns_the_spirals():
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=600, noise=0.1, seed=0)
    model = spirals_model()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    loader = mg.data.DataLoader(data.train, batch_size=64, shuffle=True, seed=0)
    train_epochs(model, optimizer, loader, nn.CrossEntropyLoss(), epochs=150)
    model.eval()
    with mg.no_grad():
        predictions = model(mg.tensor(data.X_train)).data.argmax(axis=1)
    accuracy = float(np.mean(predictions == data.y_train))
    assert accuracy > 0.95, f"training accuracy {accuracy:.3f}"


def test_a_resumed_run_continues_exactly_as_the_uninterrupted_one(tmp_path):
    data = mg.data.spirals(n_samples=200, noise=0.1, seed=1)
    loss_fn = nn.CrossEntropyLoss()

    def fresh():
        mg.manual_seed(3)
        model = spirals_model()
        optimizer = optim.Adam(model.parameters(), lr=1e-2)
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return model, optimizer, scheduler

    def epoch(model, optimizer, scheduler, number):
        loader = mg.data.DataLoader(data.train, batch_size=32, shuffle=True, seed=number)
        train_epochs(model, optimizer, loader, loss_fn, epochs=1)
        scheduler.step()

    model, optimizer, scheduler = fresh()
    for number in range(10):
        epoch(model, optimizer, scheduler, number)
    uninterrupted = {name: value.data.copy() for name, value in model.state_dict().items()}

    model, optimizer, scheduler = fresh()
    for number in range(4):
        epoch(model, optimizer, scheduler, number)
    checkpoint = tmp_path / "run.npz"
    mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict()}, checkpoint)

    model, optimizer, scheduler = fresh()
    state = mg.load(checkpoint)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for number in range(4, 10):
        epoch(model, optimizer, scheduler, number)
    for name, value in model.state_dict().items():
        assert np.array_equal(value.data, uninterrupted[name]), name
