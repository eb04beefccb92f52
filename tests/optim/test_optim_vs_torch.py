"""The same training run in minigrad and in PyTorch (skipped when torch is not installed).

A small MLP written out by hand (x @ W1.T + b1, tanh, @ W2.T + b2, mean squared error), the same
float64 weights and data, 20 steps of each optimizer: losses and parameters agree to 1e-9
relative. Each scheduler's learning rates (and cycled momenta) agree with torch's for 50 steps.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 20


def initial_weights():
    rng = np.random.default_rng(1234)
    return {
        "W1": rng.standard_normal((8, 4)) * 0.5, "b1": rng.standard_normal(8) * 0.1,
        "W2": rng.standard_normal((3, 8)) * 0.5, "b2": rng.standard_normal(3) * 0.1,
    }


def data():
    rng = np.random.default_rng(99)
    return rng.standard_normal((16, 4)), rng.standard_normal((16, 3))


def groups_of(params, lr):
    """Weights in one group at lr, biases in a second group at lr / 2."""
    return [{"params": [params["W1"], params["W2"]]}, {"params": [params["b1"], params["b2"]], "lr": lr / 2}]


def train_minigrad(optimizer_name, options):
    params = {name: mg.tensor(array, requires_grad=True) for name, array in initial_weights().items()}
    optimizer = getattr(optim, optimizer_name)(groups_of(params, options["lr"]), **options)
    x, y = (mg.tensor(array) for array in data())
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        hidden = (x @ params["W1"].T + params["b1"]).tanh()
        error = hidden @ params["W2"].T + params["b2"] - y
        loss = (error * error).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {name: param.data for name, param in params.items()}


def train_torch(optimizer_name, options):
    params = {name: torch.tensor(array, requires_grad=True) for name, array in initial_weights().items()}
    optimizer = getattr(torch.optim, optimizer_name)(groups_of(params, options["lr"]), **options)
    x, y = (torch.tensor(array) for array in data())
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        hidden = torch.tanh(x @ params["W1"].T + params["b1"])
        loss = ((hidden @ params["W2"].T + params["b2"] - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {name: param.detach().numpy() for name, param in params.items()}


OPTIMIZER_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), weight_decay=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, momentum=0.7, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, maximize=True)),
]


@pytest.mark.parametrize("optimizer_name, options", OPTIMIZER_CONFIGS,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(OPTIMIZER_CONFIGS)])
def test_training_trajectory_matches_torch(optimizer_name, options):
    our_losses, our_params = train_minigrad(optimizer_name, options)
    torch_losses, torch_params = train_torch(optimizer_name, options)
    np.testing.assert_allclose(our_losses, torch_losses, rtol=1e-9)
    for name in our_params:
        np.testing.assert_allclose(our_params[name], torch_params[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert not np.allclose(our_params["W1"], initial_weights()["W1"])  # the run did move


# ----------------------------------------------------------------------------------------------
# schedulers
# ----------------------------------------------------------------------------------------------

SCHEDULER_STEPS = 50


def both_optimizers(optimizer_name, lrs, **options):
    """A minigrad and a torch optimizer, one parameter per group, with the given group lrs."""
    ours = getattr(optim, optimizer_name)(
        [{"params": [mg.tensor(np.ones(2), requires_grad=True)], "lr": lr} for lr in lrs], lr=lrs[0], **options)
    theirs = getattr(torch.optim, optimizer_name)(
        [{"params": [torch.ones(2, dtype=torch.float64, requires_grad=True)], "lr": lr} for lr in lrs],
        lr=lrs[0], **options)
    return ours, theirs


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def record(optimizer, scheduler, metrics=None):
    """Each group's lr and momentum after construction and after each of the next 49 steps."""
    rows = []
    for step in range(SCHEDULER_STEPS):
        rows.append([value for group in optimizer.param_groups for value in (group["lr"], momentum_of(group))])
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[step])
    return np.array(rows)


def sequential(module, optimizer):
    warmup = module.LinearLR(optimizer, start_factor=0.2, total_iters=5)
    cosine = module.CosineAnnealingLR(optimizer, T_max=20, eta_min=1e-3)
    decay = module.MultiStepLR(optimizer, milestones=[5, 10], gamma=0.5)
    return module.SequentialLR(optimizer, [warmup, cosine, decay], milestones=[6, 30])


SCHEDULER_CONFIGS = {
    "StepLR": ("SGD", lambda m, o: m.StepLR(o, step_size=7, gamma=0.3)),
    "MultiStepLR": ("SGD", lambda m, o: m.MultiStepLR(o, milestones=[4, 10, 10, 31], gamma=0.5)),
    "ExponentialLR": ("SGD", lambda m, o: m.ExponentialLR(o, gamma=0.95)),
    "CosineAnnealingLR": ("SGD", lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.002)),
    "LambdaLR": ("SGD", lambda m, o: m.LambdaLR(o, [lambda t: 1 / (1 + t), lambda t: 0.97**t])),
    "LinearLR": ("SGD", lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=15)),
    "OneCycleLR": ("SGD", lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=SCHEDULER_STEPS)),
    "OneCycleLR-linear-3phase-Adam": ("Adam", lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, epochs=5, steps_per_epoch=10, pct_start=0.2, anneal_strategy="linear", three_phase=True,
        div_factor=10.0, final_div_factor=100.0, base_momentum=0.7, max_momentum=0.9)),
    "CyclicLR-triangular": ("SGD", lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=5,
                                                           step_size_down=8)),
    "CyclicLR-triangular2-Adam": ("Adam", lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=4,
                                                                  mode="triangular2")),
    "CyclicLR-exp_range": ("SGD", lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=6,
                                                          mode="exp_range", gamma=0.98)),
    "SequentialLR": ("SGD", sequential),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", SCHEDULER_CONFIGS)
def test_scheduler_matches_torch(name):
    optimizer_name, build = SCHEDULER_CONFIGS[name]
    options = dict(momentum=0.9) if optimizer_name == "SGD" else {}
    ours, theirs = both_optimizers(optimizer_name, (0.1, 0.05), **options)
    our_rows = record(ours, build(lr_scheduler, ours))
    torch_rows = record(theirs, build(torch.optim.lr_scheduler, theirs))
    np.testing.assert_allclose(our_rows, torch_rows, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "options",
    [dict(patience=3, factor=0.5), dict(mode="max", threshold_mode="abs", threshold=0.05, patience=1, cooldown=2,
                                        min_lr=[0.01, 0.02])],
)
def test_reduce_lr_on_plateau_matches_torch(options):
    metrics = np.abs(np.sin(np.arange(SCHEDULER_STEPS) / 3.0)) + np.linspace(1.0, 0.9, SCHEDULER_STEPS)
    ours, theirs = both_optimizers("SGD", (0.1, 0.05), momentum=0.9)
    our_rows = record(ours, lr_scheduler.ReduceLROnPlateau(ours, **options), metrics)
    torch_rows = record(theirs, torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **options), metrics)
    np.testing.assert_allclose(our_rows, torch_rows, rtol=1e-12, atol=1e-15)
    assert our_rows[-1, 0] < our_rows[0, 0]  # the metric plateaued and the lr was cut
