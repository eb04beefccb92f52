"""The autograd graph: how operations are recorded and how gradients flow back through them.

Every differentiable operation is a `Function` with `forward` (NumPy arrays in, one array out)
and `backward` (the gradient of the output in, one gradient per input out) written side by side.
`Function.apply` runs the forward and, when grad mode is on and an input requires grad, links
the output Tensor to the Function instance (``out._ctx``), which keeps its inputs. The graph is
those links: each Tensor points at the Function that made it, each Function at its inputs.

`backward` is written with Tensor operations, so when ``create_graph=True`` the backward pass is
itself recorded and can be differentiated again (second derivatives, Hessian-vector products).
Otherwise it runs under `no_grad` and costs little more than the NumPy it calls.

Reverse mode (`run_backward`): sort the graph so every Tensor comes after the Tensors it was
computed from (an iterative depth-first search, so a 10,000-op chain works), then walk it from
the output back, calling each Function's backward once with the sum of the gradients that
reached its output, reducing each input gradient to the input's shape (`Tensor.sum_to_shape`,
the one place where broadcasting is undone), and accumulating into ``.grad`` of leaves.
"""

from __future__ import annotations

import functools
import os
import traceback
import weakref

import numpy as np

# Imported as a module, read at call time: tensor.py imports the ops, which import this file.
import minigrad.tensor as tensor_module

_grad_enabled = True
_anomaly_enabled = False


# ----------------------------------------------------------------------------------------------
# grad mode
# ----------------------------------------------------------------------------------------------


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward."""
    return _grad_enabled


class _GradMode:
    """A ``with`` block or a function decorator that sets grad mode and restores the previous
    mode afterwards (also when an exception leaves the block)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.previous = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self.previous
        return False

    def __call__(self, function):
        # A fresh block per call: one shared instance would lose the mode to restore when the
        # decorated function calls itself.
        @functools.wraps(function)
        def with_grad_mode(*args, **kwargs):
            with _GradMode(self.mode):
                return function(*args, **kwargs)
        return with_grad_mode


class no_grad(_GradMode):
    """Record nothing: ops run on arrays and return Tensors with no history
    (``with no_grad():`` or ``@no_grad()``)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """Record operations again inside a `no_grad` block."""

    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off. As in PyTorch, it takes effect at once, so a plain call
    ``set_grad_enabled(False)`` switches recording off from then on; in a ``with`` block or as a
    decorator, the previous mode comes back afterwards."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        _GradMode.__enter__(self)

    def __enter__(self):
        return self

    def __call__(self, function):
        self.__exit__()  # as a decorator, the mode holds only inside calls of the function
        return super().__call__(function)


class detect_anomaly:
    """Raise at the first op whose forward output or backward gradient holds NaN or Inf.

    The error names the op and the line of user code that created it. Recording where every op
    was created costs a stack walk per op, so this is for debugging, not for training runs.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __call__(self, function):
        # A fresh context per call, as in _GradMode.
        @functools.wraps(function)
        def with_anomaly_mode(*args, **kwargs):
            with detect_anomaly(self.enabled):
                return function(*args, **kwargs)
        return with_anomaly_mode

    def __enter__(self):
        global _anomaly_enabled
        self.previous = _anomaly_enabled
        _anomaly_enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        global _anomaly_enabled
        _anomaly_enabled = self.previous
        return False


def is_anomaly_enabled() -> bool:
    return _anomaly_enabled


class AnomalyError(RuntimeError):
    """An op produced NaN or Inf while `detect_anomaly` was on."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frame() -> str:
    """'file:line in function' of the innermost stack frame outside the minigrad package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno} in {frame.name}\n    {frame.line}"
    return "<unknown>"


def _check_finite(array: np.ndarray, what: str, ctx: "Function") -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        where = ctx.created_at or "a line not recorded (run the forward pass inside detect_anomaly())"
        raise AnomalyError(f"{type(ctx).__name__}: {what} holds {bad} values.\nThe op was created at {where}")


