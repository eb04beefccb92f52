"""Checks of a model itself, outside the training loop: dead units over a whole dataset, and
the initialization audit.

    result = dead_units(model, X_train)        # {layer: DeadUnits}, one pass over the data
    dead_unit_findings(result)                 # "dead_relu" findings, whole-dataset definition
    audit_init(model, X_batch)                 # "bad_init" findings, before training

Both run the model in eval mode without building a graph (restoring every module's mode
afterwards) and watch it through the adapters' forward hooks, so they work on minigrad and on
PyTorch models alike.

Dead units. A ReLU unit is dead on a dataset when its pre-activation is <= 0 for every example:
its output and its gradient are then 0 on all of them, and no gradient step can revive it. This
is the strictest of the definitions in activations.py (a window of training batches can miss
the few examples that still reach a unit; the whole dataset cannot).

Initialization. A Linear layer z = W h_in + b followed by an activation h_out = f(z) scales the
second moment of the signal by about

    E[h_out^2] / E[h_in^2]  ~  n_in Var(W) E[f'(z)^2]                       (the multiplier)

(Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
networks", eq. 5-10, for an f linear near 0; He et al. 2015, "Delving deep into rectifiers",
eq. 7-10, for ReLU, where f'(z)^2 is 1 on the half of the inputs above 0, so E[f'^2] = 1/2).
The backward pass scales the gradient's second moment by the same product with n_out in place
of n_in. A multiplier m per layer compounds to m^L over L layers: 0.5^10 is 1e-3. It is 1 for
He initialization, Var(W) = 2 / n_in, under ReLU; for Xavier (Glorot), Var(W) = 2 / (n_in +
n_out), or LeCun's 1 / n_in, under tanh (E[f'^2] ~ 1 near 0); and for LeCun's 1 / n_in with no
activation. E[f'(z)^2] is measured on the pre-activations of one real batch, so the audit also
sees inputs that push tanh into saturation or ReLUs below 0.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from diagnostics import stats
from diagnostics.activations import DEAD_LAYER_FRACTION
from diagnostics.adapters import adapt
from diagnostics.adapters.base import RELU_FAMILY
from diagnostics.findings import Finding
from minigrad.ops.special import erf

# A layer may scale the signal's second moment by a factor within [1/2, 2]: far enough from 1
# to be an initialization choice, not sampling noise of one random weight matrix.
LAYER_MULTIPLIER_LOW = 0.5
LAYER_MULTIPLIER_HIGH = 2.0
# The whole network may scale it within [1/10, 10]: one order of magnitude over all layers.
NETWORK_MULTIPLIER_LOW = 0.1
NETWORK_MULTIPLIER_HIGH = 10.0


# ---------------------------------------------------------------- evaluation mode and data


@contextlib.contextmanager
def _evaluating(adapter):
    """Eval mode and no graph while the block runs; every module's own mode is put back after."""
    modes = [(module, module.training) for _, module in adapter.named_modules()]
    adapter.model.eval()
    try:
        with adapter.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def _as_array(value) -> np.ndarray:
    """A minigrad Tensor's array, or anything NumPy reads (arrays, lists, CPU torch tensors)."""
    data = getattr(value, "data", None)
    return data if isinstance(data, np.ndarray) else np.asarray(value)


def _inputs(data) -> np.ndarray:
    """The model inputs held in an array or Tensor, a tuple (inputs, targets, ...), or a
    TensorDataset (its first array)."""
    if hasattr(data, "arrays"):
        data = data.arrays
    inputs = _as_array(data[0] if isinstance(data, (tuple, list)) else data)
    if inputs.ndim == 0:
        raise ValueError("model checks: the inputs need a first (example) dimension, got a scalar")
    return inputs


