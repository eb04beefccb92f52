"""Learning rate too low: the loss falls slowly and steadily, and never bends.

To first order one gradient step changes the loss by dL = -lr_eff ||g||^2, with
lr_eff = lr / (1 - momentum) once momentum has built up. Here SGD with momentum 0.9 at lr 3e-4
gives lr_eff = 3e-3; with ||g|| about 0.45 each step takes 3e-3 * 0.2 = 6e-4 off a loss of
0.69, so the log-loss falls by about 9e-4 per step, and it would take thousands of steps to
reach the bottom. Steps this small see no curvature (the second-order term lr^2 g^T H g / 2
is negligible), so the loss falls at the same rate from start to end: in log scale a straight
line, with the same slope in the last third of the run as in the first. A healthy run drops
fast, then flattens as it nears a minimum (its last-third slope is a few % of its first). The
update-to-weight ratio tells the same story: the first layer's weights move by less than 1e-4 of
their norm per step, where about 1e-3 is healthy (CS231n).

Fix: the learning rate the LR range test suggests (Smith 2017; diagnostics.lr_finder.LRFinder).
The test trains for 100 steps with the learning rate growing from 1e-5 to 10, records the loss
at each, and reads a learning rate off the curve where the loss falls fastest, before it blows
up; it leaves the model and the optimizer as they were. For this net it suggests about 0.14, about
450 times more: the loss falls to a fifth of its start within 50 steps and to under 1 % of it by
the end of the run.
"""

import numpy as np

import minigrad as mg
from diagnostics.curves import theil_sen_slope
from diagnostics.experiments.base import mlp, train
from diagnostics.lr_finder import LRFinder

TITLE = "Learning rate too low: the loss creeps down along a straight line and never bends"
FAILURE = "lr_too_low"
STATEMENT = ("reproduce: at lr 3e-4 the log-loss falls as fast in the last third of the run as in the first "
             "(slope ratio between 1/3 and 3) and ends above 70% of its initial value; fix: the LR range test "
             "suggests a learning rate over 100x larger, with which the loss ends below 5% of its initial value "
             "and validation accuracy is > 95%")

LEARNING_RATE, BATCH_SIZE = 3e-4, 64


def _setup(fast):
    mg.manual_seed(0)
    data = mg.data.moons(n_samples=400, noise=0.1, seed=0)
    model = mlp([2, 32, 32, 2])
    optimizer = mg.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    return data, model, optimizer, (150 if fast else 400)


def _measure_curve(run):
    """slope_ratio: the Theil-Sen slope of log(loss) in the last third of the run over the one in
    the first third (about 1: a straight line; near 0: it bent). loss_fraction_remaining: the
    median loss of the last 10 % of the steps over the median of the first 5."""
    log_loss, steps = np.log(run.history["loss"]), run.history.steps
    third = len(log_loss) // 3
    first = theil_sen_slope(steps[:third], log_loss[:third])
    last = theil_sen_slope(steps[-third:], log_loss[-third:])
    run.measurements["slope_ratio"] = float(last / first)
    run.measurements["loss_fraction_remaining"] = float(
        np.exp(np.median(log_loss[-max(5, len(log_loss) // 10):]) - np.median(log_loss[:5])))
    return run


def suggested_learning_rate(model, optimizer, data) -> float:
    """The consensus learning rate of an LR range test over the training minibatches."""
    loader = mg.data.DataLoader(data.train, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, seed=0)
    finder = LRFinder(model, optimizer, mg.nn.CrossEntropyLoss())
    finder.range_test(loader, start_lr=1e-5, end_lr=10, num_iter=100)
    return finder.suggestion().lr


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast)
    return _measure_curve(train(f"SGD lr {LEARNING_RATE:g}", model, data, optimizer, steps, batch_size=BATCH_SIZE))


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast)
    learning_rate = suggested_learning_rate(model, optimizer, data)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    run = train(f"SGD lr {learning_rate:.2g} (LR range test)", model, data, optimizer, steps, batch_size=BATCH_SIZE)
    run.measurements["suggested_lr"] = learning_rate
    return _measure_curve(run)
