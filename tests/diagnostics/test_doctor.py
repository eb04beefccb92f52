"""The doctor: every row of the failure-signature table is named as the primary cause of a history
built to show it; a healthy training run (and a history with notes only) is healthy; the text
report has its documented structure; logs written by History feed the same detectors."""

import json
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from diagnostics import KINDS, History, load_history
from diagnostics.doctor import FAILURE_SIGNATURES, diagnose
from diagnostics.model_checks import audit_init
from diagnostics.probes import Recorder
from minigrad import nn, optim

N = 600
ONSET = 200
LAYERS = ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias")
t = np.arange(N, dtype=float)


def healthy_columns(seed=0):
    """A healthy run as the Recorder would log it: a noisy loss decaying to a floor, validation
    every 10 steps, gradient norms ~0.1, mean |g| ~1e-3, update ratios ~1e-3, about half of the
    ReLU outputs 0 and 5 % of units dead; all with multiplicative noise."""
    rng = np.random.default_rng(seed)

    def jitter(level, noise=0.2):
        return level * np.exp(noise * rng.standard_normal(N))

    loss = (2.0 * np.exp(-t / 60) + 0.05) * np.exp(0.05 * rng.standard_normal(N))
    val = np.full(N, np.nan)
    val[::10] = 2.0 * np.exp(-t[::10] / 60) + 0.06
    columns = {"step": t.copy(), "loss": loss, "val_loss": val, "lr": np.full(N, 1e-2)}
    for name in LAYERS:
        scale = 1.0 if name.endswith("weight") else 0.3
        columns[f"grad_norm/{name}"] = jitter(0.1 * scale)
        columns[f"grad_mean_abs/{name}"] = jitter(1e-3 * scale)
        columns[f"grad_nonfinite/{name}"] = np.zeros(N)
        columns[f"update_ratio/{name}"] = jitter(1e-3)
    columns["grad_norm"] = np.sqrt(sum(columns[f"grad_norm/{name}"] ** 2 for name in LAYERS))
    for module in ("1", "3"):
        columns[f"act_zero_frac/{module}"] = np.clip(jitter(0.5, 0.05), 0, 1)
        columns[f"act_dead_frac/{module}"] = np.clip(jitter(0.05, 0.1), 0, 1)
    return columns


def with_loss(columns, loss, val_factor=1.05):
    columns["loss"] = loss
    columns["val_loss"] = np.where(np.isfinite(columns["val_loss"]), loss * val_factor, np.nan)


def noise(seed, level):
    return np.exp(level * np.random.default_rng(seed + 100).standard_normal(N))


# ---------------------------------------------------------------- one builder per row of the table
# Each takes healthy columns and a seed and writes the row's symptoms into them (gradient norm,
# loss trend, and the layer statistics the row's detector reads), from ONSET unless the row says
# "from the start".


def exploding_gradients(columns, seed):
    columns["grad_norm"][ONSET:] = np.geomspace(200, 1e5, N - ONSET)


def non_finite(columns, seed):
    columns["grad_nonfinite/2.weight"][ONSET:] = 5
    columns["grad_norm"][ONSET:] = np.inf
    columns["loss"][ONSET:] = np.nan
    columns["val_loss"][ONSET:] = np.nan


def dead_relu(columns, seed):
    columns["act_dead_frac/1"][ONSET:] = 0.9
    columns["act_zero_frac/1"][ONSET:] = 0.97
    columns["grad_mean_abs/0.weight"][ONSET:] = 1e-9      # no gradient reaches the layer before
    columns["loss"][ONSET:] = columns["loss"][ONSET] * noise(seed, 0.05)[ONSET:]


def saturation(columns, seed):
    columns["act_sat_soft/3"] = np.where(t < ONSET, 0.05, 0.9)
    columns["act_sat_hard/3"] = np.where(t < ONSET, 0.0, 0.2)
    columns["grad_mean_abs/0.weight"][ONSET:] = 1e-9


def vanishing_gradients(columns, seed):
    columns["grad_mean_abs/0.weight"][:] = 1e-9
    columns["grad_norm/0.weight"][:] *= 1e-5


def divergence(columns, seed):
    columns["loss"][400:] *= np.geomspace(1, 50, N - 400)


def oscillation(columns, seed):
    level = 2.0 * np.exp(-t / 150) + 0.05
    columns["loss"] = level * np.where(t % 2 == 0, 1.4, 1 / 1.4) * noise(seed, 0.02)


def loss_spike(columns, seed):
    columns["loss"][300:310] *= 4          # the spike...
    columns["loss"][310:] *= 1.6           # ...and the loss never gets back to where it was


def lr_too_low(columns, seed):
    with_loss(columns, 2.0 * np.exp(-t / 3000) * noise(seed, 0.02))


def plateau(columns, seed):
    """Stuck at 1.5 until step 300 (a saddle), then escaping to a low loss."""
    stuck = 1.5 + 0.5 * np.exp(-t / 10)
    escaped = 0.05 + 1.45 * np.exp(-(t - 300) / 40)
    with_loss(columns, np.where(t < 300, stuck, escaped) * noise(seed, 0.02))


def overfitting(columns, seed):
    val = np.where(t < 300, 2.0 * np.exp(-t / 60) + 0.3, 0.3 + 0.002 * (t - 300))
    columns["val_loss"] = np.where(np.isfinite(columns["val_loss"]), val, np.nan)


def underfitting(columns, seed):
    with_loss(columns, (0.6 + 0.4 * np.exp(-t / 200)) * noise(seed, 0.001))


def double_descent(columns, seed):
    second_descent = 0.2 * (t > 250) * (1 - np.exp(-(t - 250) / 100))
    val = 0.5 + 0.4 * np.exp(-t / 50) + 0.3 * np.exp(-(((t - 250) / 60) ** 2)) - second_descent
    columns["val_loss"] = np.where(np.isfinite(columns["val_loss"]), val, np.nan)


def update_ratio(columns, seed):
    for name in LAYERS:
        columns[f"update_ratio/{name}"][:] = 0.3  # far (> 10x) above the healthy band: a warning, not a note


def clipping(columns, seed):
    columns["clip_fired"] = np.ones(N)
    columns["clip_norm"] = columns["grad_norm"].copy()
    columns["clip_threshold"] = np.full(N, 0.01)


def bad_init(columns, seed):
    vanishing_gradients(columns, seed)  # the symptom; the cause comes from audit_init (extra_findings)


BUILDERS = {builder.__name__: builder for builder in (
    exploding_gradients, non_finite, dead_relu, saturation, vanishing_gradients, bad_init, divergence,
    oscillation, loss_spike, lr_too_low, plateau, overfitting, underfitting, double_descent, update_ratio,
    clipping)}
# Rows whose findings are notes (severity info), which never make a run unhealthy: clipping (it
# fires always or never: a setting to revisit, not a failure).
NOTE_ROWS = {"clipping"}


def badly_initialized_network_findings():
    """audit_init on a tanh network with weights 100x too small: the cause of vanishing gradients."""
    mg.manual_seed(0)
    model = nn.Sequential(*[layer for _ in range(4) for layer in (nn.Linear(16, 16), nn.Tanh())])
    for module in model:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.0025)
    return audit_init(model, np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32))


def diagnosis_of(row, seed=0):
    columns = healthy_columns(seed)
    BUILDERS[row](columns, seed)
    extra = badly_initialized_network_findings() if row == "bad_init" else ()
    return diagnose(History(columns), extra_findings=extra)


def test_every_row_of_the_table_has_a_history_that_shows_it():
    assert {cause.kind for cause in FAILURE_SIGNATURES} == set(BUILDERS)
    assert all(cause.kind in KINDS for cause in FAILURE_SIGNATURES)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("row", [cause.kind for cause in FAILURE_SIGNATURES if cause.kind not in NOTE_ROWS])
def test_the_primary_cause_is_the_row_the_history_shows(row, seed):
    report = diagnosis_of(row, seed)
    assert report.primary == row, str(report)
    assert report.recommendations[0].cause == row
    assert_report_structure(report)


@pytest.mark.parametrize("row", sorted(NOTE_ROWS))
def test_rows_that_are_notes_keep_the_run_healthy_and_are_reported(row):
    report = diagnosis_of(row)
    assert report.primary == "healthy" and report.kinds == {row}
    assert all(finding.severity == "info" for finding in report.findings)
    text = str(report)
    assert "Diagnosis: healthy" in text and "no rule fired" not in text
    assert [line for line in text.splitlines() if line.startswith("  note: ")] == [
        f"  note: {finding.message}" for finding in report.findings]
    assert report.recommendations == []


@pytest.mark.parametrize("seed", range(3))
def test_a_healthy_history_is_healthy(seed):
    report = diagnose(History(healthy_columns(seed)))
    assert report.primary == "healthy" and report.findings == [] and report.kinds == {"healthy"}
    assert "Diagnosis: healthy — no rule fired" in str(report).splitlines()


def test_the_root_cause_outranks_its_symptoms():
    report = diagnosis_of("dead_relu")
    assert report.kinds == {"dead_relu", "vanishing_gradients"}
    assert report.ranked_causes[0] == "dead_relu"
    # The vanishing gradients are explained by the dead units: their fixes are not repeated.
    assert {recommendation.cause for recommendation in report.recommendations} == {"dead_relu"}


# ---------------------------------------------------------------- the text report


def assert_report_structure(report):
    """The text report of an unhealthy run: a header, the diagnosis with its signature and one
    evidence line per explaining finding, the numbered recommendations, then the rest."""
    lines = str(report).splitlines()
    assert lines[0] == f"minigrad doctor: {report.checked_steps} recorded steps"
    assert re.fullmatch(r"Loss: \S+ -> \S+ \(best \S+\)", lines[1])
    assert re.fullmatch(r"Gradient norm: \S+ at the last step \(median \S+\)", lines[2])
    cause = next(cause for cause in FAILURE_SIGNATURES if cause.kind == report.primary)
    assert lines[3] == f"Diagnosis: {cause.title}"
    assert lines[4] == f"  signature: gradient norm {cause.gradient_norm}; loss {cause.loss_trend}"
    heading = lines.index("Recommendations:")
    evidence = lines[5:heading]
    explained = {cause.kind, *cause.explains}
    expected = [finding for finding in report.findings if finding.kind in explained]
    assert len(evidence) == len(expected) >= 1
    for line, finding in zip(evidence, expected):
        where = f"step {finding.step}: " if finding.step is not None else ""
        assert line == f"  - {where}{finding.message}"
    numbered = []
    for line in lines[heading + 1:]:
        match = re.fullmatch(r"  (\d+)\. (.+)  \[(\w+)\]", line)
        if match is None:
            break
        numbered.append(match)
    assert [int(match[1]) for match in numbered] == list(range(1, len(numbered) + 1))
    assert 1 <= len(numbered) <= 6
    assert [(m[2], m[3]) for m in numbered] == [(r.text, r.cause) for r in report.recommendations[:len(numbered)]]
    rest = lines[heading + 1 + len(numbered):]
    if rest:
        assert rest[0] == "Also found:" and all(line.startswith("  - [") for line in rest[1:])


def test_the_report_lists_the_other_findings_under_also_found():
    columns = healthy_columns()
    exploding_gradients(columns, 0)
    update_ratio(columns, 0)
    dead_relu(columns, 0)
    report = diagnose(History(columns))
    assert_report_structure(report)
    text = str(report)
    assert "Also found:" in text
    also = text.split("Also found:")[1]
    assert all(str(finding) in also for finding in report.findings
               if finding.kind not in {report.primary, *next(c for c in FAILURE_SIGNATURES
                                                              if c.kind == report.primary).explains})


def test_to_dict_is_json_ready():
    report = diagnosis_of("exploding_gradients")
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["primary"] == "exploding_gradients"
    assert as_dict["steps"] == N and as_dict["recommendations"][0]["cause"] == "exploding_gradients"


# ---------------------------------------------------------------- sources and errors


def as_json(findings):
    """Findings as JSON text: comparable even when the evidence holds NaN."""
    return json.dumps([finding.to_dict() for finding in findings], sort_keys=True)


@pytest.mark.parametrize("row", ["exploding_gradients", "non_finite", "overfitting", "clipping", "dead_relu"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_logs_written_by_history_feed_the_same_detectors(tmp_path, row, suffix):
    columns = healthy_columns()
    BUILDERS[row](columns, 0)
    history = History(columns, metadata={"lr": 0.01, "model": "mlp"})
    path = tmp_path / f"run{suffix}"
    (history.to_csv if suffix == ".csv" else history.to_jsonl)(path)
    loaded = load_history(path)
    assert list(loaded.columns) == list(history.columns)
    for name, values in history.columns.items():
        np.testing.assert_array_equal(loaded[name], values)
    direct, from_log, from_path = diagnose(history), diagnose(loaded), diagnose(str(path))
    assert as_json(from_log.findings) == as_json(direct.findings)
    assert as_json(from_path.findings) == as_json(direct.findings)
    assert from_log.primary == direct.primary and str(from_log) == str(direct)


def test_a_dict_of_columns_and_a_history_give_the_same_report():
    columns = healthy_columns()
    plateau(columns, 0)
    assert str(diagnose(columns)) == str(diagnose(History(columns)))


def test_bad_sources_and_unknown_thresholds_are_refused():
    with pytest.raises(TypeError, match="expected a Recorder, a History"):
        diagnose(42)
    with pytest.raises(ValueError, match="unknown threshold not_a_threshold"):
        diagnose(History(healthy_columns()), not_a_threshold=1.0)


def test_thresholds_reach_every_detector_family():
    history = History(healthy_columns())
    assert diagnose(history, exploding_norm=0.01).primary == "exploding_gradients"
    assert diagnose(history, dead_layer_fraction=0.01).primary == "dead_relu"
    assert diagnose(history, underfit_near_initial=1e-9).primary == "underfitting"


@pytest.mark.parametrize("columns", [{}, {"loss": []}, {"loss": [1.0]}, {"loss": [np.nan] * 5},
                                     {"loss": [2.0] * 50}, {"step": [np.nan] * 3, "loss": [np.nan] * 3}])
def test_odd_histories_get_a_report_not_an_exception(columns):
    report = diagnose(columns)
    assert str(report).startswith("minigrad doctor:")


# ---------------------------------------------------------------- a real healthy run


def spirals_run(seed, steps=300):
    """The healthy reference run: a 2-64-64-2 ReLU MLP initialized from `seed`, Adam lr 1e-2, full
    batch on the spirals (data seed 0: on some other draws of 450 noisy points this network
    really does overfit within 300 steps), validation every 10 steps, recorded at every step."""
    mg.manual_seed(seed)
    data = mg.data.spirals(seed=0)
    x, y = mg.tensor(data.X_train), mg.tensor(data.y_train)
    x_val, y_val = mg.tensor(data.X_val), mg.tensor(data.y_val)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    recorder = Recorder(model)
    for step in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        val_loss = None
        if step % 10 == 0 or step == steps - 1:
            model.eval()
            with mg.no_grad():
                val_loss = F.cross_entropy(model(x_val), y_val).item()
            model.train()
        recorder.step(loss=loss.item(), lr=optimizer.param_groups[0]["lr"], val_loss=val_loss)
    recorder.detach()
    return recorder


@pytest.mark.parametrize("seed", range(3))
def test_a_healthy_training_run_raises_no_alarm(seed):
    recorder = spirals_run(seed)
    report = diagnose(recorder)
    assert report.primary == "healthy", str(report)
    assert [f for f in report.findings if f.severity != "info"] == []
    history = recorder.history
    assert len(history) == 300 and np.isfinite(history["val_loss"]).sum() == 31
    assert history["loss"][-1] < 0.2 * history["loss"][0]  # it did learn
    assert str(diagnose(history)) == str(report)
