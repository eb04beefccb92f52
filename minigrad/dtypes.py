"""The default floating dtype: what Python numbers, lists and new parameters become.

float32 by default, as in PyTorch; ``set_default_dtype(np.float64)`` switches (gradient checks
and comparisons with PyTorch to 1e-9 want float64). A tensor made from an ndarray keeps the
array's own floating dtype.
"""

import numpy as np

_FLOATING = (np.float16, np.float32, np.float64)
_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Make `dtype` (float16, float32 or float64) the dtype of new floating tensors."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.type not in _FLOATING:
        raise TypeError(f"set_default_dtype: only float16, float32 and float64 are supported, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    """The dtype new floating tensors get (float32 unless changed)."""
    return _default_dtype
