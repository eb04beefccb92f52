"""Learning-rate schedulers against their closed forms, and their bookkeeping."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.optim import SGD, Adam
from minigrad.optim import lr_scheduler as sched

BASE_LR = 0.1


def make_optimizer(optimizer_class=SGD, lrs=(BASE_LR,), **options):
    groups = [{"params": [mg.tensor(np.ones(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return optimizer_class(groups, lr=lrs[0], **options)


def lr_sequence(scheduler, steps, group=0):
    """The lr of `group` at steps 0 (right after construction) to steps - 1."""
    lrs = [scheduler.optimizer.param_groups[group]["lr"]]
    for _ in range(steps - 1):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.optimizer.param_groups[group]["lr"])
    return np.array(lrs)


def assert_close(actual, expected, rtol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-15)


steps = np.arange(50)


# ----------------------------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------------------------


def test_step_lr():
    scheduler = sched.StepLR(make_optimizer(), step_size=7, gamma=0.5)
    assert_close(lr_sequence(scheduler, 50), BASE_LR * 0.5 ** (steps // 7))


def test_multi_step_lr_counts_a_repeated_milestone_twice():
    scheduler = sched.MultiStepLR(make_optimizer(), milestones=[30, 10, 30], gamma=0.1)
    passed = (steps >= 10).astype(int) + 2 * (steps >= 30)
    assert_close(lr_sequence(scheduler, 50), BASE_LR * 0.1**passed)


def test_exponential_lr():
    scheduler = sched.ExponentialLR(make_optimizer(), gamma=0.93)
    assert_close(lr_sequence(scheduler, 50), BASE_LR * 0.93**steps)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_follows_the_cosine_down_and_back_up(eta_min):
    scheduler = sched.CosineAnnealingLR(make_optimizer(), T_max=15, eta_min=eta_min)
    expected = eta_min + (BASE_LR - eta_min) * (1 + np.cos(np.pi * steps / 15)) / 2
    assert_close(lr_sequence(scheduler, 50), expected, rtol=1e-10)
    assert scheduler.optimizer.param_groups[0]["initial_lr"] == BASE_LR


@pytest.mark.parametrize("start_factor, end_factor, total_iters", [(0.25, 1.0, 10), (1.0, 0.1, 20), (0.5, 0.0, 4)])
def test_linear_lr(start_factor, end_factor, total_iters):
    scheduler = sched.LinearLR(make_optimizer(), start_factor=start_factor, end_factor=end_factor,
                               total_iters=total_iters)
    expected = BASE_LR * (start_factor + (end_factor - start_factor) * np.minimum(steps, total_iters) / total_iters)
    assert_close(lr_sequence(scheduler, 50), expected)


def test_lambda_lr_with_one_function_per_group():
    optimizer = make_optimizer(lrs=(0.1, 0.02))
    scheduler = sched.LambdaLR(optimizer, [lambda t: min(1.0, (t + 1) / 5), lambda t: 0.9**t])
    assert_close(lr_sequence(scheduler, 50, group=0), 0.1 * np.minimum(1.0, (steps + 1) / 5))
    scheduler = sched.LambdaLR(make_optimizer(lrs=(0.1, 0.02)), lambda t: 0.9**t)
    assert_close(lr_sequence(scheduler, 50, group=1), 0.02 * 0.9**steps)


def test_sequential_lr_warmup_then_cosine():
    optimizer = make_optimizer()
    warmup = sched.LinearLR(optimizer, start_factor=0.1, total_iters=5)
    cosine = sched.CosineAnnealingLR(optimizer, T_max=20, eta_min=0.001)
    scheduler = sched.SequentialLR(optimizer, [warmup, cosine], milestones=[5])
    expected = np.where(
        steps < 5,
        BASE_LR * (0.1 + 0.9 * steps / 5),
        0.001 + (BASE_LR - 0.001) * (1 + np.cos(np.pi * (steps - 5) / 20)) / 2,
    )
    assert_close(lr_sequence(scheduler, 50), expected, rtol=1e-10)


# ----------------------------------------------------------------------------------------------
# OneCycleLR
# ----------------------------------------------------------------------------------------------


def cos_anneal(start, end, fraction):
    return end + (start - end) * (1 + np.cos(np.pi * fraction)) / 2


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_two_phases(strategy):
    total, pct, max_lr = 50, 0.3, 1.0
    optimizer = make_optimizer(SGD, momentum=0.9)
    scheduler = sched.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=pct,
                                 anneal_strategy=strategy, div_factor=25.0, final_div_factor=1e4)
    initial, minimum = max_lr / 25, max_lr / 25 / 1e4
    peak = pct * total - 1  # the step at which the lr reaches max_lr
    anneal = cos_anneal if strategy == "cos" else (lambda start, end, p: start + (end - start) * p)
    expected = np.where(
        steps <= peak,
        anneal(initial, max_lr, steps / peak),
        anneal(max_lr, minimum, (steps - peak) / (total - 1 - peak)),
    )
    lrs = lr_sequence(scheduler, total)
    assert_close(lrs, expected)
    assert lrs[0] == pytest.approx(initial) and lrs[int(peak)] == pytest.approx(max_lr)
    assert lrs[-1] == pytest.approx(minimum)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.95)  # back to max_momentum at the end
    scheduler.step()  # PyTorch allows last_epoch == total_steps, one past the last step
    with pytest.raises(ValueError, match="Tried to step 51 times"):
        scheduler.step()


def test_one_cycle_three_phases_and_adam_momentum_is_beta1():
    total, pct = 40, 0.25
    optimizer = make_optimizer(Adam, betas=(0.9, 0.99))
    scheduler = sched.OneCycleLR(optimizer, max_lr=0.5, epochs=4, steps_per_epoch=10, pct_start=pct,
                                 three_phase=True, base_momentum=0.8, max_momentum=0.9)
    initial, minimum = 0.5 / 25, 0.5 / 25 / 1e4
    lrs, beta1s = [], []
    for t in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        beta1s.append(optimizer.param_groups[0]["betas"][0])
        assert optimizer.param_groups[0]["betas"][1] == 0.99
        if t < total - 1:
            scheduler.step()
    rise_end, fall_end = pct * total - 1, 2 * pct * total - 2  # 9 and 18
    t = np.arange(total)
    expected = np.select(
        [t <= rise_end, t <= fall_end],
        [cos_anneal(initial, 0.5, t / rise_end), cos_anneal(0.5, initial, (t - rise_end) / (fall_end - rise_end))],
        cos_anneal(initial, minimum, (t - fall_end) / (total - 1 - fall_end)),
    )
    expected_beta1 = np.select(
        [t <= rise_end, t <= fall_end],
        [cos_anneal(0.9, 0.8, t / rise_end), cos_anneal(0.8, 0.9, (t - rise_end) / (fall_end - rise_end))],
        0.9,
    )
    assert_close(lrs, expected)
    assert_close(beta1s, expected_beta1)


def test_one_cycle_needs_a_length_and_a_momentum_to_cycle():
    with pytest.raises(ValueError, match="total_steps OR"):
        sched.OneCycleLR(make_optimizer(), max_lr=1.0)
    from minigrad.optim import Adagrad
    with pytest.raises(ValueError, match="momentum or beta1"):
        sched.OneCycleLR(make_optimizer(Adagrad), max_lr=1.0, total_steps=10)


# ----------------------------------------------------------------------------------------------
# CyclicLR
# ----------------------------------------------------------------------------------------------


def triangle(t, step_size):
    """The triangular wave of Smith (2017): 0 at the cycle's start, 1 at step_size, 0 at 2 step_size."""
    cycle = np.floor(1 + t / (2 * step_size))
    return np.maximum(0, 1 - np.abs(t / step_size - 2 * cycle + 1)), cycle


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_modes(mode):
    optimizer = make_optimizer(SGD, momentum=0.9)
    scheduler = sched.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=6, mode=mode, gamma=0.97,
                               base_momentum=0.8, max_momentum=0.9)
    height, cycle = triangle(steps, 6)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": 0.97**steps}[mode]
    lrs, momenta = [], []
    for _ in steps:
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    assert_close(lrs, 0.01 + (0.1 - 0.01) * height * scale)
    assert_close(momenta, 0.9 - (0.9 - 0.8) * height * scale)


