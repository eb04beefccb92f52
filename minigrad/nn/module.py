"""Module and Parameter: the building blocks of models, with PyTorch's names and semantics.

A Module keeps three ordered registries, filled by plain attribute assignment:

    self.weight = Parameter(...)   -> _parameters   (learned; returned by parameters())
    self.register_buffer(...)      -> _buffers      (state that is not learned: running means)
    self.layer = Linear(...)       -> _modules      (sub-modules, searched recursively)

Everything else (parameters(), state_dict(), train(), repr) walks these registries. Names are
dotted paths from the root, "0.weight" or "encoder.layer.bias", exactly as in PyTorch, so a
state dict's keys mean the same thing in both libraries.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from minigrad.autograd import no_grad
from minigrad.dtypes import get_default_dtype
from minigrad.tensor import RemovableHandle, Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable when it is assigned as an attribute.

    Parameter(data=None, requires_grad=True): `data` is a Tensor (whose memory is shared, as in
    PyTorch), an ndarray (kept with its dtype), or a list/number (the default dtype, float32).
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)
        if isinstance(data, Tensor):
            # One memory, one version counter: an in-place change through either is seen by both.
            self._version_counter = data._version_counter

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def floating_dtype(dtype=None) -> np.dtype:
    """The dtype a layer's parameters get: `dtype`, or the default dtype (float32) when None."""
    dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
    if dtype.kind != "f":
        raise TypeError(f"parameters must have a floating dtype, got {dtype}")
    return dtype


def new_parameter(shape, dtype=None) -> Parameter:
    """A zero-filled Parameter of `shape` in `dtype` (default: the default dtype), for a layer's
    __init__ to fill with its initialization."""
    return Parameter(np.zeros(shape, dtype=floating_dtype(dtype)))


