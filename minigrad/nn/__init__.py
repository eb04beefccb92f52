"""minigrad.nn: layers, containers and losses with PyTorch's names and semantics.

    import minigrad.nn as nn
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
"""

from minigrad.nn import functional, init, utils
from minigrad.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from minigrad.nn.container import ModuleList, Residual, Sequential
from minigrad.nn.dropout import Dropout
from minigrad.nn.linear import Embedding, Flatten, Identity, Linear
from minigrad.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from minigrad.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
from minigrad.nn.norm import BatchNorm1d, LayerNorm

__all__ = [
    "functional", "init",
    "Module", "Parameter", "IncompatibleKeys", "StateDictError",
    "Linear", "Identity", "Flatten", "Embedding",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax",
    "BatchNorm1d", "LayerNorm", "Dropout",
    "Sequential", "ModuleList", "Residual",
    "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
]