def _input_batches(data, batch_size: int):
    """The model inputs in `data` batch by batch, as NumPy arrays: slices of `batch_size`
    examples, or a DataLoader's own batches (tuples whose first field is the input)."""
    if hasattr(data, "dataset") and hasattr(data, "batch_size"):
        for batch in data:
            yield _as_array(batch[0] if isinstance(batch, (tuple, list)) else batch)
        return
    inputs = _inputs(data)
    for start in range(0, len(inputs), batch_size):
        yield inputs[start:start + batch_size]


# ---------------------------------------------------------------- dead units


@dataclass(frozen=True, eq=False)
class DeadUnits:
    """One ReLU-family layer's units over a whole pass of a dataset.

    kind:              the activation ('relu', 'leaky_relu', ...).
    dead:              per unit, True when its pre-activation was <= 0 on every example.
    max_preactivation: per unit, the largest pre-activation seen: how far a dead unit is from
                       firing (it revives only if some input lifts this above 0).
    samples:           values seen per unit (examples, times positions for (N, C, ...) inputs).
    """

    kind: str
    dead: np.ndarray
    max_preactivation: np.ndarray
    samples: int

    @property
    def dead_fraction(self) -> float:
        return float(np.mean(self.dead)) if self.dead.size else 0.0

    def __repr__(self) -> str:
        return (f"DeadUnits({self.kind}, {int(self.dead.sum())} of {self.dead.size} units dead "
                f"({self.dead_fraction:.0%}) over {self.samples} samples)")


class _UnitCounter:
    """Accumulates one layer's per-unit activity and largest pre-activation over batches."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.active = None
        self.largest = None
        self.samples = 0

    def observe(self, pre_activation: np.ndarray, output: np.ndarray, output_handle) -> None:
        active, largest = stats.unit_activity(pre_activation), stats.unit_max(pre_activation)
        if self.active is not None and active.shape != self.active.shape:
            raise ValueError(
                f"dead_units: module {self.name!r} is applied to layers of different widths ({self.active.size} "
                f"and {active.size} units); give each layer its own activation module"
            )
        self.active = active if self.active is None else self.active + active
        self.largest = largest if self.largest is None else np.maximum(self.largest, largest)
        self.samples += stats.units_first(pre_activation).shape[0]

    def result(self) -> DeadUnits:
        return DeadUnits(self.kind, self.active == 0, self.largest, self.samples)


def dead_units(model, data, batch_size: int = 256) -> dict[str, DeadUnits]:
    """Pass every example of `data` through `model` and report, per ReLU-family activation
    module (named as in named_modules), which units were never active (pre-activation > 0) on
    any of them.

    data: an array or Tensor of inputs, a tuple (inputs, targets, ...), a TensorDataset, or a
          DataLoader; arrays are cut into batches of `batch_size`.
    The model runs in eval mode (Dropout off, BatchNorm on running statistics), without a graph;
    each module's mode is restored afterwards. Layers the data never reached are left out.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"dead_units: batch_size must be a positive integer, got {batch_size!r}")
    adapter = adapt(model)
    counters = {name: _UnitCounter(name, adapter.kind(module)) for name, module in adapter.named_modules()
                if adapter.kind(module) in RELU_FAMILY}
    modules = dict(adapter.named_modules())
    handles = [adapter.add_forward_hook(modules[name], counter.observe) for name, counter in counters.items()]
    examples = 0
    try:
        with _evaluating(adapter):
            for inputs in _input_batches(data, batch_size):
                examples += len(inputs)
                model(adapter.as_input(inputs))
    finally:
        for handle in handles:
            handle.remove()
    if examples == 0:
        raise ValueError("dead_units: the data holds no examples")
    return {name: counter.result() for name, counter in counters.items() if counter.active is not None}


