"""What the Recorder costs: one training step with and without it, in one process.

The step is bench_step.py's (784-256-256-10 MLP, batch 128, float32, cross-entropy, SGD). The
Recorder runs with every statistic on (gradients, parameters, update ratios, activations and
the gradients flowing into them) at every step, and again recording every 10th step. Runs are
interleaved and each figure is the median over rounds; the ratio is to the step without a
Recorder. Target (DESIGN.md): at most 1.10 with everything on.

    python benchmarks/bench_recorder.py
"""

from __future__ import annotations

import os
import sys
import time

for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minigrad as mg  # noqa: E402
from diagnostics import Recorder  # noqa: E402

from bench_step import LEARNING_RATE, make_problem, minigrad_model  # noqa: E402

CONFIGS = {"MLP 784-256-256-10, batch 128": ((784, 256, 256, 10), 128),
           "MLP 2-16-16-2, batch 32": ((2, 16, 16, 2), 32)}


def training_step(sizes, batch, every=None):
    """A step function; with `every`, a Recorder (everything on) records every `every` steps."""
    weights, biases, inputs, labels = make_problem(sizes, batch)
    model = minigrad_model(weights, biases)
    loss_fn = mg.nn.CrossEntropyLoss()
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    recorder = Recorder(model, every=every) if every else None
    x, y = mg.tensor(inputs), mg.tensor(labels)

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if recorder is not None:
            recorder.step(loss=loss.item(), lr=LEARNING_RATE)

    return step


def main() -> None:
    print("| configuration | Recorder | ms / step | ratio to no Recorder |")
    print("| --- | --- | ---: | ---: |")
    for label, (sizes, batch) in CONFIGS.items():
        steps = {"none": training_step(sizes, batch), "every step": training_step(sizes, batch, every=1),
                 "every 10th step": training_step(sizes, batch, every=10)}
        per_round = 10 if sizes[1] > 64 else 100
        samples = {name: [] for name in steps}
        for step in steps.values():
            step()
        for _ in range(30):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(per_round):
                    step()
                samples[name].append((time.perf_counter() - start) / per_round)
        baseline = float(np.median(samples["none"]))
        for name, values in samples.items():
            median = float(np.median(values))
            print(f"| {label} | {name} | {median * 1e3:.3f} | {median / baseline:.2f} |")


if __name__ == "__main__":
    main()
