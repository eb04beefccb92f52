"""Glorot & Bengio 2010: with the standard init, back-propagated gradients shrink toward the input.

Glorot & Bengio ("Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010) trained 5-hidden-layer tanh nets and watched the gradient flowing back into each
layer's activations. With the "commonly used heuristic" W ~ U(-1/sqrt(n), 1/sqrt(n)) (their eq. 1;
also PyTorch's default for nn.Linear) it shrinks layer by layer toward the input; with their
normalized initialization (Xavier) it stays about level.

Why. Near 0, tanh is the identity (tanh'(0) = 1). Going back through a layer z = W h + b,
h = tanh(z), the gradient with respect to h_(i-1) is W^T (tanh'(z) * grad h_i), so its variance is

    Var[grad h_(i-1)] ~ n_out Var(W) E[tanh'(z)^2] Var[grad h_i]          (their Section 4.2.1)

U(-1/sqrt(n), 1/sqrt(n)) has variance 1/(3n), so for square layers n Var(W) = 1/3: the variance
shrinks 3x per layer and the standard deviation by sqrt(1/3) = 0.58. Over the 4 layers between
the last tanh and the first, that is 0.58^4 = 0.11. The forward signal shrinks by the same 1/3
per layer, so the logits start near 0 and the loss sits at ln 10 for a while: the net learns
slowly. Xavier init, W ~ U(-sqrt(6 / (n_in + n_out)), +sqrt(6 / (n_in + n_out))) (eq. 16), has
Var(W) = 2 / (n_in + n_out) = 1/n for square layers, so n Var(W) = 1 and only E[tanh'^2] < 1
remains: the gradient keeps most of its scale at every layer, and the same net trains faster.

The init audit (diagnostics.model_checks.audit_init) predicts this before training: it flags
each layer whose multiplier n Var(W) E[f'^2] lies outside [0.5, 2], and the network when the
product over its layers leaves [0.1, 10]; its findings go to the doctor with the run's.

Setup: 64-dimensional Gaussian clusters, 10 classes; a 64-64-64-64-64-64-10 tanh net (five
tanh layers, biases 0 as in the paper); SGD with momentum. The inputs are small (E[x^2] ~ 0.12),
so the first layer starts in tanh's near-linear range, where the analysis holds. The Recorder's
act_grad_std/<layer> is the standard deviation of the gradient flowing back into each tanh
layer's output; the measurements give it per layer at initialization (step 0), from the first
tanh layer to the last.
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train
from diagnostics.model_checks import audit_init

TITLE = "Glorot & Bengio: the standard init shrinks back-propagated gradients toward the input; Xavier keeps them level"
FAILURE = "bad_init"
STATEMENT = ("reproduce: with W ~ U(-1/sqrt(n), 1/sqrt(n)) the gradient reaching the first of five tanh layers has "
             "< 0.2x the standard deviation of the gradient at the last (about sqrt(1/3) = 0.58 per layer), and the "
             "init audit names bad_init; fix: Xavier init keeps the first/last ratio > 0.5 (about 0.9 per layer), "
             "the audit is silent, the diagnosis healthy, and the loss halves from ln 10 more than 3x sooner")

WIDTH, DEPTH, CLASSES, LEARNING_RATE, BATCH_SIZE = 64, 5, 10, 0.05, 64


def standard_init(weight):
    """W ~ U(-1/sqrt(n_in), 1/sqrt(n_in)): Var(W) = 1 / (3 n_in)."""
    bound = 1.0 / np.sqrt(weight.shape[1])
    mg.nn.init.uniform_(weight, -bound, bound)


def _setup(fast, init):
    mg.manual_seed(0)
    data = mg.data.blobs(n_samples=2048, n_features=WIDTH, centers=CLASSES, cluster_std=0.3,
                         center_box=(-0.3, 0.3), seed=0)
    model = mlp([WIDTH] * (DEPTH + 1) + [CLASSES], activation=mg.nn.Tanh, init=init, bias=0.0)
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return data, model, optimizer, (100 if fast else 200)


def _run(label, init, fast):
    data, model, optimizer, steps = _setup(fast, init)
    init_findings = audit_init(model, data.X_train[:BATCH_SIZE])
    run = train(label, model, data, optimizer, steps, batch_size=BATCH_SIZE, extra_findings=init_findings)
    run.measurements.update(_measure(run))
    return run


def _measure(run):
    """act_grad_std of each tanh layer at step 0 (first to last), the first/last ratio, the
    average factor per layer, ratio^(1 / (layers - 1)), and how many steps the loss took to halve."""
    at_init = [float(values[0]) for values in run.history.layers("act_grad_std").values()]
    ratio = at_init[0] / at_init[-1]
    loss = run.history["loss"]
    halved = np.flatnonzero(loss < loss[0] / 2)
    return {
        "act_grad_std_first_to_last": [float(f"{value:.3g}") for value in at_init],
        "first_to_last_act_grad_ratio": ratio,
        "act_grad_factor_per_layer": ratio ** (1 / (len(at_init) - 1)),
        "steps_to_halve_loss": int(run.history["step"][halved[0]]) if halved.size else len(loss),
    }


def reproduce(fast=False):
    return _run("U(-1/sqrt(n), 1/sqrt(n))", standard_init, fast)


def fix(fast=False):
    return _run("Xavier (xavier_uniform_)", mg.nn.init.xavier_uniform_, fast)