def test_cyclic_lr_with_unequal_halves_and_a_custom_scale():
    scheduler = sched.CyclicLR(make_optimizer(), base_lr=1.0, max_lr=4.0, step_size_up=2, step_size_down=4,
                               scale_fn=lambda x: 1.0 / x, scale_mode="cycle", cycle_momentum=False)
    lrs = lr_sequence(scheduler, 13)
    assert_close(lrs, [1.0, 2.5, 4.0, 3.25, 2.5, 1.75, 1.0, 1.75, 2.5, 2.125, 1.75, 1.375, 1.0])


# ----------------------------------------------------------------------------------------------
# ReduceLROnPlateau
# ----------------------------------------------------------------------------------------------


def plateau_lrs(metrics, **options):
    optimizer = make_optimizer()
    scheduler = sched.ReduceLROnPlateau(optimizer, **options)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
        assert scheduler.get_last_lr() == [lrs[-1]]
    return np.array(lrs)


def test_plateau_reduces_after_more_than_patience_bad_steps():
    lrs = plateau_lrs([5, 4, 4, 4, 4, 3, 3, 3, 3], patience=2, factor=0.5)
    # best 4 at step 1; steps 2, 3, 4 are bad: the third bad one (> patience) halves the lr
    assert_close(lrs, BASE_LR * np.array([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]))


