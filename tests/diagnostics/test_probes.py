"""Recorder: what it keeps (which steps, which columns, which values) and what it must never do
(change the graph, the gradients or the parameters; outlive detach())."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from diagnostics import clipping, stats
from diagnostics.clipping import clip_grad_norm_
from diagnostics.probes import ACTIVE_FRACTION_THRESHOLD, Recorder
from minigrad import nn, optim
from minigrad.autograd import topological_order


def small_model(seed=0):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


def batch(seed=0, n=16):
    rng = np.random.default_rng(seed)
    return mg.tensor(rng.standard_normal((n, 3)).astype(np.float32)), mg.tensor(rng.integers(0, 2, n))


def train(model, steps, recorder=None, lr=1e-2, clip=None):
    """`steps` full-batch Adam steps; the gradients of every step (copies), in order."""
    x, y = batch()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    grads = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            clip_grad_norm_(model.parameters(), clip)
        grads.append([p.grad.copy() for p in model.parameters()])
        optimizer.step()
        if recorder is not None:
            recorder.step(loss=loss.item(), lr=optimizer.param_groups[0]["lr"])
    return grads


def graph_ops(tensor):
    """The ops of the graph behind `tensor`, in topological order."""
    return [type(t.grad_fn).__name__ for t in topological_order([tensor]) if t.grad_fn is not None]


# ---------------------------------------------------------------- it changes nothing


def test_the_recorder_adds_nothing_to_the_autograd_graph():
    x, y = batch()
    model = small_model()
    bare_output = model(x)
    bare_ops = graph_ops(F.cross_entropy(bare_output, y))
    recorder = Recorder(model)
    watched_output = model(x)
    watched_loss = F.cross_entropy(watched_output, y)
    assert graph_ops(watched_loss) == bare_ops
    assert type(watched_output.grad_fn) is type(bare_output.grad_fn)
    recorder.detach()


def test_gradients_and_parameters_are_bit_for_bit_the_same_with_a_recorder():
    bare, watched = small_model(seed=3), small_model(seed=3)
    recorder = Recorder(watched)
    bare_grads = train(bare, 6, clip=0.5)
    watched_grads = train(watched, 6, recorder, clip=0.5)
    for step_bare, step_watched in zip(bare_grads, watched_grads):
        for g_bare, g_watched in zip(step_bare, step_watched):
            assert g_bare.tobytes() == g_watched.tobytes()
    for p_bare, p_watched in zip(bare.parameters(), watched.parameters()):
        assert p_bare.data.tobytes() == p_watched.data.tobytes()
    assert len(recorder.history) == 6


def test_detach_removes_every_hook():
    model = small_model()
    recorder = Recorder(model)
    train(model, 2, recorder)
    recorder.detach()
    for _, module in model.named_modules():
        assert module._forward_hooks == [] and module._forward_pre_hooks == []
    assert recorder not in clipping._live_listeners()
    train(model, 2, clip=1e-6)  # forward, backward and clipping, with nobody listening
    assert all(probe.count == 0 and probe.grad_count == 0 for probe in recorder.probes.values())
    assert len(recorder.history) == 2  # what was recorded stays readable
    assert "clip_fired" not in recorder.history


# ---------------------------------------------------------------- which steps, which columns


@given(st.integers(1, 7), st.integers(0, 30))
def test_every_k_keeps_steps_0_k_2k(every, calls):
    model = nn.Linear(2, 1)
    recorder = Recorder(model, every=every)
    for step in range(calls):
        recorder.step(loss=float(step))
    history = recorder.history
    expected = list(range(0, calls, every))
    assert len(history) == len(expected)
    if expected:
        assert history["step"].tolist() == expected
        assert history["loss"].tolist() == [float(step) for step in expected]
    recorder.detach()


def test_every_k_measures_only_the_recorded_steps():
    model = small_model()
    recorder = Recorder(model, every=3)
    train(model, 7, recorder)
    history = recorder.history
    assert history["step"].tolist() == [0, 3, 6]
    for name in ("grad_norm", "update_ratio/0.weight", "act_mean/1", "act_dead_frac/1", "act_sat_soft/3"):
        assert np.isfinite(history[name]).all(), name
    recorder.detach()


def test_columns_grow_past_their_initial_capacity_with_the_right_values():
    model = nn.Linear(2, 1)
    recorder = Recorder(model)
    capacity = recorder.columns.capacity
    steps = 2 * capacity + 3  # two doublings
    late = capacity + 5
    for step in range(steps):
        scalars = {"extra": step * 10.0} if step >= late else {}
        recorder.step(loss=step * 0.5, **scalars)
    history = recorder.history
    assert recorder.columns.capacity == 4 * capacity
    assert len(history) == steps
    assert history["step"].tolist() == list(range(steps))
    np.testing.assert_array_equal(history["loss"], np.arange(steps) * 0.5)
    assert np.isnan(history["extra"][:late]).all()  # a column first seen later is NaN before
    np.testing.assert_array_equal(history["extra"][late:], np.arange(late, steps) * 10.0)
    recorder.detach()


def test_history_is_a_copy():
    recorder = Recorder(nn.Linear(2, 1))
    recorder.step(loss=1.0)
    recorder.history["loss"][0] = 99.0
    assert recorder.history["loss"][0] == 1.0


def test_scalars_take_tensors_and_numpy_numbers_and_refuse_the_rest():
    recorder = Recorder(nn.Linear(2, 1))
    recorder.step(loss=mg.tensor(0.25), lr=np.float32(0.5), val_loss=None, accuracy=np.int64(1))
    history = recorder.history
    assert (history["loss"][0], history["lr"][0], history["accuracy"][0]) == (0.25, 0.5, 1.0)
    assert "val_loss" not in history
    with pytest.raises(TypeError, match="loss must be a number"):
        recorder.step(loss="low")


def test_bad_settings_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="every must be >= 1"):
        Recorder(nn.Linear(2, 1), every=0)
    with pytest.raises(ValueError, match="no module named nope"):
        Recorder(small_model(), modules=["nope"])
    with pytest.raises(TypeError, match="cannot attach to a list"):
        Recorder([1, 2])


# ---------------------------------------------------------------- the values


def test_update_ratio_is_the_relative_change_of_a_real_adam_step():
    model = small_model()
    recorder = Recorder(model)
    x, y = batch()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = F.cross_entropy(model(x), y)
        before = {name: p.data.astype(np.float64) for name, p in model.named_parameters()}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recorder.step(loss=loss.item())
        for name, p in model.named_parameters():
            expected = np.linalg.norm(p.data.astype(np.float64) - before[name]) / np.linalg.norm(before[name])
            assert recorder.history[f"update_ratio/{name}"][-1] == pytest.approx(expected, rel=1e-5)
            assert recorder.history[f"param_norm/{name}"][-1] == pytest.approx(
                np.linalg.norm(p.data.astype(np.float64)), rel=1e-6)
    recorder.detach()


def test_gradient_columns_equal_the_gradients():
    model = small_model()
    recorder = Recorder(model)
    grads = train(model, 1, recorder)[0]
    history = recorder.history
    for (name, _), grad in zip(model.named_parameters(), grads):
        summary = stats.gradient_summary(grad)
        for key in ("norm", "mean_abs", "max_abs", "nonfinite", "zero_frac"):
            assert history[f"grad_{key}/{name}"][0] == summary[key]
    expected_total = math.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    assert history["grad_norm"][0] == pytest.approx(expected_total, rel=1e-6)


def test_activation_columns_equal_direct_computations_on_the_training_batch_only():
    model = small_model()
    recorder = Recorder(model)
    x, y = batch()
    pre_relu = F.linear(x, model[0].weight, model[0].bias).data.astype(np.float64)
    hidden = np.maximum(pre_relu, 0)
    tanh_out = np.tanh(hidden @ model[2].weight.data.T.astype(np.float64) + model[2].bias.data)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.eval()
    model(mg.tensor(np.full((5, 3), 100.0, dtype=np.float32)))  # validation: not recorded
    model.train()
    recorder.step(loss=loss.item())
    history = recorder.history
    assert history["act_mean/1"][0] == pytest.approx(hidden.mean(), rel=1e-5)
    assert history["act_std/1"][0] == pytest.approx(hidden.std(), rel=1e-4)
    assert history["act_zero_frac/1"][0] == pytest.approx(np.mean(hidden == 0), abs=1e-12)
    inactive = np.mean(pre_relu > 0, axis=0) < ACTIVE_FRACTION_THRESHOLD
    assert history["act_dead_frac/1"][0] == pytest.approx(inactive.mean())
    soft = np.mean(1 - tanh_out**2 < stats.SOFT_SATURATION_DERIVATIVE)
    assert history["act_sat_soft/3"][0] == pytest.approx(soft, abs=1e-12)
    assert np.isfinite(history["act_grad_std/1"][0]) and history["act_grad_std/1"][0] > 0
    assert "act_sat_soft/1" not in history and "act_dead_frac/3" not in history
    recorder.detach()


def test_dead_fraction_counts_units_over_the_window_and_unit_stats_agree():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with mg.no_grad():
        model[0].weight.copy_(mg.tensor(np.array([[1, 0], [0, 1], [-1, 0], [0, 0]], dtype=np.float32)))
        model[0].bias.fill_(0.0)
    recorder = Recorder(model, window=2)
    # Step 0: only unit 0 fires; step 1: units 0 and 1; step 2: only unit 2.
    for inputs in ([[1.0, -1.0]], [[1.0, 1.0]], [[-1.0, -1.0]]):
        model(mg.tensor(np.array(inputs, dtype=np.float32))).sum().backward()
        recorder.step(loss=0.0)
    dead = recorder.history["act_dead_frac/1"]
    assert dead.tolist() == [0.75, 0.5, 0.25]  # fired within the last 2 steps: {0}, {0, 1}, {0, 1, 2}
    units = recorder.unit_stats("1")
    np.testing.assert_allclose(units["active_fraction"], [0.5, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(units["born_dead"], [False, True, True, True])
    np.testing.assert_allclose(units["max_preactivation"], [1.0, 1.0, 1.0, 0.0])
    assert units["samples"] == 2
    assert recorder.unit_stats("no such layer") == {}
    assert recorder.layer_kinds() == {"1": "relu"}
    recorder.detach()


# ---------------------------------------------------------------- clipping


def test_the_recorder_sees_clipping_fire_and_measures_gradients_before_it():
    model = small_model()
    recorder = Recorder(model)
    x, y = batch()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    pre_clip_norms = []
    for max_norm in (1e-3, 1e3, None):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        layer_norms = [np.linalg.norm(p.grad.astype(np.float64)) for p in model.parameters()]
        pre_clip_norms.append(math.sqrt(sum(n**2 for n in layer_norms)))
        if max_norm is not None:
            clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        recorder.step(loss=loss.item())
        assert recorder.history["grad_norm/0.weight"][-1] == pytest.approx(layer_norms[0], rel=1e-6)
    history = recorder.history
    np.testing.assert_allclose(history["grad_norm"], pre_clip_norms, rtol=1e-6)
    np.testing.assert_allclose(history["clip_norm"][:2], pre_clip_norms[:2], rtol=1e-6)
    np.testing.assert_array_equal(history["clip_threshold"][:2], [1e-3, 1e3])
    np.testing.assert_array_equal(history["clip_fired"][:2], [1.0, 0.0])
    assert np.isnan([history[name][2] for name in ("clip_norm", "clip_threshold", "clip_fired")]).all()
    recorder.detach()


def test_without_clipping_there_are_no_clip_columns():
    model = small_model()
    recorder = Recorder(model)
    train(model, 2, recorder)
    assert not {"clip_norm", "clip_threshold", "clip_fired"} & set(recorder.history.columns)
    recorder.detach()


def test_clipping_another_model_is_not_recorded():
    model, other = small_model(0), small_model(1)
    recorder = Recorder(model)
    x, y = batch()
    loss = F.cross_entropy(model(x), y)
    F.cross_entropy(other(x), y).backward()
    clip_grad_norm_(other.parameters(), 1e-6)  # before `model` even has gradients
    loss.backward()
    recorder.step(loss=loss.item())
    history = recorder.history
    expected = math.sqrt(sum(np.sum(p.grad.astype(np.float64) ** 2) for p in model.parameters()))
    assert history["grad_norm"][0] == pytest.approx(expected, rel=1e-6)
    assert "clip_fired" not in history
    recorder.detach()


def test_an_activation_module_reused_for_layers_of_different_widths_does_not_break_training():
    class SharedActivation(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second, self.act = nn.Linear(3, 8), nn.Linear(8, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.second(self.act(self.first(x))))

    mg.manual_seed(0)
    model = SharedActivation()
    recorder = Recorder(model)
    x, _ = batch()
    for _ in range(2):
        model(x).sum().backward()
        recorder.step(loss=0.0)
    history = recorder.history
    assert np.isfinite(history["act_mean/act"]).all() and np.isfinite(history["act_zero_frac/act"]).all()
    assert "act_dead_frac/act" not in history  # its units are no single layer's
    assert recorder.unit_stats("act") == {}
    recorder.detach()
