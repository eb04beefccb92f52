"""History: a training run as named columns of per-step numbers.

A history is the one data structure every detector reads. It is a dict of equally long 1-D
float arrays ("columns"), one entry per recorded step, with NaN where a value was not measured
at that step (validation loss every 50 steps, say). Whole-run columns:

    step            the optimizer step the row belongs to
    loss            training loss
    val_loss        validation loss (NaN on steps without validation)
    lr              learning rate of the first parameter group
    grad_norm       global L2 norm of all gradients (before clipping)
    clip_norm       the norm the clipping function measured (before clipping)
    clip_threshold  its max_norm (or clip_value, clip_factor)
    clip_fired      1.0 where gradient clipping changed the gradients, else 0.0

Per-layer columns are named ``<statistic>/<layer>``, the layer named as in
``named_parameters()`` (gradient and parameter statistics) or ``named_modules()`` (activation
statistics):

    grad_norm/<p>       L2 norm of the parameter's gradient
    grad_mean_abs/<p>   mean |g|
    grad_max_abs/<p>    max |g|
    grad_nonfinite/<p>  count of NaN and Inf entries
    grad_zero_frac/<p>  fraction of entries exactly 0
    param_norm/<p>      L2 norm of the parameter
    update_ratio/<p>    ||theta_t - theta_{t-1}|| / ||theta_{t-1}||
    act_mean/<m>, act_std/<m>, act_zero_frac/<m>
    act_dead_frac/<m>   fraction of units active on < 1 % of the samples in the recent window
    act_sat_soft/<m>    fraction of outputs with f'(x) < 0.02
    act_sat_hard/<m>    fraction of outputs with f'(x) < 1e-7
    act_grad_std/<m>    standard deviation of the gradient flowing back into the output

Because it is only named arrays, a history can come from minigrad's Recorder, from another
framework through an adapter, or from a CSV/JSONL log (`load_history`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from minigrad.serialization import atomic_write


class History:
    """Named, equally long float columns; see the module docstring for the names.
    `metadata` holds the run's settings (hyperparameters), written as a header by to_csv and
    to_jsonl and read back by load_history."""

    def __init__(self, columns: dict | None = None, metadata: dict | None = None):
        self.metadata = dict(metadata or {})
        self.columns: dict[str, np.ndarray] = {}
        for name, values in (columns or {}).items():
            self.columns[name] = np.asarray(values, dtype=np.float64).reshape(-1)
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name}: {len(v)}" for name, v in self.columns.items())
            raise ValueError(f"History: columns must have equal lengths, got {sizes}")
        if self.columns and "step" not in self.columns:
            self.columns = {"step": np.arange(len(self), dtype=np.float64), **self.columns}

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def get(self, name: str, default=None):
        """The column `name`, or `default` when the run did not record it."""
        return self.columns.get(name, default)

    @property
    def steps(self) -> np.ndarray:
        return self.columns.get("step", np.zeros(0))

    def layers(self, statistic: str) -> dict[str, np.ndarray]:
        """Per-layer columns of one statistic: {layer name: values over steps}, in recording order."""
        prefix = statistic + "/"
        return {name[len(prefix):]: v for name, v in self.columns.items() if name.startswith(prefix)}

    def to_dict(self) -> dict[str, list]:
        """Plain lists, JSON-ready (NaN stays NaN)."""
        return {name: values.tolist() for name, values in self.columns.items()}

    def to_csv(self, path) -> None:
        """Write one row per step, one column per name; written atomically."""
        names = list(self.columns)
        with atomic_write(path, "w", newline="") as handle:
            if self.metadata:
                handle.write("# " + ", ".join(f"{key}={value}" for key, value in self.metadata.items()) + "\n")
            writer = csv.writer(handle)
            writer.writerow(names)
            for row in zip(*(self.columns[name] for name in names)):
                writer.writerow([_format_number(value) for value in row])

    def to_jsonl(self, path) -> None:
        """Write one JSON object per step (missing values as null); written atomically."""
        names = list(self.columns)
        with atomic_write(path, "w", newline="") as handle:
            if self.metadata:
                handle.write(json.dumps({"hyperparameters": self.metadata}) + "\n")
            for row in zip(*(self.columns[name] for name in names)):
                record = {name: (None if math.isnan(v) else _plain_number(v)) for name, v in zip(names, row)}
                handle.write(json.dumps(record) + "\n")

    def __repr__(self) -> str:
        settings = f", metadata={self.metadata}" if self.metadata else ""
        return f"History({len(self)} steps, columns={list(self.columns)}{settings})"


def load_history(path, columns: dict[str, str] | None = None) -> History:
    """Read a CSV or JSONL training log (from any framework) into a History.

    `columns` renames log columns to history names, e.g. ``{"loss": "train_loss"}`` reads the
    log's ``train_loss`` as ``loss``. Empty cells and null become NaN. Raises ValueError naming
    the problem for a missing file, an unknown format, a non-numeric value, or no loss column.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_history: no such file: {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records, metadata = _read_jsonl(path)
    elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
        records, metadata = _read_csv(path)
    else:
        raise ValueError(f"load_history: {path.name}: unknown log format (expected .csv or .jsonl)")
    renames = {source: target for target, source in (columns or {}).items()}
    names: list[str] = []
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    table = {renames.get(name, name): np.full(len(records), np.nan) for name in names}
    for row, record in enumerate(records):
        for name, value in record.items():
            table[renames.get(name, name)][row] = _parse_number(value, name, row, path)
    if "loss" not in table:
        raise ValueError(
            f"load_history: {path.name} has no 'loss' column (columns: {', '.join(table) or 'none'}); "
            "name the training-loss column with columns={'loss': '<name>'}"
        )
    return History(table, metadata)


def _read_csv(path: Path) -> tuple[list[dict], dict]:
    """Rows as dicts, and the settings of leading comment lines ('# lr=0.1, batch_size=32')."""
    with open(path, newline="") as handle:
        lines = handle.read().splitlines()
    metadata = {}
    while lines and lines[0].startswith("#"):
        for item in lines.pop(0).lstrip("#").split(","):
            key, separator, value = item.partition("=")
            if separator and key.strip():
                metadata[key.strip()] = _setting(value.strip())
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    return list(csv.DictReader(lines, dialect=dialect)), metadata


def _setting(text: str):
    """A setting's value: a number when it reads as one, else the text."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _read_jsonl(path: Path) -> tuple[list[dict], dict]:
    """Records, and the settings of a {"hyperparameters": {...}} record (anywhere in the file)."""
    records, metadata = [], {}
    with open(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"load_history: {path.name} line {line_number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"load_history: {path.name} line {line_number}: expected a JSON object")
            if set(record) == {"hyperparameters"} and isinstance(record["hyperparameters"], dict):
                metadata.update(record["hyperparameters"])
            else:
                records.append(record)
    return records, metadata


def _parse_number(value, name: str, row: int, path: Path) -> float:
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"load_history: {path.name} row {row + 1}, column {name!r}: {value!r} is not a number"
        ) from None


def _format_number(value: float) -> str:
    if math.isnan(value):
        return ""
    return repr(_plain_number(value))


def _plain_number(value: float):
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