def dead_unit_findings(result: dict[str, DeadUnits], dead_layer_fraction: float = DEAD_LAYER_FRACTION) -> list[Finding]:
    """A "dead_relu" finding for each layer of a `dead_units` result in which more than
    `dead_layer_fraction` of the units (50 %, SageMaker Debugger's DeadRelu threshold_layer)
    never fired on any example. Critical for ReLU, whose dead units get no gradient at all; a
    warning for the rest of the family (LeakyReLU, ELU, GELU...), whose negative side still
    passes a small gradient."""
    findings = []
    for name, units in result.items():
        if not units.dead_fraction > dead_layer_fraction:
            continue
        dead_count = int(units.dead.sum())
        gap = float(np.median(units.max_preactivation[units.dead]))
        leak = "" if units.kind == "relu" else f"; {units.kind} still passes a small gradient below 0"
        findings.append(Finding(
            "dead_relu",
            f"layer {name}: {units.dead_fraction:.0%} of units ({dead_count} of {units.dead.size}) never active "
            f"on any of {units.samples} samples (whole-dataset pass) > {dead_layer_fraction:.0%}; their largest "
            f"pre-activation has median {gap:.3g}{leak}",
            severity="critical" if units.kind == "relu" else "warning", layer=name,
            evidence={"definition": "whole-dataset pass", "dead_fraction": units.dead_fraction,
                      "dead_units": dead_count, "units": int(units.dead.size), "samples": units.samples,
                      "median_max_preactivation_of_dead": gap, "threshold": dead_layer_fraction},
        ))
    return findings


# ---------------------------------------------------------------- initialization audit


def activation_derivative_at(kind: str | None, module, pre_activation: np.ndarray, adapter) -> np.ndarray:
    """f'(z) at the pre-activations z (units on axis 1), for each activation kind:

        none:        1                          relu:        1 if z > 0 else 0
        leaky_relu:  1 if z > 0 else a          prelu:       1 if z > 0 else a (learned, per channel)
        elu:         1 if z > 0 else alpha e^z  gelu:        Phi(z) + z phi(z)  (the exact GELU)
        softplus:    sigmoid(beta z)            tanh:        1 - tanh(z)^2
        sigmoid:     s (1 - s), s = sigmoid(z)
    """
    z = stats.units_first(np.asarray(pre_activation, dtype=np.float64))
    if kind is None:
        return np.ones_like(z)
    if kind == "relu":
        return (z > 0).astype(np.float64)
    if kind == "leaky_relu":
        return np.where(z > 0, 1.0, module.negative_slope)
    if kind == "prelu":
        return np.where(z > 0, 1.0, np.asarray(adapter.value(module.weight), dtype=np.float64))
    if kind == "elu":
        return np.where(z > 0, 1.0, module.alpha * np.exp(np.minimum(z, 0.0)))
    if kind == "gelu":
        return 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if kind == "softplus":
        return 0.5 * (1.0 + np.tanh(0.5 * module.beta * z))  # sigmoid(beta z), without overflow
    if kind == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if kind == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        return s * (1.0 - s)
    raise ValueError(f"activation_derivative_at: unknown activation kind {kind!r}")


def recommended_init(kind: str | None, n_in: int, n_out: int, module=None, adapter=None) -> tuple[str, float]:
    """(name, Var(W)) of the initialization that makes the multiplier about 1 for `kind`:

        ReLU family:  He (kaiming) Var(W) = 2 / n_in; 2 / ((1 + a^2) n_in) with a negative slope a
        tanh:         Xavier (Glorot) Var(W) = 2 / (n_in + n_out)
        sigmoid:      Xavier too, though f' <= 1/4 shrinks the gradient 16x per layer whatever
                      the init (E[f'^2] <= 1/16): prefer tanh or ReLU in hidden layers
        none:         LeCun Var(W) = 1 / n_in
    """
    if kind in ("leaky_relu", "prelu"):
        slope = module.negative_slope if kind == "leaky_relu" else float(np.mean(adapter.value(module.weight)))
        return (f"He (kaiming_normal_(w, a={slope:g}, nonlinearity='leaky_relu')): Var(W) = 2 / ((1 + a^2) n_in)",
                2.0 / ((1.0 + slope**2) * n_in))
    if kind in RELU_FAMILY:
        return "He (kaiming_normal_(w, nonlinearity='relu')): Var(W) = 2 / n_in", 2.0 / n_in
    if kind == "tanh":
        return "Xavier (xavier_uniform_(w)): Var(W) = 2 / (n_in + n_out)", 2.0 / (n_in + n_out)
    if kind == "sigmoid":
        return ("Xavier (xavier_uniform_(w)): Var(W) = 2 / (n_in + n_out); sigmoid's f' <= 1/4 shrinks the "
                "gradient whatever the init, prefer tanh or ReLU", 2.0 / (n_in + n_out))
    return "LeCun (kaiming_normal_(w, nonlinearity='linear')): Var(W) = 1 / n_in", 1.0 / n_in


