"""How good is the LR finder's suggestion? Compared with the best of a grid of fixed LRs.

For each toy task and seed: run the LR range test (defaults: 1e-7 to 10 in 100 steps) and take
its consensus suggestion; then train a fresh model (same seed, same batches) for BUDGET steps at
the suggested LR, at pytorch-lr-finder's suggestion read off the same test (the steepest point
of its causal EMA, smooth_f = 0.05, after skipping the first 10 and last 5 points, as its plot
does), and at each LR of a log-spaced grid. The score of an LR is the loss on the whole training
set after the budget (inf if training diverged), averaged over the seeds; "ratio" is the
suggested LR's score over the best grid score (1.00 = as good as the best fixed LR found by
brute force, which costs GRID_SIZE full trainings instead of one short test).

    python benchmarks/bench_lr_finder.py            # about 1-3 minutes on 2 cores
    python benchmarks/bench_lr_finder.py --seeds 1  # quicker

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minigrad as mg  # noqa: E402
from diagnostics.lr_finder import LRFinder  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.data import DataLoader, sine, spirals, teacher_student  # noqa: E402

BUDGET = 300
BATCH_SIZE = 64
GRID = np.geomspace(1e-4, 3.0, 10)
GRID_SIZE = len(GRID)


def mlp(sizes, activation):
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers[:-1])


# name: (data, model factory, optimizer factory, loss)
TASKS = {
    "spirals, MLP 2-64-64-2 ReLU, SGD momentum 0.9": (
        spirals(600, seed=0), lambda: mlp([2, 64, 64, 2], nn.ReLU),
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9), nn.CrossEntropyLoss),
    "spirals, MLP 2-64-64-2 ReLU, Adam": (
        spirals(600, seed=0), lambda: mlp([2, 64, 64, 2], nn.ReLU),
        lambda params: optim.Adam(params), nn.CrossEntropyLoss),
    "sine regression, MLP 1-64-64-1 tanh, SGD momentum 0.9": (
        sine(400, seed=0), lambda: mlp([1, 64, 64, 1], nn.Tanh),
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9), nn.MSELoss),
    "teacher-student regression, MLP 20-64-1 ReLU, Adam": (
        teacher_student(n_train=400, n_val=100, n_features=20, teacher_hidden=8, noise=0.1, seed=0),
        lambda: mlp([20, 64, 1], nn.ReLU), lambda params: optim.Adam(params), nn.MSELoss),
    "spirals, deep tanh MLP 2-(32x6)-2, SGD": (
        spirals(600, seed=0), lambda: mlp([2] + [32] * 6 + [2], nn.Tanh),
        lambda params: optim.SGD(params, lr=0.1), nn.CrossEntropyLoss),
}


def fresh(task: str, seed: int):
    """(model, optimizer, loss_fn, loader) as at the start of training with `seed`."""
    data, make_model, make_optimizer, make_loss = TASKS[task]
    mg.manual_seed(seed)
    model = make_model()
    loader = DataLoader(data.train, batch_size=BATCH_SIZE, shuffle=True, seed=seed)
    return model, make_optimizer(model.parameters()), make_loss(), loader


def final_loss(task: str, seed: int, lr: float) -> float:
    """Train BUDGET steps at a fixed `lr`; the loss on the whole training set after (inf if it diverged)."""
    if not np.isfinite(lr):
        return math.inf
    model, optimizer, loss_fn, loader = fresh(task, seed)
    for group in optimizer.param_groups:
        group["lr"] = lr
    steps = 0
    while steps < BUDGET:
        for inputs, targets in loader:
            loss = loss_fn(model(inputs), targets)
            if not np.isfinite(loss.item()):
                return math.inf
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == BUDGET:
                break
    data = TASKS[task][0]
    with mg.no_grad():
        loss = loss_fn(model(mg.tensor(data.X_train)), mg.tensor(data.y_train)).item()
    return loss if np.isfinite(loss) else math.inf


def pytorch_lr_finder_suggestion(history) -> float:
    """pytorch-lr-finder's plot(suggest_lr=True): the LR at the steepest (most negative)
    np.gradient of its EMA-smoothed losses, after skipping 10 points at the start and 5 at the end."""
    lrs, ema = history["lr"][10:-5], history["ema"][10:-5]
    if len(ema) < 2:
        return math.nan
    return float(lrs[np.argmin(np.gradient(ema))])


def mean_score(task: str, seeds, lrs) -> float:
    return float(np.mean([final_loss(task, seed, lr) for seed, lr in zip(seeds, lrs)]))


def run(seeds) -> list[dict]:
    rows = []
    for task in TASKS:
        started = time.perf_counter()
        suggested, anchor, confidences = [], [], []
        for seed in seeds:
            model, optimizer, loss_fn, loader = fresh(task, seed)
            finder = LRFinder(model, optimizer, loss_fn).range_test(loader)
            suggestion = finder.suggestion()
            suggested.append(suggestion.lr)
            confidences.append(suggestion.confidence)
            anchor.append(pytorch_lr_finder_suggestion(finder.history))
        grid_scores = [mean_score(task, seeds, [lr] * len(seeds)) for lr in GRID]
        best = int(np.argmin(grid_scores))
        rows.append({
            "task": task,
            "suggested": suggested,
            "confidence": confidences,
            "suggested_score": mean_score(task, seeds, suggested),
            "anchor": anchor,
            "anchor_score": mean_score(task, seeds, anchor),
            "best_lr": GRID[best],
            "best_score": grid_scores[best],
            "seconds": time.perf_counter() - started,
        })
        print(f"  {task}: {rows[-1]['seconds']:.0f} s", file=sys.stderr)
    return rows


def lrs_text(lrs) -> str:
    return " / ".join(f"{lr:.2g}" for lr in lrs)


def table(rows, seeds) -> str:
    lines = [
        f"LR range test vs. a grid of {GRID_SIZE} fixed LRs ({GRID[0]:.0e}..{GRID[-1]:g}), {BUDGET} steps of "
        f"batch {BATCH_SIZE}, seeds {', '.join(map(str, seeds))}; loss = training-set loss after the budget, "
        "mean over the seeds.",
        "",
        "| task | suggested LR (per seed) | confidence | loss @ suggested | best grid LR | best grid loss "
        "| ratio | pytorch-lr-finder LR | loss @ it | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['task']} | {lrs_text(row['suggested'])} | {' / '.join(row['confidence'])} "
            f"| {row['suggested_score']:.4g} | {row['best_lr']:.2g} | {row['best_score']:.4g} "
            f"| {row['suggested_score'] / row['best_score']:.2f} | {lrs_text(row['anchor'])} "
            f"| {row['anchor_score']:.4g} | {row['anchor_score'] / row['best_score']:.2f} |"
        )
    ratios = [row["suggested_score"] / row["best_score"] for row in rows]
    anchor_ratios = [row["anchor_score"] / row["best_score"] for row in rows]
    lines += ["", f"Geometric mean ratio: LRFinder consensus {np.exp(np.mean(np.log(ratios))):.2f}, "
                  f"pytorch-lr-finder steepest-EMA {np.exp(np.mean(np.log(anchor_ratios))):.2f}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds per task (default 3)")
    arguments = parser.parse_args()
    seeds = list(range(arguments.seeds))
    started = time.perf_counter()
    with np.errstate(all="ignore"):
        rows = run(seeds)
    print(table(rows, seeds))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
