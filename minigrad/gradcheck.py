"""Check analytic gradients against central finite differences, in float64.

    numeric d out_j / d x_k  =  (f(x + eps e_k)_j - f(x - eps e_k)_j) / (2 eps)

The error of a central difference is O(eps^2) from truncation plus O(machine_eps / eps) from
rounding; eps = 1e-6 in float64 balances them at about 1e-10 relative, far below the tolerances.
Use these in your own tests: gradcheck(fn, (x, w)) for first derivatives, gradgradcheck for
second derivatives (the backward pass differentiated again).
"""

import numpy as np

from minigrad.autograd import grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagreed with the numerical one."""


def _as_tuple(values) -> tuple:
    return (values,) if isinstance(values, Tensor) else tuple(values)


def _outputs(fn, inputs) -> tuple:
    outputs = _as_tuple(fn(*inputs))
    for position, output in enumerate(outputs):
        if not isinstance(output, Tensor):
            raise TypeError(f"gradcheck: output {position} of fn is a {type(output).__name__}, not a Tensor")
    return outputs


def _numerical_jacobians(fn, inputs, checked, eps) -> list:
    """For each checked input, J[output][k, j] = d output_j / d input_k by central differences."""
    jacobians = []
    for i in checked:
        base = inputs[i].data
        per_output = None
        for k in range(base.size):
            columns = []
            for sign in (+1, -1):
                shifted = base.copy()
                shifted.reshape(-1)[k] += sign * eps
                arguments = list(inputs)
                # The shifted input keeps requires_grad: gradgradcheck's fn runs a backward inside.
                arguments[i] = Tensor(shifted, requires_grad=True)
                columns.append([o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, arguments)])
            if per_output is None:
                per_output = [np.zeros((base.size, plus.size)) for plus in columns[0]]
            for out_index, (plus, minus) in enumerate(zip(*columns)):
                per_output[out_index][k] = (plus - minus) / (2 * eps)
        jacobians.append(per_output)
    return jacobians


def _analytic_jacobians(outputs, inputs, checked) -> list:
    """The same Jacobians from backward: one vector-Jacobian product per output element."""
    targets = [inputs[i] for i in checked]
    jacobians = [[np.zeros((t.size, o.size)) for o in outputs] for t in targets]
    for out_index, output in enumerate(outputs):
        if not output.requires_grad:
            continue
        for j in range(output.size):
            selector = np.zeros(output.size, dtype=output.dtype)
            selector[j] = 1
            grads = grad(output, targets, grad_outputs=Tensor(selector.reshape(output.shape)),
                         retain_graph=True, allow_unused=True)
            for position, g in enumerate(grads):
                if g is not None:
                    jacobians[position][out_index][:, j] = g.data.reshape(-1)
    return jacobians


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True) -> bool:
    """True when every analytic derivative of fn(*inputs) agrees with the numerical one:
    |analytic - numeric| <= atol + rtol * |numeric|, for every input that requires grad.

    The inputs must be float64 (float32's rounding error at eps = 1e-6 is larger than the
    derivative). On disagreement, raises GradcheckError naming the input, the element, the
    output, and both values (or returns False when raise_exception is False).
    """
    inputs = _as_tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs (x.double())")
    outputs = _outputs(fn, inputs)
    analytic = _analytic_jacobians(outputs, inputs, checked)
    numeric = _numerical_jacobians(fn, inputs, checked, eps)
    for position, i in enumerate(checked):
        for out_index in range(len(outputs)):
            a, n = analytic[position][out_index], numeric[position][out_index]
            bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
            if bad.any():
                k, j = np.argwhere(bad)[0]
                message = (
                    f"gradcheck: d(output {out_index}{_element(outputs[out_index].shape, j)}) / "
                    f"d(input {i}{_element(inputs[i].shape, k)}): analytic {a[k, j]:.10g} vs numeric "
                    f"{n[k, j]:.10g} (atol {atol}, rtol {rtol}; {int(bad.sum())} of {bad.size} entries differ)"
                )
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def _element(shape, flat_index) -> str:
    if not shape:
        return ""
    return str([int(i) for i in np.unravel_index(int(flat_index), shape)])


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0) -> bool:
    """gradcheck of the backward pass itself: the vector-Jacobian product
    v -> (d fn / d inputs)^T v, built with create_graph=True, is checked against finite
    differences with respect to both the inputs and v (random unless `grad_outputs` is given)."""
    inputs = _as_tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outputs = _outputs(fn, inputs)
    if grad_outputs is None:
        generator = np.random.default_rng(seed)
        grad_outputs = tuple(Tensor(generator.standard_normal(o.shape), requires_grad=True) for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)

    def vector_jacobian_product(*arguments):
        values, vectors = arguments[:len(inputs)], arguments[len(inputs):]
        differentiable = [(o, v) for o, v in zip(_outputs(fn, values), vectors) if o.requires_grad]
        grads = grad([o for o, _ in differentiable], [values[i] for i in checked],
                     grad_outputs=[v for _, v in differentiable], create_graph=True, allow_unused=True)
        return tuple(g if g is not None else values[i] * 0 for g, i in zip(grads, checked))

    return gradcheck(vector_jacobian_product, inputs + grad_outputs, eps, atol, rtol, raise_exception)
