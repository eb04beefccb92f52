"""Overfitting: a big net memorizes 60 noisy points; validation loss turns up while training loss falls.

The data are two spiral arms with a large angle jitter (noise = 0.8 rad), so the arms overlap:
some points sit on the other class's side and no classifier gets every point right. The net
(2-128-128-2 ReLU, about 17,000 weights) sees only 60 of them. With 280 weights per training
point it can memorize every label, noise included, and Adam drives the training cross-entropy
toward 0 by growing the logits without bound. For the first few dozen steps the net learns the
spiral, and training and validation loss fall together. Then it fits the overlap: each
validation point on the wrong side costs -log p(true class), which grows linearly with the
logit scale, so the validation loss bottoms out and climbs to several times its minimum while
the training loss keeps falling. The validation minimum is where to stop (early stopping;
Prechelt 1998, "Early stopping - but when?"), and the doctor reports that step.

Fix: decoupled weight decay, AdamW(weight_decay=3) (Loshchilov & Hutter 2019). Each step
shrinks every weight by lr * lambda = 3 %, while Adam's normalized step moves a weight by at
most about lr. The two balance where lambda |w| ~ |m / sqrt(v)| <= 1, so the weights stay below
about 1 / lambda = 0.33: the logits cannot grow without bound, the net cannot afford to bend
around every noisy point, and the validation loss settles at its minimum instead of rising
(same data, same seed, same optimizer and learning rate; only the decay differs).
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Overfitting: a 17k-weight net on 60 noisy points; validation loss rises while training loss falls"
FAILURE = "overfitting"
STATEMENT = ("reproduce: training loss falls below 0.01 while validation loss bottoms out within the first 50 "
             "steps and ends more than 1.5x its minimum; the doctor's stopping step is that minimum "
             "(early_stopping_step); fix: AdamW(weight_decay=3) keeps training loss above 0.1 and validation "
             "loss ends within 10% of its minimum; diagnosis healthy")

WIDTH, LEARNING_RATE, WEIGHT_DECAY, VAL_EVERY = 128, 0.01, 3.0, 5


def _setup(fast, weight_decay):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=300, noise=0.8, val_fraction=0.8, seed=0)
    model = mlp([2, WIDTH, WIDTH, 2])
    optimizer = mg.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=weight_decay)
    return data, model, optimizer, (150 if fast else 300)


def _measure_validation(run):
    """Add where the validation loss was lowest (the early-stopping step) and how far it rose after."""
    history = run.history
    evaluated = np.isfinite(history["val_loss"])
    val_loss, steps = history["val_loss"][evaluated], history["step"][evaluated]
    lowest = int(np.argmin(val_loss))
    run.measurements.update({
        "early_stopping_step": int(steps[lowest]),
        "best_val_loss": float(val_loss[lowest]),
        "final_over_best_val_loss": float(val_loss[-1] / val_loss[lowest]),
        "final_train_loss": float(history["loss"][-1]),
    })
    return run


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, weight_decay=0.0)
    return _measure_validation(train("no regularization", model, data, optimizer, steps, val_every=VAL_EVERY))


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast, weight_decay=WEIGHT_DECAY)
    return _measure_validation(train(f"AdamW(weight_decay={WEIGHT_DECAY:g})", model, data, optimizer, steps,
                                     val_every=VAL_EVERY))
