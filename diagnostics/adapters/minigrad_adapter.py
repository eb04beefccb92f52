"""minigrad models: parameters, gradients and activations are already NumPy arrays."""

from diagnostics.adapters.base import activation_kind
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


class MinigradAdapter:
    """Reads a minigrad.nn.Module through its public API and hooks."""

    framework = "minigrad"

    def __init__(self, model):
        self.model = model

    def named_parameters(self) -> list:
        return list(self.model.named_parameters())

    def value(self, parameter):
        return parameter.data

    def grad(self, parameter):
        return parameter.grad

    def named_modules(self) -> list:
        return list(self.model.named_modules())

    def kind(self, module) -> str | None:
        return activation_kind(module)

    def is_training(self) -> bool:
        return self.model.training

    def no_grad(self):
        """A context in which forward passes build no graph."""
        return no_grad()

    def as_input(self, array):
        """A batch of inputs (a NumPy array) as the model takes it."""
        return Tensor(array)

    def add_forward_hook(self, module, callback):
        """callback(input_array, output_array, output_handle) after each forward of `module`;
        output_handle is what `add_gradient_hook` takes."""
        def hook(module, args, output):
            callback(args[0].data, output.data, output)

        return module.register_forward_hook(hook)

    def add_forward_pre_hook(self, callback):
        """callback() before each forward of the whole model."""
        def hook(module, args):
            callback()

        return self.model.register_forward_pre_hook(hook)

    def add_gradient_hook(self, output, callback):
        """callback(gradient_array) when backward reaches `output` (if it is in the graph)."""
        if output.requires_grad:
            output.register_hook(lambda grad: callback(grad.data))
