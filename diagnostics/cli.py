"""The command line: `python -m diagnostics` (installed as `minigrad-diagnose`).

    minigrad-diagnose analyze train_log.csv --plot report.png
    minigrad-diagnose analyze metrics.jsonl --column loss=train/loss --json
    minigrad-diagnose lr-find --task spirals --optimizer adam --plot lr.png

analyze   reads a CSV or JSONL training log written by any framework, prints the doctor's
          report (or its JSON), and draws the dashboard.
lr-find   runs the LR range test on a small MLP and a toy dataset and prints the suggested
          learning rates.

One function per subcommand (`analyze`, `lr_find`), registered in COMMANDS with the function
that declares its arguments. Bad input (a missing file, a log without a loss column,
non-numeric values, ...) ends with one line on stderr, ``minigrad-diagnose: error: ...``,
and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from diagnostics import plots
from diagnostics.doctor import diagnose
from diagnostics.history import load_history

PROGRAM = "minigrad-diagnose"
EXIT_OK = 0
EXIT_BAD_INPUT = 2  # argparse's exit code for a usage error, used for every input error

# Names other tools give the same quantity (PyTorch Lightning, Keras, Hugging Face, fastai). An
# alias is used only when the log has no column of the name itself; the first alias found wins,
# so the finer-grained counter (global_step) is preferred over epoch.
COLUMN_ALIASES = {
    "loss": ("train_loss", "training_loss"),
    "step": ("global_step", "iteration", "iter", "epoch"),
    "val_loss": ("validation_loss", "valid_loss", "eval_loss"),
    "lr": ("learning_rate",),
}


class InputError(Exception):
    """Input the command cannot use; main() prints it as one line and exits with code 2."""


# ---------------------------------------------------------------- progress


class ProgressBar:
    """A `\\r[#####.....] 40/100` line on a terminal, redrawn in place; silent when the stream is
    not a terminal (a pipe or a log file would collect every redraw).

    Called as progress(done, total), the signature LRFinder.range_test takes.
    """

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        done = min(max(done, 0), total)
        filled = round(self.width * done / total) if total > 0 else self.width
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the progress line so that what follows starts on a new one."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# ---------------------------------------------------------------- analyze


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", help="training log: .csv (one row per step) or .jsonl (one JSON object per step)")
    parser.add_argument("--plot", metavar="PATH", help="write the dashboard figure here (.png, .svg, .pdf)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    parser.add_argument("--column", metavar="NAME=LOGCOLUMN", action="append", default=[], type=_column_mapping,
                        help="read the log's LOGCOLUMN as NAME (loss, val_loss, step, lr, grad_norm, ...); "
                             "repeatable")


def _column_mapping(text: str) -> tuple[str, str]:
    name, separator, log_column = text.partition("=")
    if not separator or not name or not log_column:
        raise argparse.ArgumentTypeError(f"expected NAME=LOGCOLUMN (e.g. loss=train/loss), got {text!r}")
    return name, log_column


def analyze(args) -> int:
    """Diagnose a training log and print the report; draw the dashboard with --plot."""
    if args.plot:
        check_figure_path(args.plot)
    history = read_log(args.log, dict(args.column))
    report = diagnose(history)
    if args.json:
        print(json.dumps(_json_safe(report.to_dict()), indent=2))
    else:
        print(report)
    if args.plot:
        save_figure(plots.plot_report, report, path=args.plot)
    return EXIT_OK


def read_log(path, explicit: dict[str, str]):
    """The log as a History: columns renamed by `explicit` ({name: log column}), then by
    COLUMN_ALIASES for names the log lacks."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        names, rows = log_columns_and_rows(path)
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not a text file (it is not UTF-8)") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if not names:
        problem = "is empty" if rows == 0 else "has no column names"
        raise InputError(f"{path.name} {problem}: expected a header row (CSV) or JSON objects with "
                         "named values (JSONL)")
    if rows == 0:
        raise InputError(f"{path.name} has column names ({', '.join(names)}) but no rows")
    columns = resolve_columns(names, explicit, path.name)
    try:
        return load_history(path, columns=columns)
    except ValueError as error:
        raise InputError(str(error).removeprefix("load_history: ")) from None


def log_columns_and_rows(path: Path) -> tuple[list[str], int]:
    """The column names (a CSV header, or every key of a JSONL log's objects, in order of
    appearance) and the number of rows."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
        with open(path, newline="") as handle:
            reader = csv.reader(handle, dialect=dialect)
            names = next(reader, [])
            return names, sum(1 for row in reader if row)
    if suffix in (".jsonl", ".ndjson"):
        names: dict[str, None] = {}
        rows = 0
        with open(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"{path.name} line {line_number}: not JSON ({error.msg})") from None
                if not isinstance(record, dict):
                    raise InputError(f"{path.name} line {line_number}: expected a JSON object, "
                                     f"got {type(record).__name__}")
                names.update(dict.fromkeys(record))
                rows += 1
        return list(names), rows
    raise InputError(f"{path.name}: unknown log format {path.suffix or '(no extension)'!r}; "
                     "expected .csv, .tsv or .jsonl")


def resolve_columns(names: list[str], explicit: dict[str, str], log_name: str) -> dict[str, str]:
    """{history name: log column}: the explicit mappings, then an alias for each name of
    COLUMN_ALIASES the log lacks. Raises InputError for an explicit column the log does not have
    and for a log with no training loss."""
    for name, log_column in explicit.items():
        if log_column not in names:
            raise InputError(f"{log_name} has no column {log_column!r} (for --column {name}={log_column}); "
                             f"its columns: {', '.join(names)}")
        if name in names and name not in explicit.values():
            raise InputError(f"{log_name} already has a column {name!r}; --column {name}={log_column} would "
                             f"merge two columns into one (map {name!r} to another name too)")
    sources = list(explicit.values())
    repeated = sorted({source for source in sources if sources.count(source) > 1})
    if repeated:
        raise InputError(f"--column maps the log column {repeated[0]!r} to more than one name")
    columns = dict(explicit)
    taken = set(explicit.values())
    for name, aliases in COLUMN_ALIASES.items():
        if name in columns or (name in names and name not in taken):
            continue
        alias = next((alias for alias in aliases if alias in names and alias not in taken), None)
        if alias is not None:
            columns[name] = alias
            taken.add(alias)
    if "loss" not in columns and "loss" not in names:
        raise InputError(f"{log_name} has no loss column (columns: {', '.join(names)}); "
                         "name the training-loss column with --column loss=<name>")
    return columns


def _json_safe(value):
    """NaN and Inf as null, so the output is strict JSON that any parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