@dataclass
class _Call:
    """One forward call seen by the audit's hooks."""

    name: str
    module: object
    inputs: np.ndarray
    output: np.ndarray


def _is_linear_call(call: _Call, adapter) -> bool:
    """A module with a 2-D weight (out, in) that mapped a float input's last axis from `in` to
    `out`: a Linear layer (an Embedding's 2-D weight is a table looked up by integer inputs)."""
    weight = getattr(call.module, "weight", None)
    if weight is None or adapter.kind(call.module) is not None:
        return False
    shape = np.shape(adapter.value(weight))
    return (len(shape) == 2 and call.inputs.dtype.kind == "f" and call.inputs.ndim >= 1
            and call.inputs.shape[-1] == shape[1] and call.output.shape[-1] == shape[0])


def _record_calls(model, batch, adapter) -> list[_Call]:
    """Every forward call of the modules that may be a Linear layer or an activation, in
    execution order, on one batch."""
    calls: list[_Call] = []
    handles = []
    for name, module in adapter.named_modules():
        if adapter.kind(module) is not None or getattr(module, "weight", None) is not None:
            def on_forward(inputs, output, output_handle, name=name, module=module):
                calls.append(_Call(name, module, inputs, output))

            handles.append(adapter.add_forward_hook(module, on_forward))
    try:
        with _evaluating(adapter):
            model(adapter.as_input(_inputs(batch)))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _second_moment(array: np.ndarray) -> float:
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    return float(np.dot(flat, flat) / flat.size) if flat.size else float("nan")


def audit_init(model, batch) -> list[Finding]:
    """Before training: "bad_init" findings for each Linear layer whose predicted variance
    multiplier n_in Var(W) E[f'(z)^2] lies outside [LAYER_MULTIPLIER_LOW, LAYER_MULTIPLIER_HIGH]
    = [0.5, 2] (a warning), and for the network when the product over all Linear layers lies
    outside [NETWORK_MULTIPLIER_LOW, NETWORK_MULTIPLIER_HIGH] = [0.1, 10] (critical: that is the
    factor by which the signal, and the gradient on its way back, shrinks or grows end to end).

    batch: one batch of inputs (an array, a Tensor, or a tuple whose first entry is the inputs).
    A Linear layer's activation is the activation module called right after it on its output,
    found with forward hooks; a Linear with none after it counts with E[f'^2] = 1. Evidence:
    n_in, Var(W), E[f'^2], the predicted and the measured E[h_out^2] / E[h_in^2], and the
    initialization that suits the activation.
    """
    adapter = adapt(model)
    calls = _record_calls(model, batch, adapter)
    audited = set()
    layers = []
    for position, call in enumerate(calls):
        if id(call.module) in audited or not _is_linear_call(call, adapter):
            continue
        audited.add(id(call.module))
        following = calls[position + 1] if position + 1 < len(calls) else None
        activation = None
        if (following is not None and adapter.kind(following.module) is not None
                and np.may_share_memory(following.inputs, call.output)):
            activation = following
        layers.append(_audit_layer(call, activation, adapter))
    findings = [layer["finding"] for layer in layers if layer["finding"] is not None]
    if len(layers) >= 2:
        network = _network_finding(layers)
        if network is not None:
            findings.append(network)
    return findings


