"""The command line: `python -m diagnostics` (installed as `minigrad-diagnose`).

    minigrad-diagnose analyze train_log.csv --plot report.png
    minigrad-diagnose analyze metrics.jsonl --column loss=train/loss --json
    minigrad-diagnose lr-find --task spirals --optimizer adam --plot lr.png
    minigrad-diagnose lab run all --plot figures/
    minigrad-diagnose compare sgd.csv adam.csv --plot runs.png

analyze   reads a CSV or JSONL training log written by any framework, prints the doctor's
          report (or its JSON), and draws the dashboard.
lr-find   runs the LR range test on a small MLP and a toy dataset and prints the suggested
          learning rates.
lab       lists or runs the failure-mode experiments (diagnostics/experiments).
compare   ranks several runs from their logs (diagnostics/compare.py).

One function per subcommand (`analyze`, `lr_find`), registered in COMMANDS with the function
that declares its arguments. Bad input (a missing file, a log without a loss column,
non-numeric values, ...) ends with one line on stderr, ``minigrad-diagnose: error: ...``,
and exit code 2.
"""

from __future__ import annotations

import os

# The command line trains small models (lab, lr-find), for which one BLAS thread is faster than
# several competing for a small machine's cores. Set before NumPy is first imported (the package
# __init__ imports nothing); a setting already in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from diagnostics import plots  # noqa: E402
from diagnostics.doctor import diagnose  # noqa: E402
from diagnostics.history import load_history  # noqa: E402

PROGRAM = "minigrad-diagnose"
EXIT_OK = 0
EXIT_BAD_INPUT = 2  # argparse's exit code for a usage error, used for every input error

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
    """The log as a History (load_history, which also resolves column aliases); its errors
    become InputErrors."""
    try:
        return load_history(path, columns=explicit)
    except UnicodeDecodeError:
        raise InputError(f"{Path(path).name} is not a text file (it is not UTF-8)") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise InputError(str(error).removeprefix("load_history: ")) from None


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
    parser.add_argument("--num-iter", type=_integer_at_least(2), default=100, metavar="N",
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


# ---------------------------------------------------------------- lab


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="list the experiments")
    run = actions.add_parser("run", help="run an experiment (or all): the failing setup, then the fix")
    run.add_argument("name", help="an experiment name from `lab list`, or 'all'")
    run.add_argument("--plot", metavar="DIR", help="write each run's dashboard (PNG) into this folder")
    run.add_argument("--fast", action="store_true", help="the shortened runs the tests use")


def lab(args) -> int:
    """List the failure-mode experiments, or run one (or all) and print the doctor's diagnoses."""
    from diagnostics import experiments

    if args.lab_command == "list":
        for name in experiments.NAMES:
            print(f"{name:22s} {experiments.load(name).TITLE}")
        return EXIT_OK
    names = experiments.NAMES if args.name == "all" else (args.name,)
    if args.name != "all" and args.name not in experiments.NAMES:
        raise InputError(f"no experiment named {args.name!r}; run `{PROGRAM} lab list` to see them")
    if args.plot is not None and not Path(args.plot).is_dir():
        Path(args.plot).mkdir(parents=True)
    for name in names:
        experiments.run_experiment(name, plot_dir=args.plot, fast=args.fast)
        print()
    return EXIT_OK


# ---------------------------------------------------------------- compare


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG", help="CSV or JSONL training logs, one per run")
    parser.add_argument("--plot", metavar="PATH", help="overlay the loss curves in this figure")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--fraction", type=_fraction, default=0.9,
                        help="speed = steps to cover this fraction of the improvement, in (0, 1) (default 0.9)")


def _fraction(text: str) -> float:
    """An argparse type: a number in (0, 1), refused with a usage error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def compare(args) -> int:
    """Lay several runs side by side and rank them."""
    from diagnostics.compare import compare_runs

    if args.plot is not None:
        check_figure_path(args.plot)
    runs = {}
    for path in args.logs:
        name = Path(path).stem
        while name in runs:
            name += "'"
        runs[name] = read_log(path, {})
    comparison = compare_runs(runs, fraction=args.fraction)
    print(json.dumps(_json_safe(comparison.to_dict()), indent=2) if args.json else comparison)
    if args.plot is not None:
        save_figure(comparison.plot, path=args.plot)
    return EXIT_OK


# ---------------------------------------------------------------- entry point


# name: (help, function declaring its arguments, function running it)
COMMANDS = {
    "analyze": ("diagnose a CSV/JSONL training log", add_analyze_arguments, analyze),
    "lr-find": ("run the LR range test on a toy task", add_lr_find_arguments, lr_find),
    "lab": ("the failure-mode lab: reproduce, diagnose and fix training failures", add_lab_arguments, lab),
    "compare": ("compare training runs from their logs", add_compare_arguments, compare),
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
    except BrokenPipeError:
        # The output was piped into a program that stopped reading (`| head`): not an error.
        # Point stdout at /dev/null so that Python's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
