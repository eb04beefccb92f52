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

    def step_at(self, row: int) -> int | float | None:
        """The step of `row`, as findings report it: an int (a float only if it is fractional);
        None where a log left the step blank."""
        step = self.steps[row]
        if np.isnan(step):
            return None
        return int(step) if float(step).is_integer() else float(step)

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


# Names other tools give the same quantity (PyTorch Lightning, Keras, Hugging Face, fastai). An
# alias is used only when the log has no column of the name itself; the first alias found wins,
# so the finer-grained counter (global_step) is preferred over epoch.
COLUMN_ALIASES = {
    "loss": ("train_loss", "training_loss"),
    "step": ("global_step", "iteration", "iter", "epoch"),
    "val_loss": ("validation_loss", "valid_loss", "eval_loss"),
    "lr": ("learning_rate",),
}


def load_history(path, columns: dict[str, str] | None = None) -> History:
    """Read a CSV or JSONL training log (from any framework) into a History.

    `columns` maps history names to log columns, e.g. ``{"loss": "train/loss"}`` reads the
    log's ``train/loss`` as ``loss``; names the log lacks are also found under common aliases
    (COLUMN_ALIASES: train_loss, global_step, learning_rate, ...). Empty cells and null become
    NaN. Settings in a leading ``# lr=0.1, batch_size=32`` line (CSV) or a
    ``{"hyperparameters": {...}}`` record (JSONL) become the History's metadata. Raises
    ValueError naming the problem: a missing or empty file, an unknown format, a non-numeric
    value, no loss column.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_history: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        names, records, metadata = _read_jsonl(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        names, records, metadata = _read_csv(path)
    else:
        raise ValueError(f"load_history: {path.name}: unknown log format {path.suffix or '(no extension)'!r}; "
                         "expected .csv, .tsv or .jsonl")
    if not names:
        raise ValueError(f"load_history: {path.name} is empty: expected a header row (CSV) or JSON objects "
                         "with named values (JSONL)")
    if not records:
        raise ValueError(f"load_history: {path.name} has column names ({', '.join(names)}) but no rows")
    renames = {source: target for target, source in resolve_columns(names, columns or {}, path.name).items()}
    table = {renames.get(name, name): np.full(len(records), np.nan) for name in names}
    for row, record in enumerate(records):
        for name, value in record.items():
            table[renames.get(name, name)][row] = _parse_number(value, name, row, path)
    return History(table, metadata)


def resolve_columns(names: list[str], explicit: dict[str, str], log_name: str) -> dict[str, str]:
    """{history name: log column}: the explicit mappings, then an alias for each name of
    COLUMN_ALIASES the log lacks. Refuses an explicit column the log does not have, a mapping
    that would merge two columns into one, and a log with no training loss."""
    for name, log_column in explicit.items():
        if log_column not in names:
            raise ValueError(f"load_history: {log_name} has no column {log_column!r} (to read as {name!r}); "
                             f"its columns: {', '.join(names)}")
        if name in names and name not in explicit.values():
            raise ValueError(f"load_history: {log_name} already has a column {name!r}; reading {log_column!r} "
                             f"as {name!r} would merge two columns into one (map {name!r} to another name too)")
    sources = list(explicit.values())
    repeated = sorted({source for source in sources if sources.count(source) > 1})
    if repeated:
        raise ValueError(f"load_history: the log column {repeated[0]!r} is mapped to more than one name")
    mapping = dict(explicit)
    taken = set(explicit.values())
    for name, aliases in COLUMN_ALIASES.items():
        if name in mapping or (name in names and name not in taken):
            continue
        alias = next((alias for alias in aliases if alias in names and alias not in taken), None)
        if alias is not None:
            mapping[name] = alias
            taken.add(alias)
    if "loss" not in mapping and "loss" not in names:
        raise ValueError(f"load_history: {log_name} has no loss column (columns: {', '.join(names)}); "
                         "name the training-loss column, e.g. columns={'loss': '<name>'} "
                         "(on the command line: --column loss=<name>)")
    return mapping


def _read_csv(path: Path) -> tuple[list[str], list[dict], dict]:
    """Column names, rows as dicts, and the settings of leading comment lines
    ('# lr=0.1, batch_size=32')."""
    with open(path, newline="", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    metadata = {}
    while lines and lines[0].startswith("#"):
        for item in lines.pop(0).lstrip("#").split(","):
            key, separator, value = item.partition("=")
            if separator and key.strip():
                metadata[key.strip()] = _setting(value.strip())
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    reader = csv.DictReader(lines, dialect=dialect)
    records = [record for record in reader if any(value not in (None, "") for value in record.values())]
    return list(reader.fieldnames or []), records, metadata


def _setting(text: str):
    """A setting's value: a number when it reads as one, else the text."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _read_jsonl(path: Path) -> tuple[list[str], list[dict], dict]:
    """Column names (in order of appearance), records, and the settings of a
    {"hyperparameters": {...}} record (anywhere in the file)."""
    names, records, metadata = {}, [], {}
    with open(path, encoding="utf-8") as handle:
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
                names.update(dict.fromkeys(record))
                records.append(record)
    return list(names), records, metadata


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
