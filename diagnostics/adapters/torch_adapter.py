"""PyTorch models, through torch's own hooks; tensors are copied to NumPy on the CPU."""

from diagnostics.adapters.base import ModuleAdapter


class TorchAdapter(ModuleAdapter):
    """Reads a torch.nn.Module: the same interface as MinigradAdapter."""

    framework = "torch"

    def __init__(self, model):
        import torch  # noqa: F401  (fails clearly when torch is not installed)

        super().__init__(model)

    def to_numpy(self, tensor):
        return tensor.detach().cpu().numpy()

    def no_grad(self):
        import torch

        return torch.no_grad()

    def as_input(self, array):
        import torch

        return torch.as_tensor(array)
