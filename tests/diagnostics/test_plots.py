"""Figures: every plot writes a PNG for a recorded run and for a synthetic one, shows what it
promises (log axes, the healthy band, layers in order, findings at their steps), and draws odd
histories (empty, one step, NaN-only or missing columns) without raising or warning.
matplotlib is imported only when a figure is drawn, and pyplot never."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minigrad as mg
from diagnostics import Finding, History, plots
from diagnostics.clipping import clip_grad_norm_
from diagnostics.doctor import diagnose
from diagnostics.probes import Recorder
from minigrad import data, nn, optim

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_png(path):
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE), f"{path.name} is not a PNG"
    assert len(content) > 5_000, f"{path.name} is only {len(content)} bytes: nothing was drawn"
    assert len(content) < 1_000_000, f"{path.name} is {len(content)} bytes: too large"


def render(figure):
    """Draw every artist of the figure: errors in ticks, scales and limits only show when
    drawing. The layout engine is switched off first, as it costs more than all the rest and does
    not look at the data; no image is encoded (the PNG tests do that)."""
    figure.set_layout_engine("none")
    figure.draw_without_rendering()


def text_of(ax) -> str:
    return " ".join(text.get_text() for text in ax.texts)


# ---------------------------------------------------------------- histories


@pytest.fixture(scope="module")
def recorded_report():
    """A small ReLU + Tanh MLP trained for 12 steps on spirals, recorded with every probe, with
    clipping and a validation loss every 4 steps."""
    mg.manual_seed(0)
    splits = data.spirals(120, seed=0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    recorder = Recorder(model)
    X_val, y_val = mg.tensor(splits.X_val), mg.tensor(splits.y_val)
    batches = data.DataLoader(splits.train, batch_size=15, shuffle=True, seed=0)
    for step, (x, y) in enumerate(list(batches) * 2):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        val_loss = None
        if step % 4 == 3:
            with mg.no_grad():
                val_loss = loss_fn(model(X_val), y_val).item()
        recorder.step(loss=loss.item(), lr=0.1, val_loss=val_loss)
    recorder.detach()
    return diagnose(recorder)


def synthetic_history(steps=200, seed=0) -> History:
    """A run whose loss falls over two decades, validation every 10 steps, three layers whose
    gradients shrink toward the input, one dying ReLU layer and one saturating tanh layer."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    loss = 2.0 * np.exp(-t / 40) + 0.01
    val_loss = np.full(steps, np.nan)
    val_loss[::10] = loss[::10] * 1.2
    columns = {"step": t, "loss": loss * np.exp(0.05 * rng.standard_normal(steps)), "val_loss": val_loss}
    for depth, name in enumerate(("fc1.weight", "fc1.bias", "fc2.weight", "fc3.weight")):
        columns[f"grad_norm/{name}"] = 10.0 ** (depth - 3) * np.exp(0.2 * rng.standard_normal(steps))
        columns[f"update_ratio/{name}"] = 10.0 ** (depth - 4) * np.exp(0.2 * rng.standard_normal(steps))
    columns["act_dead_frac/relu1"] = np.minimum(1.0, t / steps * 1.5)
    columns["act_sat_soft/tanh2"] = 0.2 + 0.1 * np.sin(t / 10)
    return History(columns)


PANEL_PLOTS = {
    "loss": lambda history, path: plots.plot_loss(history, path=path),
    "gradient_flow": lambda history, path: plots.plot_gradient_flow(history, path=path),
    "update_ratios": lambda history, path: plots.plot_update_ratios(history, path=path),
    "activation_health": lambda history, path: plots.plot_activation_health(history, path=path),
    "report": lambda history, path: plots.plot_report(diagnose(history), path=path),
}


# ---------------------------------------------------------------- every plot writes a PNG


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", PANEL_PLOTS)
def test_each_plot_writes_a_png_for_a_recorded_run(recorded_report, tmp_path, name):
    history = recorded_report.history
    if name == "report":
        figure = plots.plot_report(recorded_report, path=tmp_path / "report.png")
    else:
        figure = PANEL_PLOTS[name](history, tmp_path / f"{name}.png")
    assert_png(tmp_path / f"{name}.png")
    assert figure.axes, "the figure has no axes"


@pytest.mark.filterwarnings("error")
def test_the_dashboard_of_a_synthetic_run_draws_every_panel_without_warning(tmp_path):
    figure = plots.plot_report(diagnose(synthetic_history()), path=tmp_path / "report.png")
    assert_png(tmp_path / "report.png")
    titles = " ".join(ax.get_title() for ax in figure.axes)
    for panel in ("Loss", "Gradient norm per layer", "At step 199", "Update-to-weight", "Activation health"):
        assert panel in titles


