"""Layers that map features to features: Linear, Identity, Flatten, Embedding."""

import math

import numpy as np

from minigrad import functional as F
from minigrad.autograd import no_grad
from minigrad.nn import init
from minigrad.nn.module import Module, check_size, new_parameter
from minigrad.tensor import Tensor


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) and b of shape (out_features,).

    Initialized as PyTorch: W ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) (that is
    kaiming_uniform_ with a = sqrt(5)) and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)),
    W drawn first. The forward pass is the fused op ``minigrad.functional.linear``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=None):
        super().__init__()
        check_size("in_features", in_features, "Linear")
        check_size("out_features", out_features, "Linear")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = new_parameter((out_features, in_features), dtype)
        if bias:
            self.bias = new_parameter((out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x. Accepts and ignores any constructor arguments, as PyTorch's (a drop-in stand-in
    for a layer being switched off)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one; by default all but the batch dimension."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Embedding(Module):
    """A lookup table: y[..., :] = weight[indices[...], :], weight of shape
    (num_embeddings, embedding_dim), initialized N(0, 1) as PyTorch.

    The gradient of a row is the sum of the gradients of every position that looked it up.
    With padding_idx, that row starts at zero and never receives a gradient (PyTorch's
    semantics: it stays whatever it holds, typically zero, through training).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *, dtype=None):
        super().__init__()
        check_size("num_embeddings", num_embeddings, "Embedding")
        check_size("embedding_dim", embedding_dim, "Embedding")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = new_parameter((num_embeddings, embedding_dim), dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                # An int index gives a view, so this zeroes the row inside the weight.
                self.weight[self.padding_idx].zero_()

    def forward(self, indices):
        index_array = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
        if index_array.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers (int64), got {index_array.dtype}")
        if index_array.size and (index_array.min() < 0 or index_array.max() >= self.num_embeddings):
            raise IndexError(
                f"Embedding: indices must lie in [0, {self.num_embeddings}), "
                f"got values in [{index_array.min()}, {index_array.max()}]"
            )
        rows = self.weight[index_array]
        if self.padding_idx is None:
            return rows
        # Same values either way; only the branch with history passes a gradient back, so
        # positions that looked up the padding row send it none.
        looks_up_real_row = (index_array != self.padding_idx)[..., None]
        return F.where(looks_up_real_row, rows, rows.detach())

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text