# ---------------------------------------------------------------- lr-find


TASKS = ("spirals", "moons", "sine")
OPTIMIZERS = ("sgd", "adam")


def add_lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, default="spirals", help="toy dataset (default: spirals)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                        help="sgd (momentum 0.9) or adam (default: sgd)")
    parser.add_argument("--num-iter", type=_integer_at_least(1), default=100, metavar="N",
                        help="learning rates to try (default: 100)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss-vs-LR figure here (.png, .svg, .pdf)")
    parser.add_argument("--seed", type=_integer_at_least(0), default=0,
                        help="seed of the data, the weights and the batch order (default: 0)")


def _integer_at_least(minimum: int):
    """An argparse type: an integer >= minimum, refused with a usage error otherwise."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return convert


def lr_find(args) -> int:
    """Run the LR range test on a toy task and print each method's suggestion and the consensus."""
    from diagnostics.lr_finder import LRFinder

    if args.plot:
        check_figure_path(args.plot)
    model, optimizer, loss_fn, loader = build_toy_task(args.task, args.optimizer, args.seed)
    finder = LRFinder(model, optimizer, loss_fn)
    progress = ProgressBar()
    try:
        finder.range_test(loader, num_iter=args.num_iter, progress=progress)
    finally:
        progress.close()
    history = finder.history
    print(f"LR range test on {args.task} with {args.optimizer}: {len(history['lr'])} of {args.num_iter} "
          f"steps ({history['stop_reason']})")
    suggestions = finder.suggestions()
    for method, lr in suggestions.items():
        answer = _format_lr(lr) if math.isfinite(lr) else "none (this rule found no answer on the curve)"
        print(f"  {method:<8} {answer}")
    consensus = finder.suggestion()
    spread = f", the rules span {consensus.spread:.3g}x" if math.isfinite(consensus.spread) else ""
    print(f"Suggested learning rate: {_format_lr(consensus.lr)} "
          f"({consensus.method}, {consensus.confidence} confidence{spread})")
    for reason in consensus.reasons:
        print(f"  low confidence: {reason}")
    if args.plot:
        save_figure(plots.plot_lr_finder, history, suggestions, path=args.plot)
    return EXIT_OK


def _format_lr(lr: float) -> str:
    return f"{lr:.3g}" if math.isfinite(lr) else "none"


def build_toy_task(task: str, optimizer_name: str, seed: int):
    """A 2-hidden-layer ReLU MLP (32 units) on a toy dataset, its optimizer, loss and a
    shuffled loader of batches of 32, all seeded."""
    import minigrad
    from minigrad import data, nn, optim

    minigrad.manual_seed(seed)
    splits = {"spirals": data.spirals, "moons": data.moons, "sine": data.sine}[task](seed=seed)
    outputs = splits.num_classes or 1
    model = nn.Sequential(nn.Linear(splits.X_train.shape[1], 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, outputs))
    loss_fn = nn.CrossEntropyLoss() if splits.num_classes else nn.MSELoss()
    if optimizer_name == "adam":
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    loader = data.DataLoader(splits.train, batch_size=32, shuffle=True, seed=seed)
    return model, optimizer, loss_fn, loader


# ---------------------------------------------------------------- figures


def check_figure_path(path) -> None:
    """Refuse, before any work, a figure path whose folder does not exist or whose extension
    matplotlib cannot write."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise InputError(f"cannot write a figure to {path.name}: unknown image format "
                         f"{path.suffix or '(no extension)'!r}; use one of {', '.join('.' + f for f in sorted(formats))}")
    if not path.parent.is_dir():
        raise InputError(f"cannot write a figure to {path}: no such folder {path.parent}")


def save_figure(plot_function, *args, path) -> None:
    try:
        plot_function(*args, path=path)
    except OSError as error:
        raise InputError(f"cannot write a figure to {path}: {error.strerror or error}") from None
    print(f"wrote {path}", file=sys.stderr)


# ---------------------------------------------------------------- entry point


# name: (help, function declaring its arguments, function running it)
COMMANDS = {
    "analyze": ("diagnose a CSV/JSONL training log", add_analyze_arguments, analyze),
    "lr-find": ("run the LR range test on a toy task", add_lr_find_arguments, lr_find),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Diagnose neural-network training runs.")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(subcommands.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv=None) -> int:
    """Run one subcommand; return the exit code (0 success, 2 bad input or usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help (0) or a usage error (2), already printed
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_BAD_INPUT
    _, _, run = COMMANDS[args.command]
    try:
        return run(args)
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
