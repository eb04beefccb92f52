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
