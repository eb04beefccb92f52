"""The failure-mode lab: each training failure reproduced, diagnosed by the doctor, and fixed.

Every experiment is a short module (see base.py for the shape): `reproduce()` builds the
failing setup, `fix()` applies the textbook remedy, both train with a Recorder attached, and
the module's STATEMENT says what you should see. Run them from the command line:

    python -m diagnostics lab list
    python -m diagnostics lab run exploding_gradients --plot figures/
    python -m diagnostics lab run all
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

# In the order of the README's gallery.
NAMES = (
    "exploding_gradients",
    "vanishing_gradients",
    "dead_relu",
    "saturation",
    "lr_too_low",
    "oscillation",
    "loss_spike",
    "overfitting",
    "underfitting",
    "double_descent",
    "where_trap",
    "glorot_bengio",
    "batch_size",
    "optimizers",
)


def load(name: str):
    """The experiment module called `name`."""
    if name not in NAMES:
        raise KeyError(f"no experiment named {name!r}; experiments: {', '.join(NAMES)}")
    return importlib.import_module(f"diagnostics.experiments.{name}")


def run_experiment(name: str, plot_dir=None, fast: bool = False, out=print) -> dict:
    """Run reproduce() and fix() of one experiment, print both diagnoses, and (with
    `plot_dir`) save each run's dashboard and a side-by-side loss figure there."""
    experiment = load(name)
    out(f"== {name}: {experiment.TITLE}")
    out(f"   expected: {experiment.STATEMENT}")
    runs = {}
    for stage in ("reproduce", "fix"):
        start = time.perf_counter()
        run = getattr(experiment, stage)(fast=fast)
        runs[stage] = run
        out(f"-- {stage}: {run.summary()} ({time.perf_counter() - start:.1f} s)")
        if "table" in run.measurements and hasattr(experiment, "format_table"):
            out(_indent(experiment.format_table(run.measurements["table"])))
        out(_indent(str(run.report)))
    if plot_dir is not None:
        for path in save_figures(name, runs, Path(plot_dir)):
            out(f"   wrote {path}")
    return runs


# Gallery images are small: the README shows them at about 600 pixels wide.
FIGURE_DPI = 50


def save_figures(name: str, runs: dict, directory: Path) -> list[Path]:
    """Each run's dashboard (the doctor's diagnosis as its title): <name>_reproduce.png and
    <name>_fix.png."""
    from diagnostics import plots

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stage, run in runs.items():
        path = directory / f"{name}_{stage}.png"
        plots.plot_report(run.report, path=path, dpi=FIGURE_DPI)
        paths.append(path)
    return paths


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