def test_plateau_cooldown_ignores_bad_steps_and_min_lr_is_a_floor():
    lrs = plateau_lrs([1.0] * 10, patience=0, factor=0.5, cooldown=2, min_lr=0.02)
    # patience 0: every bad step outside the cooldown halves the lr; after a cut, 2 cooldown steps
    assert_close(lrs, [0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02])


@pytest.mark.parametrize(
    "mode, threshold_mode, metrics, cuts",
    [
        ("min", "rel", [1.0, 0.9999, 0.99989], [0, 1, 0]),  # needs < best * (1 - 1e-4): 0.9999 is not
        ("min", "abs", [1.0, 0.95, 0.9], [0, 1, 1]),  # threshold 0.1: needs < best - 0.1
        ("max", "rel", [1.0, 1.00011, 1.0001], [0, 0, 1]),  # needs > best * (1 + 1e-4)
        ("max", "abs", [1.0, 1.2, 1.25], [0, 0, 1]),
    ],
)
def test_plateau_thresholds(mode, threshold_mode, metrics, cuts):
    threshold = 1e-4 if threshold_mode == "rel" else 0.1
    lrs = plateau_lrs(metrics, mode=mode, threshold_mode=threshold_mode, threshold=threshold, patience=0, factor=0.5)
    assert_close(lrs, BASE_LR * 0.5 ** np.cumsum(cuts))


def test_plateau_ignores_reductions_smaller_than_eps():
    lrs = plateau_lrs([1.0, 2.0, 2.0], patience=0, factor=0.5, eps=0.06)
    assert_close(lrs, [0.1, 0.1, 0.1])  # 0.1 -> 0.05 would change the lr by less than eps


# ----------------------------------------------------------------------------------------------
# bookkeeping
# ----------------------------------------------------------------------------------------------