def test_lr_finder_plot_writes_a_png_and_marks_each_suggestion(tmp_path):
    lrs = np.geomspace(1e-6, 1.0, 80)
    smoothed = 1.0 - 0.8 / (1 + np.exp(-3 * (np.log10(lrs) + 3))) + lrs**2 * 5
    history = {"lr": lrs, "loss": smoothed * 1.05, "smoothed": smoothed, "ema": smoothed}
    suggestions = {"steep": 1e-3, "valley": 3e-3, "minimum": 1e-2, "slide": float("nan")}
    figure = plots.plot_lr_finder(history, suggestions, path=tmp_path / "lr.png")
    assert_png(tmp_path / "lr.png")
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    markers = {line.get_label(): line.get_marker() for line in ax.lines}
    # A NaN suggestion (a rule with no answer) is left out; the others each have their marker.
    assert [label.split(":")[0] for label in labels[2:]] == ["steep", "valley", "minimum"]
    assert len({markers[label] for label in labels[2:]}) == 3
    # Each marker sits on the smoothed curve at its learning rate.
    for line in ax.lines[2:]:
        lr, loss = line.get_xdata()[0], line.get_ydata()[0]
        assert loss == pytest.approx(np.interp(np.log10(lr), np.log10(lrs), smoothed))


def test_lr_finder_plot_keeps_a_final_blow_up_from_flattening_the_curve():
    lrs = np.geomspace(1e-5, 1.0, 60)
    raw = np.linspace(1.0, 0.5, 60)
    raw[-1] = 1e6  # one exploding batch at the end of the test
    figure = plots.plot_lr_finder({"lr": lrs, "loss": raw, "smoothed": np.linspace(1.0, 0.5, 60)})
    bottom, top = figure.axes[0].get_ylim()
    assert bottom < 0.5 and 1.0 < top < 1.5


# ---------------------------------------------------------------- what each figure shows


@given(losses=arrays(np.float64, st.integers(2, 30), elements=st.floats(1e-4, 1e4)))
def test_loss_axis_is_logarithmic_exactly_when_the_loss_spans_more_than_a_decade(losses):
    """Positive losses spanning max/min > 10 get a log axis, the others a linear one."""
    ax = plots.plot_loss(History({"loss": losses})).axes[0]
    assert (ax.get_yscale() == "log") == (losses.max() / losses.min() > 10)


def test_loss_axis_is_linear_when_a_loss_is_negative():
    loss = np.array([5.0, 1.0, 0.01, -0.5])
    assert plots.plot_loss(History({"loss": loss})).axes[0].get_yscale() == "linear"


def test_loss_plot_draws_validation_points_only_where_evaluated():
    history = synthetic_history()
    ax = plots.plot_loss(history).axes[0]
    validation = next(line for line in ax.lines if line.get_label() == "validation loss")
    evaluated = np.isfinite(history["val_loss"])
    np.testing.assert_array_equal(validation.get_xdata(), history.steps[evaluated])
    assert validation.get_marker() == "o"


def test_findings_are_marked_at_their_steps_with_their_kinds():
    history = synthetic_history()
    findings = [
        Finding("plateau", "flat", step=50),
        Finding("loss_spike", "jump", step=120, severity="critical"),
        Finding("divergence", "up", step=120),
        Finding("underfitting", "high"),  # no step: nothing to mark
    ]
    ax = plots.plot_loss(history, findings).axes[0]
    vertical_lines = [line for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[-1]
                      and line.get_label().startswith("_")]
    assert sorted(line.get_xdata()[0] for line in vertical_lines) == [50, 120]
    labels = text_of(ax)
    assert "plateau" in labels and "loss_spike, divergence" in labels and "underfitting" not in labels


def test_gradient_flow_lists_layers_from_input_to_output_and_shows_the_chosen_step():
    history = synthetic_history(steps=30)
    figure = plots.plot_gradient_flow(history, step=7)
    heatmap, bars = figure.axes[0], figure.axes[1]
    weights = ["fc1.weight", "fc2.weight", "fc3.weight"]  # biases left out: they have their own scale
    assert [label.get_text() for label in heatmap.get_yticklabels()] == weights
    assert [label.get_text() for label in bars.get_yticklabels()] == weights
    widths = [patch.get_width() for patch in bars.patches]
    np.testing.assert_allclose(widths, [history[f"grad_norm/{name}"][7] for name in weights])
    assert bars.get_xscale() == "log"
    assert "7" in bars.get_title()


def test_gradient_flow_heatmap_colours_are_log10_of_the_norms():
    history = synthetic_history(steps=5)
    mesh = plots.plot_gradient_flow(history).axes[0].collections[0]
    expected = np.log10([history[f"grad_norm/{name}"] for name in ("fc1.weight", "fc2.weight", "fc3.weight")])
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(expected.shape), expected)


