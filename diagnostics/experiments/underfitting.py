"""Underfitting: a linear classifier cannot follow two spirals; training and validation loss stay high together.

The two classes are spiral arms that wind once around the origin. A linear classifier (logistic
regression: one Linear(2, 2) layer, 6 weights) can only draw one straight line through the
plane, and every line cuts both arms into pieces lying on either side of it. Its best line gets
about 60 % of the points right (chance is 50 %), and its cross-entropy cannot go much below
0.58 (ln 2 = 0.69 is a coin flip): training for 4x longer leaves it at the same 0.58. Because
the model is too simple to memorize anything, the validation loss is just as high as the
training loss: high and close is the signature of too little capacity (high training loss and a
low validation loss cannot happen; a low training loss with a high validation loss is
overfitting). Regularization would only make it worse.

Fix: capacity. A 2-32-32-2 ReLU MLP (1,200 weights) draws a boundary made of many linear
pieces, one bend per hidden unit that switches on or off, which is enough to follow the arms
(Montufar et al. 2014 count the linear regions of a ReLU net). Same data, same optimizer and
learning rate, same number of steps: the loss falls toward 0 and validation accuracy is > 95 %.
"""

import minigrad as mg
from diagnostics.experiments.base import mlp, train

TITLE = "Underfitting: a linear model on two spirals; training and validation loss stay high and close"
FAILURE = "underfitting"
STATEMENT = ("reproduce: a linear classifier's training loss ends above 70% of its initial value, its validation "
             "loss within 10% of the training loss, validation accuracy below 70%; fix: a 2-32-32-2 ReLU MLP "
             "brings the training loss below 0.1 and validation accuracy above 95%; diagnosis healthy")

LEARNING_RATE, WIDTH = 0.01, 32


def _setup(fast, sizes):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    model = mlp(sizes)
    optimizer = mg.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return data, model, optimizer, (150 if fast else 300)


def _measure_fit(run):
    """Add how much of the initial training loss is left, and the gap between validation and training loss."""
    loss = run.history["loss"]
    run.measurements.update({
        "final_train_loss": float(loss[-1]),
        "fraction_of_initial_loss": float(loss[-1] / loss[0]),
        "val_train_gap": float(abs(run.measurements["val_loss"] - loss[-1]) / loss[-1]),
    })
    return run


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, [2, 2])
    return _measure_fit(train("linear model", model, data, optimizer, steps))


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast, [2, WIDTH, WIDTH, 2])
    return _measure_fit(train(f"2-{WIDTH}-{WIDTH}-2 MLP", model, data, optimizer, steps))
