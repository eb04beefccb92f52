"""Module utilities: spectral normalization (as torch.nn.utils.spectral_norm).

Spectral normalization (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
Networks") divides a weight by its largest singular value sigma(W), so the layer's map is
1-Lipschitz: ||W x|| / ||x|| <= 1. A product of such layers cannot blow a signal (or a gradient)
up, which makes it a fix for exploding gradients next to clipping.

sigma(W) is estimated by power iteration, one step per forward pass in training mode, reusing
the vectors u, v of the previous step (so one step per pass is enough once they have converged):

    v <- W^T u / ||W^T u||,   u <- W v / ||W v||,   sigma = u^T W v

u and v are treated as constants in backward, so the gradient of W_SN = W / sigma(W) flows
through both W and the sigma computed from it, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn.module import Parameter
from minigrad.random import default_generator
from minigrad.tensor import Tensor


def _normalize(vector: np.ndarray, eps: float) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), eps)


class SpectralNorm:
    """The forward pre-hook that recomputes `name` from `name_orig` before each forward."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float):
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def weight_matrix(self, weight):
        """The weight as a matrix with `dim` as rows (a Linear weight (out, in) as it is)."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        matrix = self.weight_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.data[...] = _normalize(matrix.data.T @ u.data, self.eps)
                    u.data[...] = _normalize(matrix.data @ v.data, self.eps)
        # Copies, as in PyTorch: the next training-mode forward updates u and v in place, and
        # the backward of this forward must still see the vectors this forward used.
        u, v = u.detach().clone(), v.detach().clone()
        sigma = (u * (matrix @ v)).sum()
        return weight / sigma

    def __call__(self, module, args) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Replace `module.<name>` by <name>_orig / sigma(<name>_orig), recomputed before every
    forward. Adds the parameter `<name>_orig` and the buffers `<name>_u`, `<name>_v`; returns
    the module. `dim` is the output dimension (0 for Linear and Embedding weights)."""
    if any(isinstance(hook, SpectralNorm) and hook.name == name for hook in module._forward_pre_hooks):
        raise RuntimeError(f"spectral_norm: {name!r} of this module is already spectrally normalized")
    weight = getattr(module, name, None)
    if weight is None or name not in dict(module.named_parameters(recurse=False)):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter named {name!r}")
    hook = SpectralNorm(name, n_power_iterations, 0 if dim is None else dim, eps)
    rows, columns = hook.weight_matrix(weight).shape
    generator = default_generator()
    u = _normalize(generator.standard_normal(rows), eps).astype(weight.dtype)
    v = _normalize(generator.standard_normal(columns), eps).astype(weight.dtype)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", Tensor(u))
    module.register_buffer(name + "_v", Tensor(v))
    setattr(module, name, weight.detach())  # replaced by the normalized weight at the first forward
    module.register_forward_pre_hook(hook)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Undo spectral_norm: `name` becomes a parameter again, holding the normalized weight."""
    for hook in list(module._forward_pre_hooks):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module, do_power_iteration=False)
            module._forward_pre_hooks.remove(hook)
            for attribute in (name, name + "_orig", name + "_u", name + "_v"):
                delattr(module, attribute)
            module.register_parameter(name, Parameter(weight.data.copy()))
            return module
    raise ValueError(f"remove_spectral_norm: spectral_norm of {name!r} not found in {type(module).__name__}")
