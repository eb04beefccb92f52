"""What every adapter shares: which module classes are activations, and of what kind."""

# Activation module class name -> kind. The kind decides which statistics make sense:
# the ReLU family can die (no input ever above 0); tanh and sigmoid saturate.
ACTIVATION_KINDS = {
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "ELU": "elu",
    "GELU": "gelu",
    "Softplus": "softplus",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
}

RELU_FAMILY = ("relu", "leaky_relu", "prelu", "elu", "gelu", "softplus")
SATURATING = ("tanh", "sigmoid")


def activation_kind(module) -> str | None:
    """'relu', 'tanh', ... for an activation module (by class name, so minigrad's and torch's
    modules agree), None for anything else."""
    return ACTIVATION_KINDS.get(type(module).__name__)


class ModuleAdapter:
    """The interface the Recorder and the model checks use, written once: minigrad and PyTorch
    modules share the hook API (register_forward_hook, register_forward_pre_hook, a tensor's
    register_hook), so a framework's adapter only says how to read a tensor as an array
    (`to_numpy`), which parameters count, and how to build inputs and a no-graph context."""

    framework = "?"

    def __init__(self, model):
        self.model = model

    def to_numpy(self, tensor):
        raise NotImplementedError

    def named_parameters(self) -> list:
        return [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]

    def value(self, parameter):
        return self.to_numpy(parameter)

    def grad(self, parameter):
        return None if parameter.grad is None else self.to_numpy(parameter.grad)

    def named_modules(self) -> list:
        return list(self.model.named_modules())

    def kind(self, module) -> str | None:
        return activation_kind(module)

    def is_training(self) -> bool:
        return self.model.training

    def add_forward_hook(self, module, callback):
        """callback(input_array, output_array, output_handle) after each forward of `module`;
        output_handle is what `add_gradient_hook` takes."""
        def hook(module, args, output):
            callback(self.to_numpy(args[0]), self.to_numpy(output), output)

        return module.register_forward_hook(hook)

    def add_forward_pre_hook(self, callback):
        """callback() before each forward of the whole model."""
        def hook(module, args):
            callback()

        return self.model.register_forward_pre_hook(hook)

    def add_gradient_hook(self, output, callback):
        """callback(gradient_array) when backward reaches `output` (if it is in the graph)."""
        if output.requires_grad:
            output.register_hook(lambda grad: callback(self.to_numpy(grad)))
