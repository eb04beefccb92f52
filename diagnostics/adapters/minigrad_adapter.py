"""minigrad models: parameters, gradients and activations are already NumPy arrays."""

from diagnostics.adapters.base import ModuleAdapter
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


class MinigradAdapter(ModuleAdapter):
    """Reads a minigrad.nn.Module through its public API and hooks; arrays are read in place,
    not copied. (A gradient may be None for a parameter that got none: the Recorder skips it.)"""

    framework = "minigrad"

    def to_numpy(self, tensor):
        return tensor.data

    def grad(self, parameter):
        return parameter.grad  # already an array (or None)

    def no_grad(self):
        """A context in which forward passes build no graph."""
        return no_grad()

    def as_input(self, array):
        """A batch of inputs (a NumPy array) as the model takes it."""
        return Tensor(array)
