"""The where trap: a "safe" where(x > 0, sqrt(x), 0) has a finite forward and a NaN gradient.

The model's activation is the square-root unit f(x) = sqrt(x) for x > 0, else 0, written the
way that looks safe: `where(x > 0, sqrt(x), 0)`. The forward pass is fine: where takes sqrt(x)
only where x > 0, and the NaNs that sqrt makes for x < 0 are thrown away. The backward pass is
not. Autograd differentiates the whole graph, both branches included: where sends the incoming
gradient g to its first input masked by the condition, g * [x > 0], and sqrt multiplies that by
its own derivative 1 / (2 sqrt(x)), which is NaN for x < 0 (and Inf at x = 0). The masked-out
entries become 0 * NaN = NaN (and 0 * Inf = NaN): IEEE 754 has no "0 wins". Every unit with a
negative pre-activation sends NaN into the layer below, and the first optimizer step writes NaN
into the hidden layers' weights.

The loss never shows it. From the next step on the first layer's pre-activations are NaN, and
NaN > 0 is False, so the same where outputs 0 for all of them: the first hidden layer outputs 0
for every input, and nothing after it depends on the input any more. The net predicts the same
for every point and the loss sits at ln 2 = 0.693 (a coin flip), finite, for the rest of the
run. Only the gradients tell: the Recorder counts NaN gradient entries from step 0, and the
doctor names non_finite.

`mg.detect_anomaly()` finds it: run the forward and backward inside it and it raises at the
first op whose output or gradient holds NaN or Inf, naming the op and the line that created it,
here

    AnomalyError: Sqrt: the forward output holds NaN values.
    The op was created at .../where_trap.py:<line> in forward
        return mg.where(x > 0, mg.sqrt(x), 0.0)

(the NaN is born in sqrt's forward, on the branch that where discards; the run's measurements
carry the op and the line).

Fix: the double where. Feed sqrt only inputs where it is finite, then select as before:
`where(x > 0, sqrt(where(x > 0, x, 1)), 0)`. Where x <= 0 the inner where gives sqrt the
harmless 1, whose derivative 1/2 times the mask 0 is a true 0; where x > 0 nothing changed.
The forward values are identical (the run measures the difference: 0); only the gradient
differs, and the same net trains (the same trap and fix in other frameworks: JAX issue #347,
PyTorch issue #52248, and the note in tf.where's documentation).
"""

import numpy as np

import minigrad as mg
from diagnostics.experiments.base import train

TITLE = "The where trap: where(x > 0, sqrt(x), 0) is finite forward, NaN backward"
FAILURE = "non_finite"
STATEMENT = ("reproduce: NaN gradients from step 0 (from the untaken sqrt branch) make the hidden weights NaN, "
             "yet the loss stays finite, stuck at ln 2 = 0.693; detect_anomaly names Sqrt and the line; on the "
             "same inputs both units give identical outputs and only the naive one's gradient has NaNs; "
             "fix: the double where trains to > 90% validation accuracy with no NaN anywhere")

WIDTH, LEARNING_RATE = 32, 0.01


class NaiveSqrtUnit(mg.nn.Module):
    """f(x) = sqrt(x) for x > 0, else 0, with sqrt evaluated everywhere (the trap)."""

    def forward(self, x):
        return mg.where(x > 0, mg.sqrt(x), 0.0)


class SafeSqrtUnit(mg.nn.Module):
    """f(x) = sqrt(x) for x > 0, else 0, with sqrt fed 1 where its value is discarded (the double where)."""

    def forward(self, x):
        positive = x > 0
        return mg.where(positive, mg.sqrt(mg.where(positive, x, 1.0)), 0.0)


def _model(unit):
    return mg.nn.Sequential(mg.nn.Linear(2, WIDTH), unit(), mg.nn.Linear(WIDTH, WIDTH), unit(),
                            mg.nn.Linear(WIDTH, 2))


def _setup(fast, unit):
    mg.manual_seed(0)
    data = mg.data.spirals(n_samples=400, noise=0.1, seed=0)
    model = _model(unit)
    optimizer = mg.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return data, model, optimizer, (100 if fast else 180)


def compare_units():
    """Both units on the same inputs (negative, zero and positive): the largest difference of
    their outputs, and the NaN count of each one's gradient with respect to the input."""
    inputs = np.linspace(-2.0, 2.0, 9)
    outputs, nan_gradients = {}, {}
    for unit in (NaiveSqrtUnit, SafeSqrtUnit):
        x = mg.tensor(inputs, requires_grad=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = unit()(x)
            y.sum().backward()
        outputs[unit], nan_gradients[unit] = y.data, int(np.isnan(x.grad).sum())
    return {
        "forward_max_difference": float(np.max(np.abs(outputs[NaiveSqrtUnit] - outputs[SafeSqrtUnit]))),
        "naive_nan_input_gradients": nan_gradients[NaiveSqrtUnit],
        "safe_nan_input_gradients": nan_gradients[SafeSqrtUnit],
    }


def find_anomaly(model, data):
    """Run one forward and backward pass under detect_anomaly(): the op it names, and where that op
    was created ('' for both if nothing was found)."""
    inputs, targets = mg.tensor(data.X_train), mg.tensor(data.y_train)
    try:
        with mg.detect_anomaly(), np.errstate(invalid="ignore", divide="ignore"):
            mg.nn.CrossEntropyLoss()(model(inputs), targets).backward()
    except mg.AnomalyError as error:
        first_line, created_at = str(error).splitlines()[:2]
        op = first_line.split(":")[0]
        location = created_at.removeprefix("The op was created at ").rsplit("/", 1)[-1]
        return {"anomaly_op": op, "anomaly_created_at": location}
    finally:
        model.zero_grad()
    return {"anomaly_op": "", "anomaly_created_at": ""}


def reproduce(fast=False):
    data, model, optimizer, steps = _setup(fast, NaiveSqrtUnit)
    anomaly = find_anomaly(model, data)
    run = train("where(x > 0, sqrt(x), 0)", model, data, optimizer, steps)
    run.measurements.update({**anomaly, **compare_units(), **_count_nans(run)})
    return run


def fix(fast=False):
    data, model, optimizer, steps = _setup(fast, SafeSqrtUnit)
    run = train("double where", model, data, optimizer, steps)
    run.measurements.update(_count_nans(run))
    return run


def _count_nans(run):
    """The first recorded step with a NaN/Inf gradient entry (-1 if none), the NaN entries left in
    the parameters, and the final training loss (finite even when the weights are not)."""
    counts = sum(run.history.layers("grad_nonfinite").values())
    bad_steps = run.history["step"][np.nan_to_num(counts) > 0]
    return {
        "first_nan_gradient_step": int(bad_steps[0]) if bad_steps.size else -1,
        "nan_parameters": int(sum(np.isnan(p.data).sum() for p in run.model.parameters())),
        "final_train_loss": float(run.history["loss"][-1]),
    }