def check_size(name: str, value, layer: str) -> None:
    """A layer size must be a non-negative int (a float or a negative number is a typo)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative integer, got {value!r}")


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns: the model's keys the state dict lacked, and the state
    dict's keys the model does not have."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class StateDictError(RuntimeError):
    """load_state_dict refused a state dict. Nothing was copied: the module is unchanged.

    missing_keys, unexpected_keys: lists of keys; mismatched_keys: {key: what is wrong}.
    """

    def __init__(self, message, missing_keys, unexpected_keys, mismatched_keys):
        super().__init__(message)
        self.missing_keys = missing_keys
        self.unexpected_keys = unexpected_keys
        self.mismatched_keys = mismatched_keys


class Module:
    """Base class of every layer and model. Subclasses call ``super().__init__()`` first,
    assign their parameters and sub-modules as attributes, and define ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ reads these registries, which do not exist yet.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", [])
        object.__setattr__(self, "_forward_hooks", [])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ------------------------------------------------------------------------------------------
    # calling: pre-hooks, forward, hooks
    # ------------------------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        # Copies of the hook lists: a hook may remove itself while running.
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks):
                replacement = hook(self, args)
                if replacement is not None:
                    args = replacement if isinstance(replacement, tuple) else (replacement,)
        output = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks):
                replacement = hook(self, args, output)
                if replacement is not None:
                    output = replacement
        return output

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; it may return replacement args
        (a tuple, or a single value that becomes a 1-tuple). ``handle.remove()`` unregisters."""
        self._forward_pre_hooks.append(hook)
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward; it may return a replacement
        output. ``handle.remove()`` unregisters."""
        self._forward_hooks.append(hook)
        return RemovableHandle(self._forward_hooks, hook)

    # ------------------------------------------------------------------------------------------
    # registration
    # ------------------------------------------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        registries = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if registries is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif registries is not None and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (Parameter or None "
                    "expected); wrap it as nn.Parameter(value), or change the values in place under "
                    "no_grad (self.weight.copy_(value))"
                )
            self._parameters[name] = None
        elif isinstance(value, Module):
            if registries is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif registries is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None expected)")
            self._modules[name] = None
        elif registries is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep) -> None:
        """Remove `name` from the plain attributes and every registry but `keep`, where it is
        about to be (re)assigned and keeps its place in the order."""
        for registry in (self.__dict__, self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str):
        # Called only when normal lookup fails: the name may be a registered entry.
        # self.__dict__ directly, since a half-built module (copy.deepcopy) has no registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, name, kind: str, registry) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name must be non-empty and contain no '.', got {name!r}")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` (or None, a declared but absent parameter such as a disabled bias)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_new_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' (Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is module state but not learned (BatchNorm's running mean).
        Persistent buffers are saved in state_dict(); non-persistent ones are not."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_new_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register `module` as a child named `name` (what attribute assignment does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------------------------------
    # traversal
    # ------------------------------------------------------------------------------------------

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, module) for this module ("" is its name) and every descendant, depth
        first; a module reachable by two paths is listed once unless remove_duplicate=False."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """(name, module) for each direct child, each module once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry_name: str, prefix: str, recurse: bool, remove_duplicate: bool):
        """(dotted name, tensor) from one registry of this module (and its descendants); a tensor
        shared by two modules is listed once, under its first name, unless remove_duplicate=False."""
        seen = set()
        owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for owner_prefix, owner in owners:
            for name, tensor in getattr(owner, registry_name).items():
                if tensor is None or (remove_duplicate and id(tensor) in seen):
                    continue
                seen.add(id(tensor))
                yield owner_prefix + ("." if owner_prefix else "") + name, tensor

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """(dotted name, Parameter), e.g. ("0.weight", ...), each parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """(dotted name, buffer), persistent and not, each buffer once."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # ------------------------------------------------------------------------------------------
    # modes and bulk changes
    # ------------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (Dropout drops, BatchNorm uses
        batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be True or False, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """train(False): Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient tracking of every parameter on or off (freezing a layer); returns self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (grad = None), or fill it with zeros."""
        for param in self.parameters():
            param.zero_grad(set_to_none)

    def apply(self, fn) -> Module:
        """Call fn(module) on every descendant, children before parents, then on self (as PyTorch;
        used for custom initialization: model.apply(init_weights)); returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, dtype) -> Module:
        """Convert every floating parameter and buffer (and gradient) to `dtype`, in place;
        integer buffers such as num_batches_tracked keep their dtype. Returns self."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to: only floating dtypes are supported, got {dtype}")
        tensors = list(self.parameters()) + list(self.buffers())
        for tensor in tensors:
            if tensor.is_floating_point():
                tensor.data = tensor.data.astype(dtype, copy=False)
                if tensor.grad is not None:
                    tensor.grad = tensor.grad.astype(dtype, copy=False)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # ------------------------------------------------------------------------------------------
    # state dict
    # ------------------------------------------------------------------------------------------

    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """OrderedDict of dotted name -> Tensor: every parameter and persistent buffer.

        The tensors are detached but share memory with the module (as in PyTorch): save them, or
        copy them (``{k: v.clone() for ...}``) to keep a snapshot. keep_vars=True returns the
        Parameters themselves. A parameter shared by two modules appears under both names.
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict: Mapping, strict: bool = True) -> IncompatibleKeys:
        """Copy values from `state_dict` (name -> Tensor or ndarray) into the parameters and
        persistent buffers, in place.

        Everything is checked before anything is copied: a value of the wrong shape, or whose
        dtype cannot be cast to the target's under NumPy's "same_kind" rule (float64 -> float32
        is fine, float -> int64 or anything non-numeric is not), is always an error; with
        strict=True (the default) so are keys the module lacks or does not have. One
        StateDictError lists every offending key, and the module is left unchanged.

        Returns IncompatibleKeys(missing_keys, unexpected_keys).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of names to tensors, got {type(state_dict).__name__}")
        targets = self.state_dict(keep_vars=True)
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        mismatched = {}
        for key, value in state_dict.items():
            if key in targets:
                problem = _load_problem(value, targets[key])
                if problem is not None:
                    mismatched[key] = problem
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(
                _load_error_message(type(self).__name__, missing, unexpected, mismatched, strict),
                missing, unexpected, mismatched,
            )
        with no_grad():
            for key, target in targets.items():
                if key in state_dict:
                    target.copy_(state_dict[key])
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------------------------------
    # printing
    # ------------------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout: the settings on one line, or each child on its own line as
        ``(name): child``, indented by two spaces."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_indent(repr(module))}" for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        if not lines:
            return type(self).__name__ + "()"
        if len(extra_lines) == 1 and not child_lines:
            return f"{type(self).__name__}({extra_lines[0]})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _indent(text: str) -> str:
    """Indent every line but the first by two spaces (a child's repr nested in its parent's)."""
    return text.replace("\n", "\n  ")


def _load_problem(value, target: Tensor) -> str | None:
    """Why `value` cannot be copied into `target`, or None when it can."""
    if isinstance(value, Tensor):
        array = value.data
    elif isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
    else:
        return f"expected a Tensor or ndarray, got {type(value).__name__}"
    if array.shape != target.shape:
        return (f"size mismatch: copying a param with shape {array.shape} from checkpoint, "
                f"the shape in current model is {target.shape}")
    if array.dtype.kind not in "biuf":
        return f"the value has the non-numeric dtype {array.dtype}"
    if not np.can_cast(array.dtype, target.dtype, casting="same_kind"):
        return f"cannot copy dtype {array.dtype} into the model's dtype {target.dtype}"
    if not target.data.flags.writeable:
        return "the model's tensor is a read-only view and cannot be loaded into"
    return None


def _load_error_message(module_name, missing, unexpected, mismatched, strict) -> str:
    lines = [f"Error(s) in loading state_dict for {module_name}:"]
    if strict and missing:
        lines.append("\tMissing key(s) in state_dict: " + ", ".join(f'"{key}"' for key in missing) + ".")
    if strict and unexpected:
        lines.append("\tUnexpected key(s) in state_dict: " + ", ".join(f'"{key}"' for key in unexpected) + ".")
    for key, problem in mismatched.items():
        lines.append(f"\t{key}: {problem}.")
    lines.append("Nothing was loaded; the module is unchanged.")
    return "\n".join(lines)
