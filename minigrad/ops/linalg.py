"""Matrix multiplication, for 1-D, 2-D and batched operands, broadcasting batch dimensions."""

import numpy as np

from minigrad.autograd import Function, as_tensor


class MatMul(Function):
    """C = A @ B (each at least 2-D; leading dimensions are batch dimensions and broadcast);
    dL/dA = G @ B^T,  dL/dB = A^T @ G  (^T swaps the last two dimensions). A gradient that
    came out with broadcast batch dimensions is summed back by the engine."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return np.matmul(a.data, b.data)

    def backward(self, grad):
        a, b = self.saved_tensors
        return (
            grad @ b.mT if self.needs_input_grad[0] else None,
            a.mT @ grad if self.needs_input_grad[1] else None,
        )


def matmul(a, b):
    """a @ b with NumPy's rules: a 1-D first operand is a row vector, a 1-D second operand a
    column vector, and the added dimension is removed from the result."""
    a, b = as_tensor(a, b), as_tensor(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        inner_b = b.shape[0 if b.ndim == 1 else -2]
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align: {a.shape[-1]} != {inner_b}"
        )
    if a.ndim == 1 and b.ndim == 1:
        return (a.unsqueeze(0) @ b.unsqueeze(1)).reshape(())
    if a.ndim == 1:
        return MatMul.apply(a.unsqueeze(0), b).squeeze(-2)
    if b.ndim == 1:
        return MatMul.apply(a, b.unsqueeze(1)).squeeze(-1)
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)