# ----------------------------------------------------------------------------------------------
# Function
# ----------------------------------------------------------------------------------------------


class Function:
    """One differentiable operation.

    Subclasses write

        forward(self, *inputs: Tensor, **params) -> np.ndarray
            computes the output from the inputs' ``.data``; calls ``self.save_for_backward``
            on the inputs the backward needs, and keeps any non-Tensor values on ``self``;
        backward(self, grad: Tensor) -> Tensor | None | tuple[Tensor | None, ...]
            the gradient of the loss with respect to each input, given ``grad``, the gradient
            with respect to the output. Written with Tensor operations. It may return a gradient
            of the broadcast shape; the engine reduces it to the input's shape.

    Positional arguments of `apply` are the tensor inputs (Python numbers and arrays are wrapped
    as constants); keyword arguments are the op's parameters (axis, slope, ...).
    """

    # True for ops whose output can be a NumPy view of the first input's memory (reshape,
    # transpose, ...). Such outputs share the input's version counter, so an in-place change
    # through either is seen by backward passes that saved the other.
    output_may_be_view = False
    # True for ops whose backward reads `self.output` (exp, tanh, softmax, ...).
    uses_output = False

    # Filled in by `apply` only when the op is recorded; class-level defaults keep unrecorded
    # ops (under no_grad, or on constants) cheap.
    inputs = ()
    needs_input_grad = ()
    _saved = ()
    _saved_versions = ()
    _output = None
    _output_version = 0
    created_at = None

    @classmethod
    def apply(cls, *args, **params):
        Tensor = tensor_module.Tensor
        inputs = [a if isinstance(a, Tensor) else as_tensor(a, *args) for a in args]
        ctx = cls()
        if _grad_enabled:
            needs_input_grad = [t._requires_grad for t in inputs]
            if True in needs_input_grad:  # recorded: forward's save_for_backward keeps its tensors
                ctx.inputs = inputs
                ctx.needs_input_grad = needs_input_grad
        if _anomaly_enabled:
            ctx.created_at = _user_frame()
        result = ctx.forward(*inputs, **params)
        # NumPy reductions return scalars (np.float64), not 0-d arrays; .data is always an array.
        out = Tensor._from_array(result if type(result) is np.ndarray else np.asarray(result))
        if _anomaly_enabled:
            _check_finite(out.data, "the forward output", ctx)
        if cls.output_may_be_view and np.may_share_memory(out.data, inputs[0].data):
            out._version_counter = inputs[0]._version_counter
        if ctx.inputs:
            if cls.uses_output:
                ctx._output = weakref.ref(out)
                ctx._output_version = out._version_counter.value
            out._ctx = ctx
            out._requires_grad = True
        return out

    def forward(self, *inputs, **params) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} is not differentiable")

    # Saved tensors are checked against in-place changes: a saved tensor remembers its version.

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward, with their versions; a no-op when the op is not recorded
        (under no_grad, or with no input requiring grad: then there is no backward)."""
        if self.inputs:
            self._saved = tensors
            self._saved_versions = [t._version_counter.value for t in tensors]

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(_freed_graph_message(self))
        for position, (tensor, version) in enumerate(zip(self._saved, self._saved_versions)):
            if tensor._version_counter.value != version:
                raise RuntimeError(_modified_in_place_message(self, f"saved tensor {position}", tensor, version))
        return self._saved

    @property
    def output(self):
        """The Tensor this op produced (for backward rules written in terms of the output,
        such as d/dx exp(x) = exp(x)). Held weakly, so the graph has no reference cycles."""
        out = self._output() if self._output is not None else None
        if out is None:
            raise RuntimeError(f"{type(self).__name__}: the output tensor no longer exists (or the op "
                               "does not set uses_output = True)")
        if out._version_counter.value != self._output_version:
            raise RuntimeError(_modified_in_place_message(self, "its output", out, self._output_version))
        return out

    def release(self) -> None:
        """Drop the inputs and saved tensors: the graph behind this op is freed."""
        self.inputs = None
        self._saved = None

    @property
    def name(self) -> str:
        return f"{type(self).__name__}Backward"


def as_tensor(value, *others) -> "tensor_module.Tensor":
    """`value` itself if it is a Tensor, else a constant Tensor holding it. A Python number takes
    the dtype of the first Tensor among `others` where that keeps the result's type
    (``x * 0.5`` stays float32, ``indices + 1`` stays int64), as NumPy's and PyTorch's scalar
    rules do."""
    Tensor = tensor_module.Tensor
    if isinstance(value, Tensor):
        return value
    if type(value) is np.ndarray:  # a mask or a constant a backward rule made: no checks needed
        return Tensor._from_array(value)
    if type(value) is float or type(value) is int:
        for like in others:
            if isinstance(like, Tensor):
                if like.data.dtype.kind == "f" or type(value) is int:
                    return Tensor._from_array(np.array(value, dtype=like.data.dtype))
                break
    return Tensor(value)


def _freed_graph_message(ctx: Function) -> str:
    return (
        f"{ctx.name}: trying to backward through the graph a second time (its saved values were "
        "freed after the first backward). Pass retain_graph=True to the first backward() or "
        "minigrad.grad() call if you need to backward through this graph again."
    )


def _modified_in_place_message(ctx: Function, what: str, tensor, version: int) -> str:
    return (
        f"{ctx.name}: {what} (shape {tensor.shape}) was modified by an in-place operation after "
        f"the forward pass (version {tensor._version_counter.value}, expected {version}), so its "
        "gradient would be wrong. Make the change out of place (x = x + 1 instead of x.add_(1)), "
        "or do it after backward."
    )


# ----------------------------------------------------------------------------------------------
# reverse mode
# ----------------------------------------------------------------------------------------------


def topological_order(roots) -> list:
    """Every tensor that requires grad and feeds the roots, each listed after every tensor it was
    computed from. Iterative depth-first search, so graph depth is not limited by recursion."""
    order, visited = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is not None:
            if ctx.inputs is None:
                raise RuntimeError(_freed_graph_message(ctx))
            for parent in ctx.inputs:
                if parent._requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool, capture=None):
    """Propagate `root_grads` from `roots` back through the graph.

    Without `capture`, gradients accumulate into ``.grad`` of every leaf that requires grad
    (and of tensors that called ``retain_grad()``). With `capture` (a list of tensors), nothing
    is written to ``.grad``; the gradient reaching each captured tensor is returned instead,
    None for a tensor the roots do not depend on.
    """
    order = topological_order(roots)
    grads: dict[int, object] = {}
    for root, grad in zip(roots, root_grads):
        _accumulate(grads, root, grad)
    captured = {id(t): None for t in capture} if capture is not None else None
    # .grad may keep a gradient array without copying it only when the engine made that array
    # for this one tensor. Arrays from outside (root gradients, hook results) and arrays already
    # handed to another tensor (an add passes one gradient to both inputs) are copied, so that
    # changing one .grad in place never changes another.
    shared_arrays = {id(grad.data) for grad in root_grads}
    with set_grad_enabled(create_graph):
        for tensor in reversed(order):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            if tensor._hooks:
                # A hook may keep the gradient it is shown, so that array is no longer ours alone.
                shared_arrays.add(id(grad.data))
                for hook in tensor._hooks:
                    result = _run_hook(hook, grad, tensor)
                    if result is not grad:
                        shared_arrays.add(id(result.data))
                    grad = result
            if captured is not None and id(tensor) in captured:
                captured[id(tensor)] = grad
            elif captured is None and (tensor._ctx is None or tensor._retains_grad):
                array = grad.data
                tensor._accumulate_grad(array, may_keep=array.flags.owndata and id(array) not in shared_arrays)
                shared_arrays.add(id(array))
            ctx = tensor._ctx
            if ctx is None:
                continue
            if _anomaly_enabled:
                # The ops inside a backward rule are not the user's: a non-finite gradient is
                # reported below against the op whose rule made it, not against a multiply inside.
                with detect_anomaly(False):
                    input_grads = ctx.backward(grad)
            else:
                input_grads = ctx.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, needs_grad, parent_grad in zip(ctx.inputs, ctx.needs_input_grad, input_grads):
                if needs_grad and parent_grad is not None:
                    if _anomaly_enabled:
                        _check_finite(parent_grad.data, f"the gradient for input of shape {parent.shape}", ctx)
                    if parent_grad.data.shape != parent.data.shape:
                        parent_grad = parent_grad.sum_to_shape(parent.data.shape)
                    if parent_grad.data.dtype != parent.data.dtype:
                        parent_grad = parent_grad.to(parent.data.dtype)
                    _accumulate(grads, parent, parent_grad)
            if not retain_graph:
                ctx.release()
    if captured is not None:
        return [captured[id(t)] for t in capture]
    return None


def _accumulate(grads: dict, tensor, grad) -> None:
    key = id(tensor)
    grads[key] = grad if key not in grads else grads[key] + grad


def _run_hook(hook, grad, tensor):
    result = hook(grad)
    if result is None:
        return grad
    result = result if isinstance(result, tensor_module.Tensor) else tensor_module.Tensor(result)
    if result.shape != tensor.shape:
        raise RuntimeError(
            f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape {result.shape} "
            f"for a tensor of shape {tensor.shape}; a hook must return None or a gradient of the same shape"
        )
    return result


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, as Tensors, without touching ``.grad``.

    outputs:      a Tensor or a sequence of Tensors.
    inputs:       a Tensor or a sequence of Tensors that require grad.
    grad_outputs: the vector of the vector-Jacobian product, one per output; may be omitted for
                  scalar outputs (taken as 1).
    create_graph: record the backward pass, so the returned gradients can be differentiated
                  again (Hessian-vector products: grad(sum((g * v).sum()), params)).
    retain_graph: keep the graph for another backward; defaults to `create_graph`.
    allow_unused: return None for an input the outputs do not depend on, instead of raising.
    """
    Tensor = tensor_module.Tensor
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs)
    for position, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: input {position} (shape {tensor.shape}) does not require grad")
    root_grads = _root_grads(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outputs, root_grads, retain_graph, create_graph, capture=inputs)
    for position, result in enumerate(results):
        if result is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {position} (shape {inputs[position].shape}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
    return results


def _root_grads(outputs, grad_outputs, caller: str) -> list:
    """The gradient each output starts with: given, or 1 for a scalar output."""
    Tensor = tensor_module.Tensor
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{caller}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    root_grads = []
    for position, (output, given) in enumerate(zip(outputs, grad_outputs)):
        if not output.requires_grad:
            raise RuntimeError(
                f"{caller}: output {position} does not require grad and has no graph; was it computed "
                "under no_grad, or from tensors that do not require grad? Call "
                "requires_grad_() on the leaf tensors before the forward pass"
            )
        if given is None:
            if output.size != 1:
                raise RuntimeError(
                    f"{caller}: output {position} has shape {output.shape}; gradients can only be "
                    "implied for scalar outputs. Pass a gradient of the same shape, or reduce the "
                    "output first (e.g. output.sum().backward())"
                )
            given = np.ones(output.shape, dtype=output.dtype)
        given = given if isinstance(given, Tensor) else Tensor(np.asarray(given, dtype=output.dtype))
        if given.shape != output.shape:
            raise RuntimeError(
                f"{caller}: the gradient for output {position} has shape {given.shape}, "
                f"but the output has shape {output.shape}"
            )
        root_grads.append(given)
    return root_grads
