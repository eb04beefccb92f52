"""Vanishing gradients: a deep sigmoid net learns nothing in its first layers.

Backpropagation multiplies the gradient by W^T diag(sigmoid'(x)) at every layer on its way back
to the input. sigmoid'(x) <= 1/4, and with PyTorch's default init (W ~ U(-1/sqrt(n), 1/sqrt(n)),
so n * Var(W) = 1/3) each layer shrinks the gradient's variance by about
n * Var(W) * E[sigmoid'(x)^2] ~ 1/3 * 1/16 ~ 1/50. Through 10 layers the first layer's
gradient is many orders of magnitude below the last one's: the early layers do not learn and
the loss sits at ln 2 (the loss of a coin flip).

Fix: ReLU with He initialization (Var(W) = 2 / n_in, He et al. 2015). relu' is 1 on the active
half of the units, so n * Var(W) * E[relu'^2] = 2 * 1/2 = 1: the gradient keeps its scale
through every layer, and the same 10-layer net trains.
"""

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Vanishing gradients: a 10-layer sigmoid net stays at chance while its first layers get no gradient"
FAILURE = "vanishing_gradients"
STATEMENT = ("reproduce: the first layer's gradient norm is more than 1000x below the last layer's and the "
             "loss stays near ln 2 = 0.69; fix: ReLU + He init gives the layers gradients of one scale and "
             "> 90% validation accuracy")

DEPTH, WIDTH, LEARNING_RATE = 10, 32, 0.02


def _setup(fast, activation, init):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    model = mlp([2] + [WIDTH] * DEPTH + [2], activation=activation, init=init)
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return data, model, optimizer, (150 if fast else 400)


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, mg.nn.Sigmoid, init=None)
    return train("sigmoid, default init", model, data, optimizer, steps, batch_size=64)


def fix(fast=False):
    he_init = lambda weight: mg.nn.init.kaiming_normal_(weight, nonlinearity="relu")  # noqa: E731
    data, model, optimizer, steps = _setup(fast, mg.nn.ReLU, init=he_init)
    return train("ReLU + He init", model, data, optimizer, steps, batch_size=64)
