"""Dead ReLUs: a huge learning rate kills the units during training, and they never come back.

A ReLU unit computes h = max(0, z) with z = w . x + b, so dh/dz = 1[z > 0]. If z <= 0 for every
input the unit will ever see, then dL/dw = dL/dz x = 0 and dL/db = 0 on every example: gradient
descent never moves w or b again, and the unit is dead for good. The spiral inputs lie in the
unit disc (|x| <= 1), so a first-layer unit is dead as soon as b <= -||w||; deeper units die the
same way once the layer below them goes quiet.

Here the units are killed by the learning rate, not by the initialization: the net (2-64-64-64-2,
He init) starts with fewer than 20 % of its units born dead (never active on the first batch, the
Recorder's `unit_stats(...)["born_dead"]`). SGD with momentum 0.9 at lr 1.5 then changes a
layer's weights by up to 300 % of their norm in one of the first steps (update/weight ratios 0.1
to 3; about 1e-3 is healthy, CS231n), which throws the biases far below zero: at the end, 94 % of
the first layer's units have b < -||w|| (median b = -4.7, median ||w|| = 1.0). Within about 20
steps more than 90 % of the units of every ReLU layer are dead, the net outputs the same logits
for every input and the loss sits at ln 2 = 0.69, the loss of a coin flip. CS231n (Karpathy): "as
much as 40 % of your network can be dead if the learning rate is set too high."

Fix: the same net with a 30x lower learning rate, 0.05. The first updates are about 0.1 % to 3 %
of the weights, no bias is pushed past the data, the layers stay mostly alive (under 20 % dead)
and the net separates the spirals.

Other remedies, for the other ways units die:
- LeakyReLU(0.01): max(0.01 z, z) has slope 0.01 for z < 0, so a unit with z < 0 everywhere still
  gets a gradient and can come back (Maas et al. 2013). It keeps units alive, but does not make a
  step of 300 % of the weights a good idea.
- A big negative bias at initialization (say b = -3 with |w . x| < 3) makes every unit born dead
  instead: no unit fires on the first batch. Initializing biases to 0 or a small positive value
  (0.01, CS231n) with He init fixes that one.
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Dead ReLUs: a huge learning rate pushes the units' biases so low that they never fire again"
FAILURE = "dead_relu"
STATEMENT = ("reproduce: with SGD at lr 1.5, > 90% of the units of every ReLU layer are dead (active on < 1% of "
             "samples) while < 20% were dead at initialization, and the loss sits near ln 2 = 0.69 (validation "
             "accuracy about 50%); fix: at lr 0.05 < 50% of each layer's units are dead and validation accuracy "
             "is > 90%")

HIDDEN, WIDTH = 3, 64
DEADLY_LEARNING_RATE, LEARNING_RATE = 1.5, 0.05


def _setup(fast, learning_rate):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    he_init = lambda weight: mg.nn.init.kaiming_normal_(weight, nonlinearity="relu")  # noqa: E731
    model = mlp([2] + [WIDTH] * HIDDEN + [2], init=he_init)
    optimizer = mg.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)
    return data, model, optimizer, (150 if fast else 400)


def _measure_dead_units(run):
    """The share of all ReLU units dead at the end (window definition: active on < 1 % of the
    samples of the last steps) and the share never active on the first step (born dead). The
    ReLU layers are equally wide, so these are the means over the layers."""
    layers = run.history.layers("act_dead_frac")
    run.measurements["dead_fraction"] = float(np.mean([values[-1] for values in layers.values()]))
    run.measurements["born_dead_fraction"] = float(np.mean([run.recorder.unit_stats(name)["born_dead"]
                                                            for name in layers]))
    return run


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, DEADLY_LEARNING_RATE)
    return _measure_dead_units(train(f"SGD lr {DEADLY_LEARNING_RATE}", model, data, optimizer, steps, batch_size=64))


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast, LEARNING_RATE)
    return _measure_dead_units(train(f"SGD lr {LEARNING_RATE}", model, data, optimizer, steps, batch_size=64))