def test_gradient_flow_refuses_a_step_that_was_not_recorded():
    with pytest.raises(ValueError, match="step 999 was not recorded"):
        plots.plot_gradient_flow(synthetic_history(steps=10), step=999)


def test_gradient_flow_defaults_to_the_last_step_with_a_gradient():
    history = synthetic_history(steps=10)
    for name in history.layers("grad_norm"):
        history[f"grad_norm/{name}"][-3:] = np.nan
    assert "step 6" in plots.plot_gradient_flow(history).axes[1].get_title()


def test_a_log_with_only_the_global_gradient_norm_shows_it_against_the_exploding_line():
    norm = np.geomspace(0.5, 500.0, 40)
    history = History({"loss": np.linspace(2.0, 1.0, 40), "grad_norm": norm})
    figure = plots.plot_gradient_flow(history)
    line_ax = figure.axes[0]
    assert line_ax.get_title() == "Gradient norm (all parameters)" and line_ax.get_yscale() == "log"
    (norm_line,) = [line for line in line_ax.lines if line.get_label() == "||grad||"]
    np.testing.assert_array_equal(norm_line.get_ydata(), norm)
    assert any(set(line.get_ydata()) == {100.0} for line in line_ax.lines)
    titles = [ax.get_title() for ax in plots.plot_report(diagnose(history)).axes]
    assert titles == ["Loss", "Gradient norm (all parameters)"]


def test_update_ratios_shade_the_healthy_band_and_dash_the_target():
    ax = plots.plot_update_ratios(synthetic_history()).axes[0]
    assert ax.get_yscale() == "log"
    (band,) = ax.patches
    assert (band.get_y(), band.get_y() + band.get_height()) == pytest.approx((1e-4, 1e-2))
    target = next(line for line in ax.lines if line.get_label() == "target 0.001")
    assert set(target.get_ydata()) == {1e-3} and target.get_linestyle() == "--"
    assert {line.get_label() for line in ax.lines} >= {"fc1.weight", "fc2.weight", "fc3.weight"}


def test_activation_health_draws_each_layer_on_zero_to_one_with_the_threshold():
    ax = plots.plot_activation_health(synthetic_history()).axes[0]
    labels = {line.get_label() for line in ax.lines}
    assert {"relu1 dead", "tanh2 saturated", "50% threshold"} <= labels
    threshold = next(line for line in ax.lines if line.get_label() == "50% threshold")
    assert set(threshold.get_ydata()) == {0.5}
    bottom, top = ax.get_ylim()
    assert bottom <= 0 and 1 <= top <= 1.1


def test_plots_draw_into_a_given_axes():
    from matplotlib.figure import Figure

    figure = Figure()
    axes = figure.subplots(2, 3).ravel()
    history = synthetic_history(steps=20)
    assert plots.plot_loss(history, ax=axes[0]) is figure
    assert plots.plot_update_ratios(history, ax=axes[1]) is figure
    assert plots.plot_activation_health(history, ax=axes[2]) is figure
    assert plots.plot_gradient_flow(history, axes=(axes[3], axes[4])) is figure
    lr_history = {"lr": [1e-3, 1e-2], "loss": [1.0, 0.5], "smoothed": [1.0, 0.5]}
    assert plots.plot_lr_finder(lr_history, ax=axes[5]) is figure
    assert list(figure.axes[:6]) == list(axes)
    assert all(ax.has_data() for ax in axes)


# ---------------------------------------------------------------- the dashboard


def test_report_title_names_the_diagnosis_and_the_first_recommendation():
    steps = 100
    loss = 2.0 * np.exp(-np.arange(steps) / 20) + 0.1
    history = History({"loss": loss, "grad_norm": np.geomspace(1.0, 1e4, steps)})  # exploding
    report = diagnose(history)
    assert report.primary == "exploding_gradients"
    title = plots.plot_report(report).get_suptitle()
    assert "exploding gradients [exploding_gradients]" in title
    assert f"First: {report.recommendations[0].text}" in title.replace("\n", " ")


def test_report_with_findings_marks_them_and_skips_panels_without_data():
    steps = 300
    loss = np.concatenate([np.linspace(2.0, 1.0, 150), np.full(150, 1.0)]) * (1 + 0.01 * np.sin(np.arange(steps)))
    loss[200:] *= np.exp(np.arange(100) / 15)  # the loss diverges from step 200
    history = History({"loss": loss, "grad_norm/fc.weight": np.geomspace(0.1, 1e4, steps)})
    report = diagnose(history)
    assert any(finding.step is not None for finding in report.findings), "the run was built to fire rules"
    figure = plots.plot_report(report)
    titles = [ax.get_title() for ax in figure.axes]
    assert any("Loss" in title for title in titles)
    assert any("Gradient norm" in title for title in titles)
    assert not any("Update" in title or "Activation" in title for title in titles)
    loss_ax = next(ax for ax in figure.axes if ax.get_title() == "Loss")
    for finding in report.findings:
        if finding.step is not None:
            assert finding.kind in text_of(loss_ax)
    assert report.primary in figure.get_suptitle()


