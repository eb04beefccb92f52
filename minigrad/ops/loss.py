"""Loss functions: cross_entropy, nll_loss, mse_loss, binary_cross_entropy_with_logits.

All are built from primitives (log_softmax, softplus, getitem, sum) and take `reduction`:
"mean" (default), "sum" or "none" (one loss per example), as in PyTorch.
"""

import numpy as np

from minigrad.autograd import Function, as_tensor
from minigrad.ops.activation import softplus
from minigrad.ops.nn_ops import log_softmax

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses, reduction, name):
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _classes_last(scores, target):
    """(N, C, d1, ...) scores with (N, d1, ...) targets -> (M, C) and (M,); (C,) with () -> (1, C)."""
    if scores.ndim == 2:
        return scores, target.reshape(-1)
    if scores.ndim == 1:
        return scores.reshape(1, -1), target.reshape(1)
    if scores.ndim > 2:
        scores = scores.permute(0, *range(2, scores.ndim), 1)
    return scores.reshape(-1, scores.shape[-1]), target.reshape(-1)


class NLLLoss(Function):
    """loss = -sum_n s_n * log_probs[n, y_n], one target class y_n per example (row n), where
    s_n = w_n / sum_m w_m for "mean" and s_n = w_n for "sum"; "none" keeps the per-example terms.
    w_n is the weight of y_n's class, and 0 for an ignored example.

    d loss / d log_probs[n, c] = -s_n if c == y_n, else 0.

    A primitive, not getitem, multiply, sum and divide: the loss is linear in log_probs, so its
    gradient is one constant array, the -s_n placed at the targets, times the incoming gradient.
    """

    def forward(self, log_probs, targets=None, example_weights=None, reduction="mean"):
        self.shape, self.targets, self.reduction = log_probs.shape, targets, reduction
        self.scale = example_weights
        if reduction == "mean":
            total = example_weights.sum()
            # Every example ignored: the mean is 0/0 = NaN, as in PyTorch.
            self.scale = example_weights / total if total != 0 else np.full_like(example_weights, np.nan)
        losses = -log_probs.data[np.arange(len(targets)), targets] * self.scale
        return losses if reduction == "none" else losses.sum()

    def backward(self, grad):
        gradient = np.zeros(self.shape, dtype=grad.dtype)
        gradient[np.arange(len(self.targets)), self.targets] = -self.scale
        return (grad.reshape(-1, 1) if self.reduction == "none" else grad) * gradient


def nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    """loss_n = -w[y_n] * log_probs[n, y_n] for class indices y_n (examples whose target is
    ignore_index are left out); "mean" divides by the sum of the weights w[y_n] used. The class
    weights are constants, as in PyTorch (no gradient flows to them)."""
    target = as_tensor(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (integers), got {target.dtype}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"nll_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    scores, flat_target = _classes_last(log_probs, target.data)
    expected = log_probs.shape[:1] + log_probs.shape[2:] if log_probs.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"nll_loss: target shape {target.shape} does not match input shape {log_probs.shape} (expected {expected})")
    num_classes = scores.shape[1]
    kept = flat_target != ignore_index
    bad = kept & ((flat_target < 0) | (flat_target >= num_classes))
    if bad.any():
        raise IndexError(f"nll_loss: target {flat_target[bad][0]} is out of bounds for {num_classes} classes")
    safe_target = np.where(kept, flat_target, 0)
    example_weights = kept.astype(scores.dtype)
    if weight is not None:
        example_weights *= as_tensor(weight).data[safe_target].astype(scores.dtype, copy=False)
    losses = NLLLoss.apply(scores, targets=safe_target, example_weights=example_weights, reduction=reduction)
    return losses.reshape(target.shape) if reduction == "none" else losses


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits and targets, as PyTorch's F.cross_entropy.

    target holds class indices (integers, shape (N,) for input (N, C)) or class probabilities
    (floats, the shape of input). With label smoothing e the target becomes
    (1 - e) * target + e / C. Computed from log_softmax, so it is finite for logits of
    magnitude 1e4.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    target = as_tensor(target)
    class_dim = 0 if input.ndim == 1 else 1
    log_probs = log_softmax(input, dim=class_dim)
    num_classes = input.shape[class_dim]
    if target.is_floating_point():
        return _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing, class_dim)
    loss = nll_loss(log_probs, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return loss
    scores, flat_target = _classes_last(log_probs, target.data)
    kept = (flat_target != ignore_index).astype(scores.dtype)
    per_class = scores if weight is None else scores * as_tensor(weight)
    smooth = -per_class.sum(1) * kept
    if reduction == "mean":
        if weight is None:
            denominator = kept.sum()
        else:
            denominator = (as_tensor(weight).data[np.where(kept > 0, flat_target, 0)] * kept).sum()
        smooth = smooth.sum() / denominator
    elif reduction == "none":
        smooth = smooth.reshape(target.shape)
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * loss + smooth * (label_smoothing / num_classes)


def _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing, class_dim):
    """loss_n = -sum_c w_c * t_nc * log p_nc for probability targets; "mean" divides by the
    number of examples (and positions), as PyTorch does."""
    if target.shape != log_probs.shape:
        raise ValueError(f"cross_entropy: probability targets must have the input's shape {log_probs.shape}, got {target.shape}")
    num_classes = log_probs.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / num_classes
    terms = log_probs * target
    if weight is not None:
        shape = [1] * log_probs.ndim
        shape[class_dim] = num_classes
        terms = terms * as_tensor(weight).reshape(shape)
    return _reduce(-terms.sum(class_dim), reduction, "cross_entropy")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (input - target)^2.

    Unlike PyTorch (which warns and broadcasts), shapes must match: an (N, 1) prediction
    against an (N,) target would broadcast to (N, N) and silently train on the wrong loss.
    """
    target = as_tensor(target, input)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {input.shape} and target shape {target.shape} differ; "
            "reshape one of them (e.g. prediction.reshape(-1) or target.reshape(-1, 1))"
        )
    difference = input - target
    return _reduce(difference * difference, reduction, "mse_loss")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """loss = -w [p y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x))] for logits x, p = pos_weight.

    Uses ln sigmoid(x) = -softplus(-x) and ln(1 - sigmoid(x)) = -softplus(x), which stay finite
    for |x| = 1e4 where the logs of sigmoid's output would be -inf.
    """
    target = as_tensor(target, input)
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input shape {input.shape} and target shape {target.shape} differ")
    positive_term = softplus(-input) * target
    if pos_weight is not None:
        positive_term = positive_term * as_tensor(pos_weight, input)
    losses = positive_term + softplus(input) * (1 - target)
    if weight is not None:
        losses = losses * as_tensor(weight, input)
    return _reduce(losses, reduction, "binary_cross_entropy_with_logits")

