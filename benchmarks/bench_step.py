"""One training step, side by side: minigrad against the same math in other engines.

A step is forward (Linear-ReLU-Linear-ReLU-Linear), cross-entropy, backward and an SGD update.
Every engine starts from the same float32 weights and trains on the same batch; runs are
interleaved (engine A, engine B, ..., repeat) so that machine noise hits all of them alike,
and each figure is the median over rounds. Results are ratios to hand-written NumPy (the
same math with no graph), measured in this process; absolute times depend on the machine.

    python benchmarks/bench_step.py            # both sizes, every engine that is installed
    python benchmarks/bench_step.py --quick    # fewer rounds

Optional engines, timed when installed: PyTorch (CPU), HIPS autograd, MyGrad.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# One BLAS thread for every engine: on a small shared machine, threads add more noise than
# speed at these sizes, and the comparison stays fair either way.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minigrad as mg  # noqa: E402
from minigrad import nn, optim  # noqa: E402

LEARNING_RATE = 0.01
CONFIGS = {
    "MLP 784-256-256-10, batch 128": ((784, 256, 256, 10), 128),
    "MLP 2-16-16-2, batch 32": ((2, 16, 16, 2), 32),
}


def make_problem(sizes, batch, seed=0):
    """Weights (out, in) and biases in float32, one batch of inputs and class labels."""
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(n_out, dtype=np.float32) for n_out in sizes[1:]]
    inputs = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    return weights, biases, inputs, labels


# --------------------------------------------------------------------------------------------
# engines: each builder returns a function that runs one training step
# --------------------------------------------------------------------------------------------


def numpy_step(weights, biases, inputs, labels):
    """The same math written out by hand: the baseline every ratio is against."""
    weights = [w.copy() for w in weights]
    biases = [b.copy() for b in biases]
    rows = np.arange(len(labels))

    def step():
        activations, pre_activations = [inputs], []
        h = inputs
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = h @ w.T + b
            pre_activations.append(z)
            h = np.maximum(z, 0) if i < len(weights) - 1 else z
            activations.append(h)
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = -(shifted[rows, labels] - np.log(total[:, 0])).mean()
        grad = exp / total
        grad[rows, labels] -= 1
        grad /= len(labels)
        for i in reversed(range(len(weights))):
            grad_w = grad.T @ activations[i]
            grad_b = grad.sum(axis=0)
            if i > 0:
                grad = (grad @ weights[i]) * (pre_activations[i - 1] > 0)
            weights[i] -= LEARNING_RATE * grad_w
            biases[i] -= LEARNING_RATE * grad_b
        return float(loss)

    return step


def minigrad_model(weights, biases):
    """Linear layers holding the given weights, with ReLU between them."""
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        linear = nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data[...] = w
        linear.bias.data[...] = b
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def minigrad_step(weights, biases, inputs, labels):
    """What a minigrad user writes: nn.Sequential, nn.CrossEntropyLoss, optim.SGD."""
    model = minigrad_model(weights, biases)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE)
    x, y = mg.tensor(inputs), mg.tensor(labels)

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_step(weights, biases, inputs, labels):
    import torch

    torch.set_num_threads(1)
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    x, y = torch.from_numpy(inputs), torch.from_numpy(labels)

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def hips_autograd_step(weights, biases, inputs, labels):
    import autograd.numpy as anp
    from autograd import grad

    params = [p.copy() for pair in zip(weights, biases) for p in pair]
    rows = np.arange(len(labels))

    def loss_of(params):
        h = inputs
        layer_count = len(params) // 2
        for i in range(layer_count):
            h = anp.dot(h, params[2 * i].T) + params[2 * i + 1]
            if i < layer_count - 1:
                h = anp.maximum(h, 0)
        shifted = h - anp.max(h, axis=1, keepdims=True)
        log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(log_probs[rows, labels])

    gradient = grad(loss_of)

    def step():
        grads = gradient(params)
        for p, g in zip(params, grads):
            p -= LEARNING_RATE * g

    return step


def mygrad_step(weights, biases, inputs, labels):
    import mygrad
    from mygrad.nnet.losses import softmax_crossentropy

    params = [mygrad.tensor(p.copy()) for pair in zip(weights, biases) for p in pair]

    def step():
        h = inputs
        layer_count = len(params) // 2
        for i in range(layer_count):
            h = mygrad.matmul(h, params[2 * i].T) + params[2 * i + 1]
            if i < layer_count - 1:
                h = mygrad.maximum(h, 0)
        loss = softmax_crossentropy(h, labels)
        loss.backward()
        for p in params:
            p.data -= LEARNING_RATE * p.grad
            p.null_grad()

    return step


OPTIONAL_ENGINES = {"PyTorch CPU": ("torch", torch_step), "HIPS autograd": ("autograd", hips_autograd_step),
                    "MyGrad": ("mygrad", mygrad_step)}


def available_engines() -> dict:
    engines = {"NumPy (by hand)": numpy_step, "minigrad": minigrad_step}
    for name, (module, builder) in OPTIONAL_ENGINES.items():
        try:
            __import__(module)
        except ImportError:
            continue
        engines[name] = builder
    return engines


def time_interleaved(steps: dict, rounds: int, steps_per_round: int) -> dict[str, float]:
    """Median seconds per step for each engine, rounds interleaved."""
    for step in steps.values():
        step()
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(steps_per_round):
                step()
            samples[name].append((time.perf_counter() - start) / steps_per_round)
    return {name: float(np.median(values)) for name, values in samples.items()}


def check_same_math(sizes, batch) -> float:
    """Largest relative difference between minigrad's and NumPy's losses over 5 steps: the
    engines compute the same thing, so the timing compares like with like."""
    problem = make_problem(sizes, batch)
    ours, reference = minigrad_step(*problem), numpy_step(*problem)
    worst = 0.0
    for _ in range(5):
        our_loss, reference_loss = ours(), reference()
        worst = max(worst, abs(our_loss - reference_loss) / abs(reference_loss))
    return worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    args = parser.parse_args(argv)
    rounds = 7 if args.quick else 25
    engines = available_engines()
    print("| configuration | engine | ms / step | ratio to NumPy |")
    print("| --- | --- | ---: | ---: |")
    for label, (sizes, batch) in CONFIGS.items():
        problem = make_problem(sizes, batch)
        steps = {name: builder(*problem) for name, builder in engines.items()}
        steps_per_round = 5 if sizes[1] > 64 else 50
        timings = time_interleaved(steps, rounds, steps_per_round)
        baseline = timings["NumPy (by hand)"]
        for name, seconds in timings.items():
            print(f"| {label} | {name} | {seconds * 1e3:.3f} | {seconds / baseline:.2f} |")
        print(f"<!-- {label}: minigrad vs NumPy loss agreement over 5 steps: "
              f"{check_same_math(sizes, batch):.1e} relative -->")


if __name__ == "__main__":
    main()
