"""Per-op dispatch overhead: microseconds per op, forward + backward, on 4x4 arrays.

On arrays this small the arithmetic is free, so the time is all bookkeeping: wrapping arrays,
recording the graph, walking it backward. Each engine runs the same chain of 30 elementwise
ops (mul by a constant, add a constant, tanh) on a 4x4 tensor and backpropagates through it;
the figure is (time of forward + backward) / 30. Engines are interleaved and each figure is the
median over rounds.

    python benchmarks/bench_overhead.py
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

LINKS = 10  # each link is 3 ops: * 0.9, + 0.1, tanh
OPS = 3 * LINKS


def minigrad_chain():
    x = mg.tensor(np.ones((4, 4), dtype=np.float32), requires_grad=True)

    def run():
        y = x
        for _ in range(LINKS):
            y = (y * 0.9 + 0.1).tanh()
        y.sum().backward()
        x.grad = None

    return run


def torch_chain():
    import torch

    torch.set_num_threads(1)
    x = torch.ones((4, 4), requires_grad=True)

    def run():
        y = x
        for _ in range(LINKS):
            y = (y * 0.9 + 0.1).tanh()
        y.sum().backward()
        x.grad = None

    return run


def mygrad_chain():
    import mygrad

    x = mygrad.tensor(np.ones((4, 4), dtype=np.float32))

    def run():
        y = x
        for _ in range(LINKS):
            y = mygrad.tanh(y * 0.9 + 0.1)
        y.sum().backward()
        x.null_grad()

    return run


def hips_autograd_chain():
    import autograd.numpy as anp
    from autograd import grad

    def f(x):
        y = x
        for _ in range(LINKS):
            y = anp.tanh(y * 0.9 + 0.1)
        return anp.sum(y)

    gradient = grad(f)
    x = np.ones((4, 4), dtype=np.float32)
    return lambda: gradient(x)


def main() -> None:
    engines = {"minigrad": minigrad_chain}
    for name, module, builder in (("PyTorch CPU", "torch", torch_chain), ("MyGrad", "mygrad", mygrad_chain),
                                  ("HIPS autograd", "autograd", hips_autograd_chain)):
        try:
            __import__(module)
        except ImportError:
            continue
        engines[name] = builder
    runs = {name: builder() for name, builder in engines.items()}
    samples = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(30):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(20):
                run()
            samples[name].append((time.perf_counter() - start) / 20 / OPS)
    medians = {name: float(np.median(values)) for name, values in samples.items()}
    print("| engine | us per op (forward + backward, 4x4) | ratio to minigrad |")
    print("| --- | ---: | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e6:.2f} | {seconds / medians['minigrad']:.2f} |")


if __name__ == "__main__":
    main()