def test_report_of_an_empty_history_says_nothing_was_recorded(tmp_path):
    figure = plots.plot_report(diagnose(History({})), path=tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "nothing was recorded" in text_of(figure.axes[0])
    assert "healthy" in figure.get_suptitle()


# ---------------------------------------------------------------- odd histories


COLUMN_FAMILIES = {
    "loss": ("loss",),
    "val_loss": ("val_loss",),
    "gradients": ("grad_norm/0.weight", "grad_norm/0.bias", "grad_norm/2.weight"),
    "global_gradient": ("grad_norm",),
    "update_ratios": ("update_ratio/0.weight", "update_ratio/2.weight"),
    "dead": ("act_dead_frac/1",),
    "saturated": ("act_sat_soft/3",),
    "repeated_steps": ("step",),
}
ODD_VALUES = st.one_of(st.just(np.nan), st.just(np.inf), st.just(-np.inf), st.just(0.0),
                       st.floats(-1e6, 1e6), st.floats(1e-12, 1.0))


@st.composite
def odd_histories(draw):
    """Any subset of the column families, 0 to 4 steps, values from NaN/Inf/0/negative/tiny, or
    whole columns of NaN; "repeated_steps" makes a step column that repeats, like an epoch."""
    length = draw(st.integers(0, 4))
    columns = {}
    for family in draw(st.sets(st.sampled_from(sorted(COLUMN_FAMILIES)))):
        for name in COLUMN_FAMILIES[family]:
            if name == "step":
                columns[name] = np.zeros(length)
            elif draw(st.booleans()):
                columns[name] = np.full(length, np.nan)
            else:
                columns[name] = draw(arrays(np.float64, length, elements=ODD_VALUES))
    return History(columns)


ALL_PLOTS = {
    "loss": lambda history: plots.plot_loss(history, [Finding("plateau", "flat", step=0)]),
    "gradient_flow": plots.plot_gradient_flow,
    "update_ratios": plots.plot_update_ratios,
    "activation_health": plots.plot_activation_health,
    "report": lambda history: plots.plot_report(diagnose(history)),
}


@pytest.mark.filterwarnings("error")
@given(history=odd_histories(), name=st.sampled_from(sorted(ALL_PLOTS)))
@example(history=History({}), name="loss")
@example(history=History({}), name="gradient_flow")
@example(history=History({"loss": [0.7]}), name="report")
@example(history=History({"loss": [np.nan, np.nan], "grad_norm/w": [np.nan, np.nan]}), name="gradient_flow")
@example(history=History({"update_ratio/w": [0.0, -1.0]}), name="update_ratios")
@example(history=History({"act_dead_frac/r": [np.nan], "act_sat_soft/t": [0.7]}), name="activation_health")
def test_odd_histories_draw_without_raising_or_warning(history, name):
    figure = ALL_PLOTS[name](history)
    if name != "report":  # the dashboard is made of the panels; drawing them once is enough
        render(figure)


@st.composite
def odd_lr_finder_histories(draw):
    """Any subset of the LR finder's keys, 0 to 4 points, odd values in each."""
    length = draw(st.integers(0, 4))
    keys = draw(st.sets(st.sampled_from(["lr", "loss", "smoothed"])))
    return {key: draw(arrays(np.float64, length, elements=ODD_VALUES)) for key in keys}


@pytest.mark.filterwarnings("error")
@settings(max_examples=12)  # few odd shapes to try: which keys, 0-4 points, one suggestion
@given(history=odd_lr_finder_histories(), suggestion=st.one_of(st.just(np.nan), st.floats(1e-8, 10.0), st.none()))
@example(history={}, suggestion=None)
@example(history={"lr": np.array([1e-3]), "loss": np.array([1.0]), "smoothed": np.array([np.nan])}, suggestion=1e-3)
def test_odd_lr_finder_histories_draw_without_raising_or_warning(history, suggestion):
    render(plots.plot_lr_finder(history, {"steep": suggestion, "other": 1e-3}))


# ---------------------------------------------------------------- imports


def test_importing_the_plots_does_not_import_matplotlib_and_drawing_never_uses_pyplot():
    script = (
        "import sys\n"
        "import diagnostics.plots, diagnostics.cli\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "from diagnostics import History\n"
        "import io\n"
        "diagnostics.plots.plot_loss(History({'loss': [1.0, 0.5]})).savefig(io.BytesIO(), format='png')\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr

