"""The random number generator behind randn, rand, init and dropout, seeded by manual_seed."""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed every random draw minigrad makes (factories, nn.init, dropout, data shuffling)."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The generator minigrad draws from when no other is given."""
    return _generator
