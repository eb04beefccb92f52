"""Oscillation: with a too-high learning rate the loss zig-zags from step to step and never settles.

RMSprop (Hinton 2012) divides each gradient by a running root mean square of its own past:

    v <- 0.99 v + 0.01 g^2,    w <- w - lr g / sqrt(v)

Once v has caught up with g^2, every weight moves by about lr per step, however small its
gradient has become: the step does not shrink as the weight nears its minimum. Here lr = 0.15,
while the output layer's weights are at most 0.18 in size (PyTorch's default init,
U(-1/sqrt(32), 1/sqrt(32))): each step jumps over the point where the gradient vanishes, the
gradient changes sign, and the next step jumps back. The weights settle into a two-step cycle
around the minimum instead of into it, and since the loss is not symmetric around its minimum,
the two ends of the cycle have different losses: the loss zig-zags, every change reversing
the last one, by 10-30 % each time, for as long as the run lasts. (The very first step is
10 lr per weight, as v starts at 0 and v_1 = 0.01 g^2: the loss jumps from 0.7 to over 60
within two steps before it comes down; Adam's bias correction exists to avoid this.) The run is full-batch, so
every wiggle of the loss is the optimizer's, not minibatch noise, and it is bounded: the steps
have a fixed size, so the weights cannot run away, and the loss does not diverge.

Fix: a 30x lower learning rate, 0.005. The weights still hop around their minimum, but by 0.005
instead of 0.15, which changes the loss by a fraction of a percent: the loss settles. (RMSprop
needs a bigger cut than the doctor's usual 3-10x, because its steps do not shrink near the
minimum; at 0.01 the updates are still > 1 % of the weights per step.) A learning rate that
decays to 0 (CosineAnnealingLR) also ends the bouncing, but only once it has decayed.
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Oscillation: RMSprop with a too-high learning rate makes the loss zig-zag without settling"
FAILURE = "oscillation"
STATEMENT = ("reproduce: with RMSprop at lr 0.15 (full batch), over the last 50 steps > 85% of the consecutive changes "
             "of the loss reverse direction, with a median swing > 10%, and the loss stays finite; fix: at lr 0.005 "
             "the median swing is < 1%, the run is diagnosed healthy and validation accuracy is > 90%")

WIDTH, HIGH_LEARNING_RATE, LEARNING_RATE = 32, 0.15, 0.005
# The turning rate and swing are measured over this many last steps (the doctor's window is 50 too).
LAST_STEPS = 50


def _setup(fast, learning_rate):
    mg.manual_seed(0)
    data = mg.data.moons(n_samples=400, noise=0.3, seed=0)
    model = mlp([2, WIDTH, 2])
    optimizer = mg.optim.RMSprop(model.parameters(), lr=learning_rate)
    return data, model, optimizer, (150 if fast else 400)


def _measure_zigzag(run):
    """Over the last LAST_STEPS steps, with d_t = log(loss_t+1 / loss_t): turning_rate, the
    fraction of consecutive changes with d_t d_t+1 < 0 (2/3 for random noise, 1 for a
    zig-zag), and median_swing, exp(median |d_t|) - 1."""
    changes = np.diff(np.log(run.history["loss"][-LAST_STEPS:]))
    run.measurements["turning_rate"] = float(np.mean(changes[:-1] * changes[1:] < 0))
    run.measurements["median_swing"] = float(np.expm1(np.median(np.abs(changes))))
    return run


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, HIGH_LEARNING_RATE)
    return _measure_zigzag(train(f"RMSprop lr {HIGH_LEARNING_RATE:g}", model, data, optimizer, steps))


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast, LEARNING_RATE)
    return _measure_zigzag(train(f"RMSprop lr {LEARNING_RATE:g}", model, data, optimizer, steps))
