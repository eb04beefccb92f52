"""Loss spike: one corrupted batch late in training throws the model off, and the run ends before it
has recovered.

Fifty steps before the end of the run, one minibatch arrives with its inputs multiplied by 1000
(a unit bug, an unnormalized record, a sentinel value like 1e4 for "missing"). The first layer's
pre-activations, and with them the logits, are 1000x too large: that batch's loss is in the
hundreds and its gradient norm in the thousands, 1000x the usual. Adam (lr 0.01) keeps that
gradient in both of its moment estimates:

    m <- 0.9 m + 0.1 g          the bad g dominates m for about 20 steps (0.9^20 = 0.12)
    v <- 0.999 v + 0.001 g^2    v is inflated about 1000-fold and decays over ~1000 steps
    w <- w - lr m_hat / sqrt(v_hat)

For about 20 steps m_hat / sqrt(v_hat) stays near 0.9^k for every weight the bad batch touched,
so each of them drifts by about lr per step in the direction that batch asked for, while the
steps the good batches ask for are divided by sqrt(1000) = 30 or more. The net drifts away
from where it was (within 10 steps the loss climbs from about 0.15 to about 1, worse than a coin
flip's 0.69) and then finds its way back slowly; 50 steps after the bad batch, when the run
ends, it has not got back, and the doctor reports a spike that has not recovered.

Fix: clip the global gradient norm to 1 before each step (clip_grad_norm_(params, 1.0); the
usual norm here is about 0.3, so clipping acts on the bad batch and a few of the first steps). That batch still has a
huge loss (it is computed before the step), but its gradient enters m and v with norm 1, the
weights move no further than on any other step, and the loss carries on where it was: the spike
is one point, recovered at once (the doctor notes it and calls the run healthy). Clipping bounds
what any single batch can do to the weights (Pascanu et al. 2013), whatever went wrong with
that batch; finding and removing the bad records is the other half of the fix.

The other common source of spikes is a learning rate that is too high early in training, when
Adam's v is still a poor estimate (Adam with a large LR on a deep net, without warmup); the fix
for that one is learning-rate warmup (mg.optim.lr_scheduler.LinearLR over the first few hundred
steps), usually together with clipping.
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Loss spike: one corrupted batch (inputs x1000) throws Adam off late in training"
FAILURE = "loss_spike"
STATEMENT = ("reproduce: the corrupted batch, 50 steps before the end, has a loss > 100x the loss before it; over "
             "the 40 steps after it the median loss is > 1.5x the median of the 40 steps before, and the run ends "
             "before the loss is back (the doctor: spike not recovered); fix: with clip_grad_norm_(params, 1.0) "
             "the median loss after the bad batch stays below 1.2x the one before and the run is diagnosed healthy")

WIDTH, LEARNING_RATE, INPUT_SCALE, MAX_NORM = 32, 0.01, 1000.0, 1.0
# The corrupted batch arrives this many steps before the end of the run.
STEPS_AFTER_BAD_BATCH = 50
# Medians of the loss are compared over this many steps before and after the bad batch.
COMPARED_STEPS = 40


def _setup(fast):
    mg.manual_seed(0)
    data = mg.data.moons(n_samples=400, noise=0.3, seed=0)
    he_init = lambda weight: mg.nn.init.kaiming_normal_(weight, nonlinearity="relu")  # noqa: E731
    model = mlp([2, WIDTH, WIDTH, 2], init=he_init)
    optimizer = mg.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps = 200 if fast else 400
    return data, model, optimizer, steps, steps - STEPS_AFTER_BAD_BATCH


def _corrupt_one_batch(bad_step):
    """A batch_hook that multiplies the inputs of the batch at `bad_step` by INPUT_SCALE."""
    def hook(step, inputs, targets):
        return (inputs * INPUT_SCALE, targets) if step == bad_step else (inputs, targets)
    return hook


def _measure_spike(run, bad_step):
    """spike_ratio: the bad batch's loss over the median loss of the COMPARED_STEPS steps before
    it; setback_ratio: the median loss of the COMPARED_STEPS steps after it over that median."""
    loss, steps = run.history["loss"], run.history.steps
    at = int(np.flatnonzero(steps == bad_step)[0])
    before = float(np.median(loss[at - COMPARED_STEPS:at]))
    run.measurements["spike_ratio"] = float(loss[at] / before)
    run.measurements["setback_ratio"] = float(np.median(loss[at + 1:at + 1 + COMPARED_STEPS]) / before)
    return run


def reproduce(fast=False):
    data, model, optimizer, steps, bad_step = _setup(fast)
    run = train(f"Adam lr {LEARNING_RATE:g}, bad batch at step {bad_step}", model, data, optimizer, steps,
                batch_size=64, batch_hook=_corrupt_one_batch(bad_step))
    return _measure_spike(run, bad_step)


def fix(fast=False):
    data, model, optimizer, steps, bad_step = _setup(fast)
    run = train(f"Adam lr {LEARNING_RATE:g} + clip_grad_norm_({MAX_NORM:g})", model, data, optimizer, steps,
                batch_size=64, batch_hook=_corrupt_one_batch(bad_step), max_norm=MAX_NORM)
    return _measure_spike(run, bad_step)
