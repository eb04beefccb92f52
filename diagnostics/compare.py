"""Compare training runs side by side: best and final losses, speed, stability, and a ranking.

    comparison = compare_runs({"sgd": rec_sgd, "adam": rec_adam, "log": "run3.csv"})
    print(comparison)              # the table, best run first
    comparison.ranking             # run names, best first
    comparison.plot("runs.png")    # loss curves overlaid, each run's best point marked

Each run is a Recorder, a History, a dict of columns or the path of a CSV/JSONL log (its
hyperparameters, if the log carries them, appear in the table). Per run:

    best_val, best_val_step   the lowest validation loss and the step it was reached at
    final_val, best_train, final_train
    steps_to_fraction         steps until the training loss (smoothed) first covered
                              `fraction` (default 90 %) of its way from the initial to the best
                              value, in log space: a measure of speed that ignores the scale
    instability               number of loss_spike and oscillation findings (curves.py)
    diverged                  the training loss went NaN/Inf or diverged

Ranking: runs that diverged last; then by best validation loss, or by best training loss when
no run has validation. Runs of different lengths, sparse validation and NaN tails are fine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from diagnostics.curves import analyze_curves, smooth_zero_lag
from diagnostics.doctor import as_history

DEFAULT_FRACTION = 0.9
SPEED_SMOOTHING = 0.6


@dataclass
class RunSummary:
    """The numbers of one run in a comparison."""

    name: str
    steps: int
    best_train: float
    final_train: float
    best_val: float
    best_val_step: float
    final_val: float
    steps_to_fraction: float
    instability: int
    diverged: bool
    hyperparameters: dict = field(default_factory=dict)


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float) if values is not None else np.zeros(0)
    return values[np.isfinite(values)]


def _best(values) -> float:
    finite = _finite(values)
    return float(finite.min()) if finite.size else float("nan")


def _last(values) -> float:
    finite = _finite(values)
    return float(finite[-1]) if finite.size else float("nan")


def _check_fraction(fraction: float) -> None:
    # Below 1: the step of the minimum itself is at the mercy of rounding once the loss is flat.
    if not 0 < fraction < 1:
        raise ValueError(f"steps_to_fraction: fraction must be in (0, 1) (0.9 = 90 % of the improvement), "
                         f"got {fraction}")


def steps_to_fraction(loss, steps, fraction: float = DEFAULT_FRACTION) -> float:
    """Steps until the zero-lag smoothed log-loss first covers `fraction` (in (0, 1)) of its way
    from the initial value down to its minimum; NaN when the loss never improved."""
    _check_fraction(fraction)
    loss, steps = np.asarray(loss, dtype=float), np.asarray(steps, dtype=float)
    keep = np.isfinite(loss) & (loss > 0)
    if keep.sum() < 2:
        return float("nan")
    log_loss = smooth_zero_lag(np.log(loss[keep]), SPEED_SMOOTHING)
    start, lowest = log_loss[0], log_loss.min()
    if not start > lowest:
        return float("nan")
    reached = np.flatnonzero(log_loss <= start - fraction * (start - lowest))
    return float(steps[keep][reached[0]] - steps[keep][0])


def summarize(name: str, history, fraction: float = DEFAULT_FRACTION) -> RunSummary:
    """The RunSummary of one run's History."""
    loss = history.get("loss", np.zeros(0))
    val = history.get("val_loss")
    steps = history.steps
    best_val_step = float("nan")
    if val is not None and np.isfinite(val).any():
        best_val_step = float(steps[np.nanargmin(np.where(np.isfinite(val), val, np.nan))])
    findings = analyze_curves(loss, val, steps) if len(loss) else []
    kinds = [finding.kind for finding in findings]
    return RunSummary(
        name=name,
        steps=len(loss),
        best_train=_best(loss),
        final_train=_last(loss),
        best_val=_best(val),
        best_val_step=best_val_step,
        final_val=_last(val),
        steps_to_fraction=steps_to_fraction(loss, steps, fraction) if len(loss) else float("nan"),
        instability=sum(kind in ("loss_spike", "oscillation") for kind in kinds),
        diverged=any(kind in ("non_finite", "divergence") for kind in kinds) or not np.isfinite(_last(loss)),
        hyperparameters=dict(getattr(history, "metadata", {}) or {}),
    )


class Comparison:
    """Summaries of several runs, ranked; `str()` gives the table, `plot()` the figure."""

    def __init__(self, histories: dict, summaries: list[RunSummary], fraction: float):
        self.histories = histories
        self.fraction = fraction
        use_val = any(np.isfinite(summary.best_val) for summary in summaries)
        self.ranked_by = "best validation loss" if use_val else "best training loss"

        def key(summary):
            score = summary.best_val if use_val else summary.best_train
            return (summary.diverged, not np.isfinite(score), score if np.isfinite(score) else 0.0)

        self.summaries = sorted(summaries, key=key)

    @property
    def ranking(self) -> list[str]:
        return [summary.name for summary in self.summaries]

    @property
    def best(self) -> RunSummary:
        return self.summaries[0]

    def to_dict(self) -> dict:
        return {"ranked_by": self.ranked_by, "runs": [asdict(summary) for summary in self.summaries]}

    def __str__(self) -> str:
        header = ["rank", "run", "steps", "best train", "final train", "best val", "at step", "final val",
                  f"steps to {self.fraction:.0%}", "spikes/osc.", "diverged"]
        rows = [header]
        for rank, s in enumerate(self.summaries, start=1):
            rows.append([str(rank), s.name, str(s.steps), _number(s.best_train), _number(s.final_train),
                         _number(s.best_val), _number(s.best_val_step, "{:.0f}"), _number(s.final_val),
                         _number(s.steps_to_fraction, "{:.0f}"), str(s.instability), "yes" if s.diverged else "no"])
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        lines.append(f"ranked by {self.ranked_by}; diverged runs last")
        for s in self.summaries:
            if s.hyperparameters:
                settings = ", ".join(f"{key}={value}" for key, value in s.hyperparameters.items())
                lines.append(f"  {s.name}: {settings}")
        return "\n".join(lines)

    def plot(self, path=None, ax=None):
        """Loss curves overlaid (log scale where fitting), each run's best point marked."""
        from diagnostics.plots import plot_comparison

        return plot_comparison(self, path=path, ax=ax)


def _number(value: float, form: str = "{:.4g}") -> str:
    return form.format(value) if np.isfinite(value) else "-"


def compare_runs(runs: dict, fraction: float = DEFAULT_FRACTION, hyperparameters: dict | None = None) -> Comparison:
    """Compare runs given as {name: Recorder | History | dict of columns | log path}.
    `hyperparameters` ({name: {setting: value}}) adds or overrides each run's settings."""
    if not isinstance(runs, dict):
        raise TypeError(f"compare_runs: expected a dict {{name: run}}, got {type(runs).__name__}")
    if not runs:
        raise ValueError("compare_runs: give at least one run")
    _check_fraction(fraction)
    histories, summaries = {}, []
    for name, source in runs.items():
        history, _ = as_history(source)
        histories[name] = history
        summary = summarize(name, history, fraction)
        summary.hyperparameters.update((hyperparameters or {}).get(name, {}))
        summaries.append(summary)
    return Comparison(histories, summaries, fraction)
