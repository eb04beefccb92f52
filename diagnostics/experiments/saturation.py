"""Saturation: a tanh net initialized too large pins its units at +-1 and stops learning.

A tanh unit computes h = tanh(z), and d/dz tanh(z) = 1 - tanh(z)^2: once |tanh z| > 0.99
(|z| > atanh 0.99 = 2.65) the derivative is below 0.02, so every gradient passing back through
the unit is scaled down 50-fold or more. A pre-activation z = w . h_prev + b over n_in inputs has
Var(z) = n_in Var(w) E[h_prev^2]. This net (2-64-64-64-64-64-2, tanh) draws every weight from
N(0, 2^2): in a 64-wide layer fed by saturated units, Var(z) = 64 * 4 * 1, so z has a standard
deviation of 16 and P(|z| > 2.65) = P(|N(0, 1)| > 0.17) = 87 % of the outputs are saturated
from the start. The first layer sees only 2 inputs inside the unit disc and starts unsaturated,
but the logits (standard deviation about 16 too) give a first gradient of norm about 90, whose
steps push it into saturation within 5 steps as well.

Then backpropagation multiplies the gradient by W^T diag(1 - h^2) at every layer on its way
down, and with more than 90 % of the units' derivatives below 0.02 the first layer's gradient
ends up about 1000x smaller than the last layer's. The lower layers stop learning, every hidden
unit gives the same +-1 for almost every input, the net gives one answer for all of them, and the
loss stays near ln 2 = 0.69, the loss of a coin flip (LeCun et al. 1998, "Efficient BackProp",
section 4.6; Glorot & Bengio 2010).

Fix: Xavier (Glorot) initialization with the tanh gain, Var(w) = (5/3)^2 * 2 / (n_in + n_out)
(Glorot & Bengio 2010; 5/3 is PyTorch's calculate_gain("tanh")), a standard deviation of 0.21
instead of 2 for the 64-wide layers. The pre-activations stay of order 1, where tanh is nearly
linear and passes gradients through, fewer than 20 % of the outputs saturate, and the same net,
with the same learning rate, separates the spirals. Normalization before each tanh (LayerNorm,
BatchNorm) is the other remedy: it rescales z to unit variance whatever the weights.
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train
from diagnostics.gradients import first_to_last_ratio

TITLE = "Saturation: a tanh net with a too-large init pins its units at +-1 and stays at chance"
FAILURE = "saturation"
STATEMENT = ("reproduce: with weights from N(0, 2^2), > 90% of the outputs of every tanh layer are saturated "
             "(|tanh| > 0.99), the first layer's gradient is < 1/1000 of the last layer's (median), the loss stays "
             "above 0.5 (ln 2 = 0.69) and validation accuracy < 70%; fix: Xavier init (gain 5/3) leaves < 20% of "
             "each layer's outputs saturated and reaches > 90% validation accuracy")

HIDDEN, WIDTH, INIT_STD, LEARNING_RATE = 5, 64, 2.0, 0.05


def _setup(fast, init):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    model = mlp([2] + [WIDTH] * HIDDEN + [2], activation=mg.nn.Tanh, init=init)
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return data, model, optimizer, (150 if fast else 300)


def _measure_saturation(run):
    """saturated_fraction: the share of all hidden outputs saturated on the last step (the tanh
    layers are equally wide, so the mean over the layers); first_to_last_grad_ratio: the median
    over the run of ||grad of the first weight|| / ||grad of the last weight||."""
    layers = run.history.layers("act_sat_soft")
    run.measurements["saturated_fraction"] = float(np.mean([values[-1] for values in layers.values()]))
    run.measurements["first_to_last_grad_ratio"] = float(np.nanmedian(first_to_last_ratio(run.history)[0]))
    return run


def reproduce(fast=False):
    large_init = lambda weight: mg.nn.init.normal_(weight, 0.0, INIT_STD)  # noqa: E731
    data, model, optimizer, steps = _setup(fast, large_init)
    return _measure_saturation(train(f"tanh, N(0, {INIT_STD:g}^2) init", model, data, optimizer, steps,
                                     batch_size=64))


def fix(fast=False):
    xavier_init = lambda weight: mg.nn.init.xavier_normal_(weight, gain=mg.nn.init.calculate_gain("tanh"))  # noqa: E731
    data, model, optimizer, steps = _setup(fast, xavier_init)
    return _measure_saturation(train("tanh, Xavier init", model, data, optimizer, steps, batch_size=64))
