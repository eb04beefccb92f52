"""The command line: `analyze` reads CSV and JSONL logs from any framework (with the common
column aliases, or --column), prints the doctor's report or strict JSON, and writes the dashboard;
bad input ends with one line on stderr and exit code 2, never a traceback; `lr-find` runs the
range test on a toy task and prints what the LRFinder suggests; progress shows on a terminal only."""

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagnostics import load_history
from diagnostics.cli import COMMANDS, ProgressBar, build_toy_task, main
from diagnostics.doctor import diagnose
from diagnostics.lr_finder import LRFinder

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def exploding_run(steps=150, seed=0) -> dict:
    """Loss falling, then blowing up from step 100 with the gradient norm; validation every 10
    steps; a tanh layer saturated throughout (a column without its hard-saturation partner, so a
    finding carries a NaN in its evidence)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    loss = (2.0 * np.exp(-t / 25) + 0.3) * np.exp(0.03 * rng.standard_normal(steps))
    loss[100:] *= np.exp((t[100:] - 100) / 8)
    val_loss = np.full(steps, np.nan)
    val_loss[::10] = loss[::10] * 1.1
    grad_norm = np.exp(0.1 * rng.standard_normal(steps))
    grad_norm[100:] *= np.exp((t[100:] - 100) / 6)
    # Logged every 5 optimizer steps: a step column that a reader could not guess from the rows.
    return {"step": 5 * t, "loss": loss, "val_loss": val_loss, "lr": np.full(steps, 0.1), "grad_norm": grad_norm,
            "act_sat_soft/tanh": np.full(steps, 0.9)}


def write_csv(path, columns: dict) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow(["" if math.isnan(value) else repr(float(value)) for value in row])
    return path


def write_jsonl(path, columns: dict) -> Path:
    with open(path, "w") as handle:
        for row in zip(*columns.values()):
            record = {name: None if math.isnan(value) else float(value) for name, value in zip(columns, row)}
            handle.write(json.dumps(record) + "\n")
    return path


def renamed(columns: dict, renames: dict) -> dict:
    return {renames.get(name, name): values for name, values in columns.items()}


def strict_json(text: str):
    """Parse JSON refusing NaN and Infinity, which are not JSON."""
    def refuse(constant):
        raise AssertionError(f"{constant} is not valid JSON")
    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------- analyze


def test_analyze_prints_the_doctors_report_of_a_csv_log(tmp_path, capsys):
    log = write_csv(tmp_path / "train.csv", exploding_run())
    assert main(["analyze", str(log)]) == 0
    out, err = capsys.readouterr()
    assert out == str(diagnose(load_history(log))) + "\n"
    assert "Diagnosis: exploding gradients" in out
    assert err == ""


def test_analyze_prints_strict_json_for_a_jsonl_log(tmp_path, capsys):
    log = write_jsonl(tmp_path / "train.jsonl", exploding_run())
    assert main(["analyze", str(log), "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    expected = diagnose(load_history(log)).to_dict()
    assert printed["primary"] == expected["primary"] == "exploding_gradients"
    assert [f["kind"] for f in printed["findings"]] == [f["kind"] for f in expected["findings"]]
    saturation = next(f for f in printed["findings"] if f["kind"] == "saturation")
    assert saturation["evidence"]["hard_fraction"] is None  # NaN in the report, null in JSON


def test_analyze_writes_the_dashboard(tmp_path, capsys):
    log = write_csv(tmp_path / "train.csv", exploding_run())
    assert main(["analyze", str(log), "--plot", str(tmp_path / "report.png")]) == 0
    assert (tmp_path / "report.png").read_bytes().startswith(PNG_SIGNATURE)
    out, err = capsys.readouterr()
    assert "Diagnosis:" in out and "report.png" in err


@pytest.mark.parametrize("loss_name, step_name", [
    ("train_loss", "epoch"), ("training_loss", "global_step"), ("loss", "iteration"), ("loss", "iter"),
])
@pytest.mark.parametrize("writer, suffix", [(write_csv, ".csv"), (write_jsonl, ".jsonl")])
def test_common_column_names_are_read_as_loss_and_step(tmp_path, capsys, loss_name, step_name, writer, suffix):
    run = exploding_run()
    canonical = writer(tmp_path / f"canonical{suffix}", run)
    aliased = writer(tmp_path / f"aliased{suffix}", renamed(run, {"loss": loss_name, "step": step_name}))
    assert main(["analyze", str(canonical), "--json"]) == 0
    expected = strict_json(capsys.readouterr().out)
    assert main(["analyze", str(aliased), "--json"]) == 0
    assert strict_json(capsys.readouterr().out) == expected


def test_a_logs_own_loss_column_wins_over_an_alias(tmp_path, capsys):
    run = exploding_run()
    assert main(["analyze", str(write_csv(tmp_path / "loss.csv", run)), "--json"]) == 0
    expected = strict_json(capsys.readouterr().out)
    flat = np.full(len(run["loss"]), 1.0)  # a flat train_loss would change the findings if it were read
    assert main(["analyze", str(write_csv(tmp_path / "both.csv", {**run, "train_loss": flat})), "--json"]) == 0
    assert strict_json(capsys.readouterr().out) == expected


def test_column_option_maps_any_log_column(tmp_path, capsys):
    run = exploding_run()
    reference = write_jsonl(tmp_path / "reference.jsonl", run)
    assert main(["analyze", str(reference), "--json"]) == 0
    expected = strict_json(capsys.readouterr().out)
    log = write_jsonl(tmp_path / "metrics.jsonl", renamed(run, {"loss": "train/loss", "val_loss": "valid/loss"}))
    assert main(["analyze", str(log), "--json", "--column", "loss=train/loss", "--column", "val_loss=valid/loss"]) == 0
    assert strict_json(capsys.readouterr().out) == expected


# ---------------------------------------------------------------- bad input


def _bad_logs(tmp_path) -> dict:
    """name: (arguments, words the error must contain)."""
    good = write_csv(tmp_path / "good.csv", exploding_run(steps=30))
    (tmp_path / "noloss.csv").write_text("step,accuracy\n0,0.5\n1,0.6\n")
    (tmp_path / "text.csv").write_text("step,loss\n0,0.9\n1,oops\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("step,loss\n")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "broken.jsonl").write_text('{"loss": 1.0}\n{"loss": \n')
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    (tmp_path / "run.parquet").write_bytes(b"PAR1")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81")
    return {
        "missing file": (["analyze", str(tmp_path / "nope.csv")], ["no such file", "nope.csv"]),
        "no loss column": (["analyze", str(tmp_path / "noloss.csv")], ["no loss column", "accuracy", "--column"]),
        "non-numeric value": (["analyze", str(tmp_path / "text.csv")], ["'oops' is not a number", "row 2"]),
        "empty file": (["analyze", str(tmp_path / "empty.csv")], ["empty.csv is empty"]),
        "header only": (["analyze", str(tmp_path / "header.csv")], ["no rows"]),
        "blank jsonl": (["analyze", str(tmp_path / "empty.jsonl")], ["empty.jsonl is empty"]),
        "invalid json": (["analyze", str(tmp_path / "broken.jsonl")], ["line 2", "not JSON"]),
        "json not an object": (["analyze", str(tmp_path / "list.jsonl")], ["line 1", "JSON object"]),
        "unknown extension": (["analyze", str(tmp_path / "run.parquet")], ["unknown log format", ".parquet"]),
        "binary file": (["analyze", str(tmp_path / "binary.csv")], ["not a text file"]),
        "absent --column": (["analyze", str(good), "--column", "loss=nll"], ["no column 'nll'"]),
        "--column onto an existing column": (["analyze", str(good), "--column", "loss=val_loss"],
                                              ["already has a column 'loss'"]),
        "unknown image format": (["analyze", str(good), "--plot", str(tmp_path / "out.xyz")], ["'.xyz'"]),
        "missing plot folder": (["analyze", str(good), "--plot", str(tmp_path / "no" / "out.png")], ["no such folder"]),
        "lr-find plot format": (["lr-find", "--plot", str(tmp_path / "lr.bmpx")], ["'.bmpx'"]),
    }


BAD_INPUTS = [
    "missing file", "no loss column", "non-numeric value", "empty file", "header only", "blank jsonl",
    "invalid json", "json not an object", "unknown extension", "binary file", "absent --column",
    "--column onto an existing column", "unknown image format", "missing plot folder", "lr-find plot format",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_ends_with_one_line_on_stderr_and_exit_code_2(tmp_path, capsys, case):
    arguments, words = _bad_logs(tmp_path)[case]
    assert main(arguments) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("minigrad-diagnose: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err
    assert not list(tmp_path.glob("*.png")), "nothing is drawn after an error"


def test_usage_errors_exit_with_code_2(capsys):
    assert main([]) == 2
    assert main(["lr-find", "--num-iter", "0"]) == 2
    assert main(["lr-find", "--seed", "-1"]) == 2
    assert main(["analyze", "x.csv", "--column", "loss"]) == 2
    err = capsys.readouterr().err
    assert "integer >= 2" in err and "integer >= 0" in err and "NAME=LOGCOLUMN" in err
    assert "Traceback" not in err


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


# ---------------------------------------------------------------- lr-find


def test_lr_find_prints_the_finders_suggestions_and_writes_its_plot(tmp_path, capsys):
    arguments = ["lr-find", "--task", "spirals", "--num-iter", "25", "--seed", "3", "--plot", str(tmp_path / "lr.png")]
    assert main(arguments) == 0
    out, err = capsys.readouterr()
    model, optimizer, loss_fn, loader = build_toy_task("spirals", "sgd", seed=3)
    finder = LRFinder(model, optimizer, loss_fn).range_test(loader, num_iter=25)
    for method, lr in finder.suggestions().items():
        assert any(line.split()[:2] == [method, as_printed(lr)] for line in out.splitlines()), (method, out)
    assert f"Suggested learning rate: {as_printed(finder.suggestion().lr)}" in out
    assert (tmp_path / "lr.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "\r" not in err, "no progress bar when stderr is not a terminal"


def as_printed(lr: float) -> str:
    return f"{lr:.3g}" if math.isfinite(lr) else "none"


def test_lr_find_shows_progress_on_a_terminal(monkeypatch, capsys):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["lr-find", "--num-iter", "8"]) == 0
    steps_run = int(re.search(r"(\d+) of 8 steps", capsys.readouterr().out).group(1))
    shown = terminal.getvalue()
    assert shown.count("\r[") == steps_run  # redrawn after every step, in place
    assert shown.endswith(f"] {steps_run}/8\n")  # and the line is ended once the test is done


@pytest.mark.parametrize("task", ["moons", "sine"])
def test_lr_find_runs_every_task_with_adam(capsys, task):
    assert main(["lr-find", "--task", task, "--optimizer", "adam", "--num-iter", "10"]) == 0
    out = capsys.readouterr().out
    assert f"on {task} with adam" in out and "Suggested learning rate" in out


# ---------------------------------------------------------------- progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@given(total=st.integers(1, 500), data=st.data())
def test_progress_bar_fills_in_proportion_on_a_terminal(total, data):
    """The filled cells are the done fraction of the width, to within half a cell."""
    done = data.draw(st.integers(0, total))
    terminal = Terminal()
    bar = ProgressBar(terminal, width=20)
    bar(done, total)
    line = terminal.getvalue()
    assert line.startswith("\r[") and line.endswith(f"] {done}/{total}")
    cells = line[2:2 + 20]
    filled = cells.count("#")
    assert cells == "#" * filled + "." * (20 - filled)
    assert abs(filled - 20 * done / total) <= 0.5
    bar.close()
    assert terminal.getvalue().endswith("\n")


def test_progress_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for done in range(1, 11):
        bar(done, 10)
    bar.close()
    assert stream.getvalue() == ""


# ---------------------------------------------------------------- python -m diagnostics


def test_python_m_diagnostics_help_and_exit_codes(tmp_path):
    help_run = subprocess.run([sys.executable, "-m", "diagnostics", "--help"], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=120)
    assert help_run.returncode == 0, help_run.stderr
    assert "analyze" in help_run.stdout and "lr-find" in help_run.stdout
    bad_run = subprocess.run([sys.executable, "-m", "diagnostics", "analyze", str(tmp_path / "missing.csv")],
                             capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert bad_run.returncode == 2
    assert bad_run.stderr.startswith("minigrad-diagnose: error: no such file") and "Traceback" not in bad_run.stderr
