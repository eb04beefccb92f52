"""Containers: Sequential (a pipeline), ModuleList (a registered list), Residual (x + f(x))."""

from collections import OrderedDict

from minigrad.nn.module import Module, _indent


def _position(index, length: int, container: str) -> int:
    """`index` as a position in [0, length), negative indices counting from the end."""
    if not -length <= index < length:
        raise IndexError(f"{container}: index {index} is out of range for {length} modules")
    return index % length


class Sequential(Module):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x))).

    Children are named "0", "1", ... (or by the keys of an OrderedDict), so parameters are
    "0.weight", "0.bias", ... as in PyTorch. Supports len, iteration, indexing (negative too),
    slicing (a Sequential of the same modules, keeping their names) and append.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for position, module in enumerate(modules):
                self.add_module(str(position), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        names = list(self._modules)
        return self._modules[names[_position(index, len(names), "Sequential")]]

    def __setitem__(self, index: int, module: Module) -> None:
        names = list(self._modules)
        setattr(self, names[_position(index, len(names), "Sequential")], module)

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters the parent module sees (a plain Python list would hide
    them from parameters(), state_dict() and train()). Children are named "0", "1", ...;
    it has no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_position(index, len(self), "ModuleList"))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, str(_position(index, len(self), "ModuleList")), module)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert before position `index`, renumbering the modules after it."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)

    def __repr__(self) -> str:
        """As PyTorch: runs of identical modules are printed once, as ``(0-2): 3 x Linear(...)``."""
        if not self._modules:
            return "ModuleList()"
        runs = []  # [first index, last index, repr]
        for position, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = position
            else:
                runs.append([position, position, text])
        lines = []
        for first, last, text in runs:
            if first == last:
                lines.append(_indent(f"({first}): {text}"))
            else:
                lines.append(_indent(f"({first}-{last}): {last - first + 1} x {text}"))
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class Residual(Module):
    """y = x + block(x) (He et al. 2016, "Deep Residual Learning"): the block learns a
    correction to the identity, and the gradient reaches x directly through the sum.
    block(x) must have x's shape; broadcasting would silently compute something else."""

    def __init__(self, block: Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        out = self.block(x)
        if out.shape != x.shape:
            raise ValueError(
                f"Residual: the block maps shape {x.shape} to {out.shape}; x + block(x) needs the "
                "block to keep the shape (e.g. Linear(n, n), or add a projection)"
            )
        return x + out
