"""Exploding gradients: a deep ReLU net initialized too large diverges to NaN.

Each Linear + ReLU layer multiplies the variance of the signal by n_in * Var(W) * E[relu'(x)^2]
(Glorot & Bengio 2010). With 64-wide layers and weights drawn from N(0, 0.3^2) that is
64 * 0.09 * 1/2 = 2.9 per layer, so after 8 layers the logits are 2.9^8 ~ 5000 times too
large in variance. The loss starts near 20 and the gradient norm in the thousands; one SGD step
with such a gradient throws the weights far away, the next gradient is larger still, and within
a few steps the loss overflows to NaN.

Fix: clip the global gradient norm to 1 before each step (same init, same learning rate).
Every update is then bounded, the first steps shrink the oversized weights instead of
overshooting, and the net trains.
"""

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Exploding gradients: a deep ReLU net with a too-large init diverges to NaN"
FAILURE = "exploding_gradients"
STATEMENT = ("reproduce: the gradient norm is above 100 from the first step and the loss is NaN within "
             "about 10 steps; fix: with clip_grad_norm_(params, 1.0) the same net trains to > 90% "
             "validation accuracy")

DEPTH, WIDTH, INIT_STD, LEARNING_RATE = 8, 64, 0.3, 0.05


def _setup(fast):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    model = mlp([2] + [WIDTH] * DEPTH + [2], init=lambda weight: mg.nn.init.normal_(weight, 0.0, INIT_STD))
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return data, model, optimizer, (100 if fast else 300)


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast)
    return train("no clipping", model, data, optimizer, steps, batch_size=64)


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast)
    return train("clip_grad_norm_(1.0)", model, data, optimizer, steps, batch_size=64, max_norm=1.0)