def _audit_layer(linear: _Call, activation: _Call | None, adapter) -> dict:
    """One Linear layer (and its activation, if any): its predicted multiplier, the measured
    ratio of second moments, and a finding when the multiplier is out of range."""
    activation_module = None if activation is None else activation.module
    kind = None if activation is None else adapter.kind(activation_module)
    weight = np.asarray(adapter.value(linear.module.weight), dtype=np.float64)
    n_out, n_in = weight.shape
    derivative = activation_derivative_at(kind, activation_module, linear.output, adapter)
    mean_square_derivative = float(np.mean(derivative**2))
    variance = float(np.var(weight))
    predicted = n_in * variance * mean_square_derivative
    output = linear.output if activation is None else activation.output
    input_moment = _second_moment(linear.inputs)
    measured = _second_moment(output) / input_moment if input_moment > 0 else float("nan")
    init_name, init_variance = recommended_init(kind, n_in, n_out, activation_module, adapter)
    layer = {"name": linear.name, "predicted": predicted, "measured": measured, "finding": None}
    if LAYER_MULTIPLIER_LOW <= predicted <= LAYER_MULTIPLIER_HIGH:
        return layer
    if predicted == 0:
        effect = "passes no signal (f'(z) = 0 on every input)"
    elif predicted < 1:
        effect = f"shrinks the signal {1 / predicted:.3g}x"
    else:
        effect = f"grows the signal {predicted:.3g}x"
    layer["finding"] = Finding(
        "bad_init",
        f"layer {linear.name} ({kind or 'no activation'}): predicted variance multiplier n_in Var(W) E[f'^2] = "
        f"{n_in} x {variance:.3g} x {mean_square_derivative:.3g} = {predicted:.3g} is outside "
        f"[{LAYER_MULTIPLIER_LOW:g}, {LAYER_MULTIPLIER_HIGH:g}] (measured E[h_out^2]/E[h_in^2] = {measured:.3g}): "
        f"each such layer {effect}, compounding with depth; use {init_name} = {init_variance:.3g}",
        severity="warning", layer=linear.name,
        evidence={"n_in": n_in, "var_w": variance, "mean_square_derivative": mean_square_derivative,
                  "activation": kind, "predicted": predicted, "measured": measured,
                  "recommended_init": init_name, "recommended_var_w": init_variance,
                  "low": LAYER_MULTIPLIER_LOW, "high": LAYER_MULTIPLIER_HIGH},
    )
    return layer


def _network_finding(layers: list[dict]) -> Finding | None:
    predicted = float(np.prod([layer["predicted"] for layer in layers]))
    measured = float(np.prod([layer["measured"] for layer in layers]))
    if NETWORK_MULTIPLIER_LOW <= predicted <= NETWORK_MULTIPLIER_HIGH:
        return None
    effect = "shrink" if predicted < 1 else "grow"
    return Finding(
        "bad_init",
        f"the {len(layers)} Linear layers together {effect} the signal's second moment by a predicted factor "
        f"{predicted:.3g} (measured {measured:.3g}), outside "
        f"[{NETWORK_MULTIPLIER_LOW:g}, {NETWORK_MULTIPLIER_HIGH:g}], and the gradient's by about as much on its "
        "way back to the input; initialize each layer for its activation (He for ReLU, Xavier for "
        "tanh/sigmoid, LeCun for none)",
        severity="critical",
        evidence={"predicted": predicted, "measured": measured, "layers": [layer["name"] for layer in layers],
                  "multipliers": [layer["predicted"] for layer in layers],
                  "low": NETWORK_MULTIPLIER_LOW, "high": NETWORK_MULTIPLIER_HIGH},
    )
