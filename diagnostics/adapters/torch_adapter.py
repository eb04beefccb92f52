"""PyTorch models, through torch's own hooks; tensors are copied to NumPy on the CPU."""

from diagnostics.adapters.base import activation_kind


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


class TorchAdapter:
    """Reads a torch.nn.Module: the same interface as MinigradAdapter."""

    framework = "torch"

    def __init__(self, model):
        import torch  # noqa: F401  (fails clearly when torch is not installed)

        self.model = model

    def named_parameters(self) -> list:
        return [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]

    def value(self, parameter):
        return _numpy(parameter)

    def grad(self, parameter):
        return None if parameter.grad is None else _numpy(parameter.grad)

    def named_modules(self) -> list:
        return list(self.model.named_modules())

    def kind(self, module) -> str | None:
        return activation_kind(module)

    def is_training(self) -> bool:
        return self.model.training

    def no_grad(self):
        import torch

        return torch.no_grad()

    def as_input(self, array):
        import torch

        return torch.as_tensor(array)

    def add_forward_hook(self, module, callback):
        def hook(module, args, output):
            callback(_numpy(args[0]), _numpy(output), output)

        return module.register_forward_hook(hook)

    def add_forward_pre_hook(self, callback):
        def hook(module, args):
            callback()

        return self.model.register_forward_pre_hook(hook)

    def add_gradient_hook(self, output, callback):
        if output.requires_grad:
            output.register_hook(lambda grad: callback(_numpy(grad)))