def test_schedulers_chain_multiplicatively():
    optimizer = make_optimizer()
    step = sched.StepLR(optimizer, step_size=3, gamma=0.5)
    exponential = sched.ExponentialLR(optimizer, gamma=0.9)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(9):
        optimizer.step()
        step.step()
        exponential.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    t = np.arange(10)
    assert_close(lrs, BASE_LR * 0.5 ** (t // 3) * 0.9**t)


def test_get_last_lr_base_lrs_and_last_epoch():
    optimizer = make_optimizer(lrs=(0.1, 0.2))
    scheduler = sched.ExponentialLR(optimizer, gamma=0.5)
    assert scheduler.last_epoch == 0 and scheduler.base_lrs == [0.1, 0.2]
    scheduler.step()
    assert scheduler.last_epoch == 1
    assert scheduler.get_last_lr() == [group["lr"] for group in optimizer.param_groups] == [0.05, 0.1]
    assert [group["initial_lr"] for group in optimizer.param_groups] == [0.1, 0.2]


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(make_optimizer(), step_size=2, last_epoch=4)


@pytest.mark.parametrize(
    "build",
    [
        lambda opt: sched.StepLR(opt, step_size=4, gamma=0.5),
        lambda opt: sched.CosineAnnealingLR(opt, T_max=12, eta_min=0.001),
        lambda opt: sched.OneCycleLR(opt, max_lr=1.0, total_steps=30),
        lambda opt: sched.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2"),
        lambda opt: sched.SequentialLR(opt, [sched.LinearLR(opt, 0.1, total_iters=3),
                                             sched.ExponentialLR(opt, 0.9)], milestones=[3]),
    ],
    ids=["step", "cosine", "onecycle", "cyclic", "sequential"],
)
def test_resuming_a_scheduler_and_its_optimizer_gives_the_same_lrs(build):
    optimizer = make_optimizer(SGD, momentum=0.9)
    scheduler = build(optimizer)
    lr_sequence(scheduler, 8)
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    uninterrupted = lr_sequence(scheduler, 10)

    fresh_optimizer = make_optimizer(SGD, momentum=0.9)
    fresh_scheduler = build(fresh_optimizer)
    fresh_scheduler.load_state_dict(saved_scheduler)
    fresh_optimizer.load_state_dict(saved_optimizer)
    np.testing.assert_array_equal(lr_sequence(fresh_scheduler, 10), uninterrupted)


def test_plateau_state_dict_round_trip():
    optimizer = make_optimizer()
    scheduler = sched.ReduceLROnPlateau(optimizer, patience=1, cooldown=1)
    for metric in [3, 2, 2]:
        scheduler.step(metric)
    saved = scheduler.state_dict()
    fresh = sched.ReduceLROnPlateau(make_optimizer(), patience=1, cooldown=1)
    fresh.load_state_dict(saved)
    assert (fresh.best, fresh.num_bad_epochs, fresh.last_epoch) == (2, 1, 3)


class WarmupFactor:
    """A callable object: its attributes are saved in the state dict, as in PyTorch."""

    def __init__(self, length):
        self.length = length

    def __call__(self, step):
        return min(1.0, (step + 1) / self.length)


def test_lambda_functions_are_not_saved_but_callable_objects_keep_their_attributes():
    optimizer = make_optimizer(lrs=(0.1, 0.2))
    scheduler = sched.LambdaLR(optimizer, [lambda t: 1.0, WarmupFactor(7)])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [None, {"length": 7}]
    assert not any(callable(value) for value in state.values())

    other = sched.LambdaLR(make_optimizer(lrs=(0.1, 0.2)), [lambda t: 0.5, WarmupFactor(3)])
    other.load_state_dict(state)
    assert other.lr_lambdas[1].length == 7
    assert other.lr_lambdas[0](0) == 0.5  # the function it was built with


def test_cyclic_lr_state_dict_drops_the_scale_function():
    scheduler = sched.CyclicLR(make_optimizer(), 0.01, 0.1, scale_fn=lambda x: 1.0, cycle_momentum=False)
    assert scheduler.state_dict()["_scale_fn_custom"] is None


def test_constructor_errors():
    optimizer = make_optimizer()
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        sched.LambdaLR(optimizer, [lambda t: 1.0, lambda t: 1.0])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        sched.ReduceLROnPlateau(optimizer, factor=1.5)
    with pytest.raises(ValueError, match="one milestone fewer than schedulers"):
        sched.SequentialLR(optimizer, [sched.StepLR(optimizer, 2), sched.StepLR(optimizer, 3)], milestones=[])
    with pytest.raises(ValueError, match="does not support ReduceLROnPlateau"):
        sched.SequentialLR(optimizer, [sched.ReduceLROnPlateau(optimizer)], milestones=[])
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        sched.LinearLR(optimizer, start_factor=0.0)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        sched.OneCycleLR(optimizer, max_lr=[1.0, 2.0], total_steps=10)


def test_the_cosine_closed_form_at_a_glance():
    """A hand-checked point: halfway through, the lr is halfway between base and eta_min."""
    scheduler = sched.CosineAnnealingLR(make_optimizer(), T_max=10, eta_min=0.02)
    assert lr_sequence(scheduler, 6)[5] == pytest.approx(0.02 + (BASE_LR - 0.02) * (1 + math.cos(math.pi / 2)) / 2)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scheduler_state_dicts_survive_a_round_trip_to_disk(tmp_path):
    """Saved with minigrad.save (no pickle: milestone counts come back as a plain dict)."""

    def build(optimizer):
        return sched.SequentialLR(optimizer, [sched.ExponentialLR(optimizer, 0.9),
                                              sched.MultiStepLR(optimizer, [2, 4, 4], gamma=0.5)], milestones=[3])

    optimizer = make_optimizer()
    scheduler = build(optimizer)
    lr_sequence(scheduler, 2)
    mg.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "run.npz")
    uninterrupted = lr_sequence(scheduler, 10)

    checkpoint = mg.load(tmp_path / "run.npz")
    fresh_optimizer = make_optimizer()
    fresh = build(fresh_optimizer)
    fresh.load_state_dict(checkpoint["scheduler"])
    fresh_optimizer.load_state_dict(checkpoint["optimizer"])
    np.testing.assert_array_equal(lr_sequence(fresh, 10), uninterrupted)
