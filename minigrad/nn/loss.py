"""Loss functions as modules: thin wrappers over ``minigrad.functional``, called as
``loss_fn(input, target)``.

`reduction` is "mean" (default), "sum" or "none" (one loss per example). Class weights and
pos_weight are registered as buffers, so they appear in state_dict() as in PyTorch. Options
after `weight` are keyword-only: PyTorch's positional order has deprecated arguments
(size_average, reduce) in between, and a silent shift would be worse than an error.
"""

from minigrad import functional as F
from minigrad.nn.module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction


class MSELoss(_Loss):
    """(input - target)^2, averaged or summed. Shapes must match (no broadcasting)."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """-log softmax(input)[target] from logits, for class indices (or class probabilities);
    weight: per-class weights, ignore_index: targets to skip, label_smoothing: e mixes the
    target with the uniform distribution, (1 - e) * target + e / C."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """-input[target] for log-probabilities (the output of LogSoftmax), with optional class
    weights; "mean" divides by the sum of the weights of the targets used."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """-[p y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x))] for logits x and targets y in [0, 1],
    stable for large |x|; weight rescales each element, pos_weight (p) the positive term."""

    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
