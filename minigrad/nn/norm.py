"""Normalization layers: BatchNorm1d (Ioffe & Szegedy 2015) and LayerNorm (Ba et al. 2016).

Both compute y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
(dividing by n), from differentiable ops (mean, subtraction, sqrt, division): the backward
pass, including the gradient through the batch mean and variance, follows exactly.
"""

import math

import numpy as np

from minigrad.nn import init
from minigrad.nn.module import Module, check_size, floating_dtype, new_parameter
from minigrad.ops.elementwise import sqrt
from minigrad.tensor import Tensor


def _normalize(x, dims: tuple, eps: float):
    """(x - mean) / sqrt(var + eps) over `dims`, with the biased variance; also returns the
    mean and variance (shaped to broadcast against x) for the running statistics."""
    mean = x.mean(dims, keepdim=True)
    centered = x - mean
    variance = (centered * centered).mean(dims, keepdim=True)
    return centered / sqrt(variance + eps), mean, variance


class BatchNorm1d(Module):
    """Batch normalization over (N, C) or (N, C, L) inputs, per channel C.

    Training mode: each channel is normalized with the mean and biased variance of its N (or
    N * L) values in the batch, and the running statistics are updated in place:

        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * n / (n - 1)

    (the running variance uses the unbiased variance, as PyTorch); momentum=None means a
    cumulative average, momentum = 1 / num_batches_tracked. Eval mode normalizes with the
    running statistics instead. With track_running_stats=False there are none, and batch
    statistics are used in both modes. affine=True learns weight (ones) and bias (zeros).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype=None):
        super().__init__()
        check_size("num_features", num_features, "BatchNorm1d")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = new_parameter((num_features,), dtype)
            if bias:
                self.bias = new_parameter((num_features,), dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=floating_dtype(dtype))))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=floating_dtype(dtype))))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight = 1, bias = 0, and fresh running statistics."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d: expected input of shape (N, {self.num_features}) or (N, {self.num_features}, L), "
                f"got {x.shape}"
            )
        dims = (0,) if x.ndim == 2 else (0, 2)
        channel_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training or self.running_mean is None:
            count = math.prod(x.shape[d] for d in dims)
            if count <= 1:
                raise ValueError(
                    f"BatchNorm1d: expected more than 1 value per channel when training, got input of shape {x.shape}"
                )
            normalized, mean, variance = _normalize(x, dims, self.eps)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean.data.reshape(-1), variance.data.reshape(-1), count)
        else:
            mean = self.running_mean.reshape(channel_shape)
            variance = self.running_var.reshape(channel_shape)
            normalized = (x - mean) / sqrt(variance + self.eps)
        if self.weight is not None:
            normalized = normalized * self.weight.reshape(channel_shape)
        if self.bias is not None:
            normalized = normalized + self.bias.reshape(channel_shape)
        return normalized

    def _update_running_stats(self, mean: np.ndarray, biased_variance: np.ndarray, count: int) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / self.num_batches_tracked.item()
        else:
            factor = self.momentum
        unbiased_variance = biased_variance * (count / (count - 1))
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_variance, alpha=factor)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class LayerNorm(Module):
    """Layer normalization over the last dimensions, those of `normalized_shape`, of each
    example separately: same formula as BatchNorm, no running statistics, the same in training
    and eval. elementwise_affine=True learns weight (ones) and bias (zeros) of shape
    normalized_shape."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 *, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(size) for size in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = new_parameter(self.normalized_shape, dtype)
            if bias:
                self.bias = new_parameter(self.normalized_shape, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight = 1, bias = 0."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        count = len(self.normalized_shape)
        if x.ndim < count or x.shape[x.ndim - count:] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: the last dimensions of the input must be {self.normalized_shape}, got shape {x.shape}"
            )
        normalized, _, _ = _normalize(x, tuple(range(x.ndim - count, x.ndim)), self.eps)
        if self.weight is not None:
            normalized = normalized * self.weight
        if self.bias is not None:
            normalized = normalized + self.bias
        return normalized

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
