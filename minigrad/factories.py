"""Ways to make tensors: from data, filled with a constant, or drawn at random (seeded)."""

import numpy as np

from minigrad.dtypes import get_default_dtype
from minigrad.random import default_generator
from minigrad.tensor import Tensor


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a copy of `data` (PyTorch's torch.tensor)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dtype_or_default(dtype):
    return np.dtype(dtype) if dtype is not None else get_default_dtype()


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=_dtype_or_default(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=_dtype_or_default(dtype)), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64
    return Tensor(np.full(_shape((shape,)), fill_value, dtype=_dtype_or_default(dtype)), requires_grad=requires_grad)


def zeros_like(other, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(other.shape, dtype=dtype or other.dtype), requires_grad=requires_grad)


def ones_like(other, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.ones(other.shape, dtype=dtype or other.dtype), requires_grad=requires_grad)


def full_like(other, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.full(other.shape, fill_value, dtype=dtype or other.dtype), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=_dtype_or_default(dtype)), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """Values from start (default 0) up to, not including, end; int64 for integer arguments."""
    if end is None:
        start, end = 0, start
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dtype = np.dtype(dtype) if dtype is not None else (np.dtype(np.int64) if integral else get_default_dtype())
    return Tensor(np.arange(start, end, step, dtype=dtype), requires_grad=requires_grad)


def linspace(start, end, steps: int, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.linspace(start, end, steps, dtype=_dtype_or_default(dtype)), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from minigrad's seeded generator (or `generator`)."""
    generator = generator or default_generator()
    samples = generator.standard_normal(_shape(shape)).astype(_dtype_or_default(dtype))
    return Tensor(samples, requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform samples in [0, 1) from minigrad's seeded generator (or `generator`)."""
    generator = generator or default_generator()
    samples = generator.random(_shape(shape)).astype(_dtype_or_default(dtype))
    return Tensor(samples, requires_grad=requires_grad)


def randint(low, high=None, size=(), generator=None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted), int64."""
    if high is None:
        low, high = 0, low
    generator = generator or default_generator()
    return Tensor(generator.integers(low, high, size=_shape((size,)), dtype=np.int64))
