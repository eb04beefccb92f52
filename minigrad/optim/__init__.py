"""Optimizers (PyTorch's names, hyperparameters and update rules) and learning-rate schedulers.

    opt = minigrad.optim.Adam(params, lr=1e-3)
    scheduler = minigrad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for step in range(100):
        opt.zero_grad(); loss_fn(...).backward(); opt.step(); scheduler.step()
"""

from minigrad.optim import lr_scheduler
from minigrad.optim.adagrad import Adagrad
from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
