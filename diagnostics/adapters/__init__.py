"""Adapters: the few things the Recorder needs from a model, for each framework.

An adapter lists a model's parameters and activation modules, reads their values and gradients
as NumPy arrays, and installs hooks that hand activations (and their gradients) to a callback.
minigrad is native (its arrays are read without copying); PyTorch models work through
torch's own hooks when torch is installed. Everything downstream of the Recorder (detectors,
doctor, plots) works on arrays and never sees the framework.
"""

from diagnostics.adapters.base import ACTIVATION_KINDS, activation_kind
from diagnostics.adapters.minigrad_adapter import MinigradAdapter


def adapt(model):
    """The adapter for `model`: a minigrad Module or a torch.nn.Module."""
    from minigrad.nn import Module

    if isinstance(model, Module):
        return MinigradAdapter(model)
    if type(model).__module__.startswith("torch") or _is_torch_module(model):
        from diagnostics.adapters.torch_adapter import TorchAdapter

        return TorchAdapter(model)
    raise TypeError(
        f"Recorder: cannot attach to a {type(model).__name__}; expected a minigrad.nn.Module or a "
        "torch.nn.Module (for other frameworks, record arrays yourself and build a History)"
    )


def _is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


__all__ = ["ACTIVATION_KINDS", "activation_kind", "adapt", "MinigradAdapter"]
