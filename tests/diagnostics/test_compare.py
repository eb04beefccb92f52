"""Run comparison: the run with the lowest validation loss ranks first whatever the noise and the
lengths, diverged and NaN-tailed runs rank last, steps_to_fraction measures speed (k times faster
decay, k times fewer steps; the loss scale does not matter), sparse validation and different
lengths work, hyperparameters from log headers appear, the figure marks each run's best point,
and `python -m diagnostics compare` prints the table or JSON and fails cleanly on bad logs."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics import History
from diagnostics.cli import main
from diagnostics.compare import compare_runs, steps_to_fraction, summarize
from diagnostics.probes import Recorder
from minigrad import nn, optim

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[2]

seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- synthetic runs


def decaying_run(floor, tau, length, noise=0.02, seed=0, val_every=10, step_every=1) -> dict:
    """Training loss (floor + e^(-t/tau)) with multiplicative minibatch noise exp(noise N(0, 1));
    validation 10 % above it, measured every `val_every` rows (NaN elsewhere)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    clean = floor + np.exp(-t / tau)
    val_loss = np.full(length, np.nan)
    val_loss[::val_every] = 1.1 * clean[::val_every] * np.exp(noise * rng.standard_normal(len(t[::val_every])))
    return {"step": step_every * t, "loss": clean * np.exp(noise * rng.standard_normal(length)), "val_loss": val_loss}


def break_run(run: dict, how: str, start: int) -> dict:
    """The run from row `start` on: NaN, Inf, or exploding (x e^((t - start) / 5))."""
    loss = run["loss"].copy()
    if how == "nan":
        loss[start:] = np.nan
    elif how == "inf":
        loss[start:] = np.inf
    else:
        loss[start:] *= np.exp(np.arange(len(loss) - start) / 5)
    return {**run, "loss": loss}


# ---------------------------------------------------------------- ranking


@given(best=st.integers(0, 2), lengths=st.lists(st.integers(150, 400), min_size=3, max_size=3),
       taus=st.lists(st.floats(3, 15), min_size=3, max_size=3), noise=st.floats(0, 0.05), seed=seeds)
def test_the_run_with_the_lowest_validation_loss_ranks_first(best, lengths, taus, noise, seed):
    # Floors a factor 2 apart: more than any minimum of the noise (|3 noise| < 0.15 in log) can bridge.
    floors = np.roll([0.1, 0.2, 0.4], best)
    names = ["run a", "run b", "run c"]
    runs = {name: decaying_run(floor, tau, length, noise, seed + i)
            for i, (name, floor, tau, length) in enumerate(zip(names, floors, taus, lengths))}
    comparison = compare_runs(runs)
    assert comparison.ranking == [names[i] for i in np.argsort(floors)]
    assert comparison.best.name == names[best]
    assert comparison.ranked_by == "best validation loss"
    for summary in comparison.summaries:
        run = runs[summary.name]
        measured = np.isfinite(run["val_loss"])
        assert summary.best_val == run["val_loss"][measured].min()
        assert summary.best_val_step == run["step"][np.nanargmin(run["val_loss"])]
        assert summary.best_train == run["loss"].min()
        assert summary.final_train == run["loss"][-1]
        assert summary.steps == len(run["loss"])
        assert not summary.diverged


@given(how=st.sampled_from(["nan", "inf", "explode"]), start=st.integers(100, 180),
       with_validation=st.booleans(), seed=seeds)
def test_diverged_and_nan_tail_runs_rank_last(how, start, with_validation, seed):
    # The broken run has the lowest loss of all before it breaks: only the divergence ranks it last.
    runs = {"slow": decaying_run(0.3, 10, 200, seed=seed), "fast": decaying_run(0.2, 5, 200, seed=seed + 1),
            "broken": break_run(decaying_run(0.05, 5, 200, seed=seed + 2), how, start)}
    if not with_validation:
        runs = {name: {"loss": run["loss"]} for name, run in runs.items()}
    comparison = compare_runs(runs)
    assert comparison.ranking == ["fast", "slow", "broken"]
    assert [summary.diverged for summary in comparison.summaries] == [False, False, True]
    assert comparison.ranked_by == ("best validation loss" if with_validation else "best training loss")
    broken = comparison.summaries[-1]
    assert broken.best_train < comparison.summaries[0].best_train
    assert math.isfinite(broken.best_train)


@given(seed=seeds)
def test_instability_counts_the_spikes_and_the_oscillation(seed):
    smooth = decaying_run(0.1, 20, 400, seed=seed)
    spiky = decaying_run(0.1, 20, 400, seed=seed + 1)
    spiky["loss"][[150, 300]] *= 3  # two isolated spikes
    oscillating = decaying_run(0.1, 20, 400, seed=seed + 2)
    oscillating["loss"][150:260] *= np.where(np.arange(110) % 2, 1.4, 1 / 1.4)  # every step reverses
    comparison = compare_runs({"smooth": smooth, "spiky": spiky, "oscillating": oscillating})
    instability = {summary.name: summary.instability for summary in comparison.summaries}
    assert instability == {"smooth": 0, "spiky": 2, "oscillating": 1}
    assert not any(summary.diverged for summary in comparison.summaries)


def test_runs_without_any_finite_loss_rank_last_and_show_dashes():
    comparison = compare_runs({"dead": {"loss": [np.nan] * 5}, "alive": decaying_run(0.1, 5, 50)})
    assert comparison.ranking == ["alive", "dead"]
    dead = comparison.summaries[-1]
    assert dead.diverged and math.isnan(dead.best_train) and math.isnan(dead.steps_to_fraction)
    row = str(comparison).splitlines()[3]
    assert row.split()[:3] == ["2", "dead", "5"] and "-" in row.split()


def test_a_recorder_is_a_run():
    """Two Recorders on the same model and data: the one that learns (lr 0.1) beats the one that
    cannot (lr 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]])
    recorders = {}
    for lr in (0.0, 0.1):
        mg.manual_seed(0)
        model = nn.Linear(3, 1)
        optimizer = optim.SGD(model.parameters(), lr=lr)
        recorder = Recorder(model)
        for _ in range(30):
            loss = nn.functional.mse_loss(model(mg.tensor(x.astype(np.float32))), mg.tensor(y.astype(np.float32)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recorder.step(loss=loss.item())
        recorder.detach()
        recorders[f"lr={lr}"] = recorder
    comparison = compare_runs(recorders)
    assert comparison.ranking == ["lr=0.1", "lr=0.0"]
    assert comparison.ranked_by == "best training loss"
    assert comparison.best.steps == 30


# ---------------------------------------------------------------- speed


@given(tau_fast=st.floats(8, 20), k=st.floats(1.5, 5), floor=st.floats(0.01, 0.5),
       fraction=st.floats(0.5, 0.95), noise=st.floats(0, 0.02), seed=seeds)
def test_a_run_that_decays_k_times_faster_needs_about_k_times_fewer_steps(tau_fast, k, floor, fraction, noise, seed):
    length = int(20 * k * tau_fast)  # long enough for both runs to reach their floor
    slow = decaying_run(floor, k * tau_fast, length, noise, seed)
    fast = decaying_run(floor, tau_fast, length, noise, seed + 1)
    slow_steps = steps_to_fraction(slow["loss"], slow["step"], fraction)
    fast_steps = steps_to_fraction(fast["loss"], fast["step"], fraction)
    # The smoothing's window (a few rows) and whole steps blur the fast run most: about 15 %.
    assert slow_steps / k == pytest.approx(fast_steps, rel=0.25)


@given(scale=st.floats(-3, 3).map(lambda exponent: 10.0**exponent), tau=st.floats(3, 30),
       fraction=st.floats(0.1, 0.99), noise=st.floats(0, 0.1), seed=seeds)
def test_scaling_the_loss_does_not_change_steps_to_fraction(scale, tau, fraction, noise, seed):
    run = decaying_run(0.1, tau, 300, noise, seed, step_every=3)
    assert steps_to_fraction(scale * run["loss"], run["step"], fraction) == \
        steps_to_fraction(run["loss"], run["step"], fraction)


def test_steps_to_fraction_counts_steps_not_rows_and_skips_non_finite_entries():
    run = decaying_run(0.1, 10, 200, noise=0.0, step_every=5)
    rows = steps_to_fraction(run["loss"], np.arange(200), 0.9)
    assert steps_to_fraction(run["loss"], run["step"], 0.9) == 5 * rows
    with_gaps = run["loss"].copy()
    with_gaps[150:] = np.nan  # after the floor is reached: the answer stays
    assert steps_to_fraction(with_gaps, run["step"], 0.9) == 5 * rows


@pytest.mark.parametrize("loss", [np.ones(50), np.linspace(1, 2, 50), [1.0], [], [np.nan] * 5, -np.ones(20)],
                         ids=["constant", "rising", "one point", "empty", "NaN only", "negative"])
def test_steps_to_fraction_is_nan_when_the_loss_never_improved(loss):
    assert math.isnan(steps_to_fraction(loss, np.arange(len(loss))))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.0, 1.5, float("nan")])
def test_a_fraction_outside_0_1_is_refused(fraction):
    run = decaying_run(0.1, 10, 50)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        steps_to_fraction(run["loss"], run["step"], fraction)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        compare_runs({"run": run}, fraction=fraction)


# ---------------------------------------------------------------- sparse validation, lengths


def test_sparse_validation_and_different_lengths():
    short = decaying_run(0.2, 10, 120, val_every=25, seed=1)
    long = decaying_run(0.1, 20, 300, val_every=7, step_every=2, seed=2)
    long["val_loss"][-1] = np.nan  # the run ends between two validations
    comparison = compare_runs({"short": short, "long": long})
    assert comparison.ranking == ["long", "short"]
    by_name = {summary.name: summary for summary in comparison.summaries}
    assert (by_name["short"].steps, by_name["long"].steps) == (120, 300)
    assert by_name["short"].best_val_step % 25 == 0
    assert by_name["long"].best_val_step % 14 == 0  # validation every 7 rows, logged every 2 steps
    assert by_name["long"].final_val == long["val_loss"][np.isfinite(long["val_loss"])][-1]
    assert by_name["long"].steps_to_fraction % 2 == 0


def test_a_run_without_validation_ranks_after_runs_with_it():
    comparison = compare_runs({"no val": {"loss": decaying_run(0.01, 5, 100)["loss"]},
                               "val": decaying_run(0.2, 5, 100)})
    assert comparison.ranking == ["val", "no val"]
    assert math.isnan(comparison.summaries[1].best_val)


# ---------------------------------------------------------------- hyperparameters and text


def test_hyperparameters_from_a_csv_header_and_a_jsonl_record_appear(tmp_path):
    csv_log = tmp_path / "sgd.csv"
    csv_log.write_text("# lr=0.1, optimizer=sgd, batch_size=32\nstep,loss,val_loss\n0,2.0,2.2\n1,1.0,\n2,0.5,0.6\n")
    jsonl_log = tmp_path / "adam.jsonl"
    jsonl_log.write_text('{"step": 0, "loss": 2.0}\n{"hyperparameters": {"lr": 0.001, "optimizer": "adam"}}\n'
                         '{"step": 1, "loss": 0.8, "val_loss": 0.9}\n{"step": 2, "loss": 0.4}\n')
    comparison = compare_runs({"sgd": csv_log, "adam": str(jsonl_log)},
                              hyperparameters={"adam": {"warmup": 100}})
    by_name = {summary.name: summary for summary in comparison.summaries}
    assert by_name["sgd"].hyperparameters == {"lr": 0.1, "optimizer": "sgd", "batch_size": 32}
    assert by_name["adam"].hyperparameters == {"lr": 0.001, "optimizer": "adam", "warmup": 100}
    text = str(comparison)
    assert "sgd: lr=0.1, optimizer=sgd, batch_size=32" in text
    assert "adam: lr=0.001, optimizer=adam, warmup=100" in text
    assert comparison.to_dict()["runs"][0]["hyperparameters"] == by_name[comparison.ranking[0]].hyperparameters


def test_hyperparameters_of_a_history_written_by_to_csv_and_to_jsonl_survive(tmp_path):
    run = decaying_run(0.1, 10, 50)
    History(run, {"lr": 0.3, "seed": 7}).to_csv(tmp_path / "a.csv")
    History(run, {"lr": 0.03, "schedule": "cosine"}).to_jsonl(tmp_path / "b.jsonl")
    comparison = compare_runs({"a": tmp_path / "a.csv", "b": tmp_path / "b.jsonl", "c": History(run)})
    settings = {summary.name: summary.hyperparameters for summary in comparison.summaries}
    assert settings == {"a": {"lr": 0.3, "seed": 7}, "b": {"lr": 0.03, "schedule": "cosine"}, "c": {}}


def test_the_table_lists_the_runs_in_rank_order():
    comparison = compare_runs({"worse": decaying_run(0.3, 5, 100), "better": decaying_run(0.1, 5, 100)})
    lines = str(comparison).splitlines()
    assert lines[0].split()[:2] == ["rank", "run"]
    assert [line.split()[1] for line in lines[2:4]] == ["better", "worse"]
    assert lines[4] == "ranked by best validation loss; diverged runs last"


def test_to_dict_is_json_ready_and_a_copy():
    comparison = compare_runs({"run": History(decaying_run(0.1, 5, 100), {"lr": 0.1})})
    as_dict = comparison.to_dict()
    json.dumps(as_dict)
    as_dict["runs"][0]["hyperparameters"]["lr"] = 99
    as_dict["runs"][0]["best_val"] = -1.0
    assert comparison.best.hyperparameters == {"lr": 0.1} and comparison.best.best_val > 0


@pytest.mark.parametrize("runs, error", [({}, ValueError), (["a.csv"], TypeError), ({"x": 3.0}, TypeError)],
                         ids=["empty", "a list", "not a run"])
def test_bad_runs_are_refused_with_a_clear_error(runs, error):
    with pytest.raises(error, match="expected|at least one run"):
        compare_runs(runs)


def test_summarize_of_an_empty_history_does_not_raise():
    summary = summarize("empty", History({}))
    assert summary.steps == 0 and math.isnan(summary.best_train) and summary.diverged


# ---------------------------------------------------------------- the figure


def test_the_figure_overlays_the_runs_and_stars_each_best_point(tmp_path):
    runs = {"fast": decaying_run(0.01, 5, 200, seed=1), "slow": decaying_run(0.05, 20, 300, seed=2),
            "no val": {"loss": decaying_run(0.1, 10, 100, seed=3)["loss"]},
            "nan tail": break_run(decaying_run(0.02, 5, 200, seed=4), "nan", 150)}
    comparison = compare_runs(runs)
    path = tmp_path / "runs.png"
    figure = comparison.plot(path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    ax = figure.axes[0]
    assert ax.get_yscale() == "log"  # from ~1 down to ~0.01: two decades
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert len(stars) == len(runs)
    for star, summary in zip(stars, comparison.summaries):
        history = comparison.histories[summary.name]
        if math.isfinite(summary.best_val):
            expected = (summary.best_val_step, summary.best_val)
        else:
            best = int(np.nanargmin(history["loss"]))
            expected = (history.steps[best], history["loss"][best])
        assert tuple(star.get_xydata()[0]) == expected
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 3  # every run with validation
    assert [text.get_text() for text in ax.get_legend().get_texts()] == comparison.ranking


def test_the_figure_stays_linear_within_a_decade():
    figure = compare_runs({"a": decaying_run(1.0, 5, 50), "b": decaying_run(1.5, 5, 50)}).plot()
    assert figure.axes[0].get_yscale() == "linear"


def test_the_figure_of_runs_without_a_finite_loss_says_so():
    figure = compare_runs({"dead": {"loss": [np.nan, np.nan]}}).plot()
    assert "no loss recorded" in [text.get_text() for text in figure.axes[0].texts]


# ---------------------------------------------------------------- command line


def write_logs(folder: Path) -> tuple[Path, Path]:
    History(decaying_run(0.2, 10, 100, seed=1), {"lr": 0.1, "optimizer": "sgd"}).to_csv(folder / "sgd.csv")
    History(decaying_run(0.1, 10, 150, seed=2), {"lr": 0.001, "optimizer": "adam"}).to_jsonl(folder / "adam.jsonl")
    return folder / "sgd.csv", folder / "adam.jsonl"


def test_cli_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    sgd, adam = write_logs(tmp_path)
    figure = tmp_path / "runs.png"
    assert main(["compare", str(sgd), str(adam), "--plot", str(figure)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[1] for line in lines[2:4]] == ["adam", "sgd"]
    assert "  sgd: lr=0.1, optimizer=sgd" in lines and "  adam: lr=0.001, optimizer=adam" in lines
    assert figure.read_bytes().startswith(PNG_SIGNATURE)
    assert err == f"wrote {figure}\n"


def test_cli_json_is_strict_and_ranked(tmp_path, capsys):
    sgd, adam = write_logs(tmp_path)
    assert main(["compare", str(sgd), str(adam), str(sgd), "--json", "--fraction", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert result["ranked_by"] == "best validation loss"
    assert [run["name"] for run in result["runs"]] == ["adam", "sgd", "sgd'"]  # the same file twice: two runs
    assert result["runs"][0]["hyperparameters"] == {"lr": 0.001, "optimizer": "adam"}
    assert result["runs"][0]["steps_to_fraction"] == steps_to_fraction(
        decaying_run(0.1, 10, 150, seed=2)["loss"], np.arange(150), 0.5)


def test_cli_json_writes_null_for_missing_values(tmp_path, capsys):
    log = tmp_path / "train_only.csv"
    History({"loss": [1.0, 0.5, 0.25]}).to_csv(log)
    assert main(["compare", str(log), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["best_val"] is None and run["best_val_step"] is None and run["best_train"] == 0.25


BAD_LOGS = {
    "missing file": None,
    "no loss column": "step,accuracy\n0,0.5\n1,0.6\n",
    "not a number": "step,loss\n0,1.0\n1,abc\n",
    "empty": "",
    "header only": "step,loss\n",
}


@pytest.mark.parametrize("problem", list(BAD_LOGS))
def test_cli_fails_cleanly_on_a_bad_log(problem, tmp_path, capsys):
    good, _ = write_logs(tmp_path)
    bad = tmp_path / "bad.csv"
    if BAD_LOGS[problem] is not None:
        bad.write_text(BAD_LOGS[problem])
    assert main(["compare", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("minigrad-diagnose: error: ")
    assert "bad.csv" in err and "Traceback" not in err


@pytest.mark.parametrize("arguments, message", [
    (["--plot", "runs.xyz"], "unknown image format"),
    (["--plot", "no/such/folder/runs.png"], "no such folder"),
])
def test_cli_refuses_a_bad_figure_path_before_reading(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good, _ = write_logs(tmp_path)
    assert main(["compare", str(good), *arguments]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("fraction", ["0", "1", "abc"])
def test_cli_refuses_a_fraction_outside_0_1(fraction, tmp_path, capsys):
    good, _ = write_logs(tmp_path)
    assert main(["compare", str(good), "--fraction", fraction]) == 2
    err = capsys.readouterr().err
    assert "argument --fraction: expected a number in (0, 1)" in err and "Traceback" not in err


def test_python_m_diagnostics_compare(tmp_path):
    sgd, adam = write_logs(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"loss": 1.0}\nnot json\n')
    command = [sys.executable, "-m", "diagnostics", "compare"]
    good_run = subprocess.run(command + [str(sgd), str(adam), "--json"], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=120)
    assert good_run.returncode == 0, good_run.stderr
    assert [run["name"] for run in json.loads(good_run.stdout)["runs"]] == ["adam", "sgd"]
    bad_run = subprocess.run(command + [str(sgd), str(bad)], capture_output=True, text=True, cwd=REPO_ROOT,
                             timeout=120)
    assert bad_run.returncode == 2
    assert bad_run.stderr.splitlines() == ["minigrad-diagnose: error: bad.jsonl line 2: not JSON (Expecting value)"]
