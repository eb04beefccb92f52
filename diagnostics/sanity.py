"""Pre-training sanity checks: pass/fail, one line each, with the numbers behind the verdict.

Run them before a long training run, in the order of the diagnostic hierarchy (cheap and
fundamental first; `run_sanity_suite` stops at the first failure):

    1. data               check_data: NaN/Inf, shapes, label range, class balance, train/val leaks
    2. forward/backward   check_initial_loss: the loss at init is -ln(1/C) for C balanced classes
                          check_batch_independence: example i's output depends on example i only
    3. overfit one batch  overfit_one_batch: the model can drive the loss on 8 examples to ~0
                          check_input_dependence: it learns more from the inputs than from zeros
    4. gradient health    check_gradients: backward agrees with finite differences (float64)
    5. learning rate      check_learning_rate: the optimizer's LR is within 10x of the LR range
                          test's suggestion

Every check restores the model (parameters, buffers, train/eval mode) it was given.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

import minigrad as mg
from diagnostics.gradients import VANISHING_MEAN_ABS

# A class is "rare" when the largest class has more than 10x its examples.
CLASS_IMBALANCE_RATIO = 10.0
# The loss at init may differ from -ln(1/C) by this fraction before the check fails.
INITIAL_LOSS_TOLERANCE = 0.2
# overfit_one_batch passes when the loss falls below this fraction of its initial value.
OVERFIT_TARGET_FRACTION = 0.05
# check_input_dependence: the model trained on real inputs must end below this fraction of
# the loss of the same model trained on zeroed inputs.
INPUT_DEPENDENCE_RATIO = 0.9
# CS231n's bands for the relative error |a - n| / max(|a|, |n|) of a gradient check.
GRADIENT_WRONG = 1e-2
GRADIENT_KINKS_OK = 1e-4
GRADIENT_GOOD = 1e-7
# check_learning_rate: the optimizer's LR may be this factor away from the suggestion.
LEARNING_RATE_FACTOR = 10.0


@dataclass
class CheckResult:
    """One check's verdict: passed or not, one line, the numbers, and what to do if it failed."""

    name: str
    passed: bool
    verdict: str
    numbers: dict = field(default_factory=dict)
    recommendation: str | None = None

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        line = f"[{mark}] {self.name}: {self.verdict}"
        if not self.passed and self.recommendation:
            line += f"\n       -> {self.recommendation}"
        return line


class _restored:
    """Run a block on `model` and put its parameters, buffers and train/eval mode back after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.state = {name: value.data.copy() for name, value in self.model.state_dict().items()}
        self.modes = [(module, module.training) for module in self.model.modules()]
        return self.model

    def __exit__(self, *exc_info):
        with mg.no_grad():
            for name, value in self.model.state_dict().items():
                value.data[...] = self.state[name]
        for module, training in self.modes:
            module.training = training
        return False


def _tensor(values):
    return values if isinstance(values, mg.Tensor) else mg.tensor(values)


def _array(values) -> np.ndarray:
    return values.data if isinstance(values, mg.Tensor) else np.asarray(values)


# ------------------------------------------------------------------------------------------------
# 1. data
# ------------------------------------------------------------------------------------------------


def check_data(X, y=None, num_classes=None, X_val=None, y_val=None,
               imbalance_ratio: float = CLASS_IMBALANCE_RATIO) -> CheckResult:
    """NaN/Inf in the inputs, matching lengths, labels in [0, num_classes), class balance
    (largest/smallest class > `imbalance_ratio` is flagged), and samples that appear in both
    the training and the validation set (a leak that makes validation look too good)."""
    X = _array(X)
    problems, numbers = [], {"samples": len(X)}
    nonfinite = int(X.size - np.count_nonzero(np.isfinite(X))) if X.dtype.kind == "f" else 0
    numbers["nonfinite_inputs"] = nonfinite
    if nonfinite:
        problems.append(f"{nonfinite} NaN/Inf values in the inputs")
    if y is not None:
        y = _array(y)
        if len(y) != len(X):
            problems.append(f"{len(X)} inputs but {len(y)} labels")
        if y.dtype.kind in "iu":
            classes = int(num_classes) if num_classes is not None else int(y.max()) + 1 if y.size else 0
            numbers["classes"] = classes
            out_of_range = int(np.count_nonzero((y < 0) | (y >= classes)))
            numbers["labels_out_of_range"] = out_of_range
            if out_of_range:
                problems.append(f"{out_of_range} labels outside [0, {classes})")
            counts = np.bincount(y[(y >= 0) & (y < classes)], minlength=classes)
            present = counts[counts > 0]
            balance = float(present.max() / present.min()) if present.size else float("nan")
            numbers["largest_over_smallest_class"] = balance
            if present.size and balance > imbalance_ratio:
                problems.append(f"classes imbalanced: largest/smallest = {balance:.1f} > {imbalance_ratio:g}")
            if present.size < classes:
                problems.append(f"{classes - present.size} of {classes} classes have no examples")
        elif y.dtype.kind == "f" and not np.isfinite(y).all():
            problems.append("NaN/Inf values in the targets")
    if X_val is not None:
        duplicates = _shared_rows(X, _array(X_val))
        numbers["duplicates_train_val"] = duplicates
        if duplicates:
            problems.append(f"{duplicates} validation samples also appear in the training set")
    summary = ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in numbers.items())
    if problems:
        return CheckResult("data", False, "; ".join(problems), numbers,
                           "fix the data before training: clean NaN/Inf, check label encoding and "
                           "the train/validation split, rebalance or weight rare classes")
    return CheckResult("data", True, summary, numbers)


def _shared_rows(X: np.ndarray, X_val: np.ndarray) -> int:
    """How many rows of X_val also occur in X (exact byte equality)."""
    seen = {row.tobytes() for row in np.ascontiguousarray(X).reshape(len(X), -1)}
    return sum(row.tobytes() in seen for row in np.ascontiguousarray(X_val).reshape(len(X_val), -1))


# ------------------------------------------------------------------------------------------------
# 2. forward and backward
# ------------------------------------------------------------------------------------------------


def expected_initial_loss(num_classes: int) -> float:
    """-ln(1/C): the cross-entropy of a model that gives every one of C classes the same
    probability (ln 2 for a binary model with one logit)."""
    return math.log(max(num_classes, 2))


def check_initial_loss(model, loss_fn, X, y, num_classes=None,
                       tolerance: float = INITIAL_LOSS_TOLERANCE) -> CheckResult:
    """The loss at initialization should be -ln(1/C) within `tolerance` (relative): an
    untrained classifier should be unsure. Otherwise it names the likely cause: logits whose
    class means differ (the final bias) or logits that are too large (the final weights)."""
    with _restored(model), mg.no_grad():
        model.eval()
        logits = model(_tensor(X))
        loss = float(loss_fn(logits, _tensor(y)).item())
    scores = logits.data.reshape(len(logits.data), -1)
    classes = num_classes or (scores.shape[1] if scores.shape[1] > 1 else 2)
    expected = expected_initial_loss(classes)
    relative = abs(loss - expected) / expected
    # How far apart the classes' average logits are, and how much of that the final layer's
    # bias alone makes (the rest comes from its weights).
    class_means = scores.mean(axis=0)
    spread = float(class_means.max() - class_means.min())
    bias = _final_bias(model)
    bias_spread = float(bias.max() - bias.min()) if bias is not None and bias.size == scores.shape[1] else 0.0
    numbers = {"loss": loss, "expected": expected, "relative_error": relative,
               "spread_of_class_means": spread, "spread_of_final_bias": bias_spread,
               "logit_std": float(scores.std())}
    verdict = f"loss at init {loss:.4g} vs -ln(1/{classes}) = {expected:.4g} ({relative:.0%} off, tolerance {tolerance:.0%})"
    if relative <= tolerance:
        return CheckResult("initial loss", True, verdict, numbers)
    if bias_spread > 1 and bias_spread > spread / 2:
        cause = "the final layer's bias favours some classes: initialize it to 0 (or to log class priors)"
    elif numbers["logit_std"] > 1 or spread > 1:
        cause = "the final layer's weights are too large: scale its initialization down (e.g. by 0.01)"
    else:
        cause = "check that the loss matches the output (logits for cross_entropy, not probabilities)"
    return CheckResult("initial loss", False, verdict, numbers, cause)


def _final_bias(model):
    """The bias array of the last module with a 2-D weight and a bias (the output layer)."""
    final = None
    for module in model.modules():
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if weight is not None and bias is not None and getattr(weight, "ndim", 0) == 2:
            final = bias
    return None if final is None else final.data


def check_batch_independence(model, X, examples: int = 3) -> CheckResult:
    """The gradient of example i's output with respect to the inputs must be zero for every
    other example j: otherwise the model mixes examples across the batch (a reshape or a
    reduction over the wrong axis). BatchNorm in train mode mixes them by design (batch
    statistics); such models are checked in eval mode, and the verdict says so."""
    batch_norms = [name for name, module in model.named_modules()
                   if type(module).__name__.startswith("BatchNorm") and module.training]
    probe = copy.deepcopy(model).double()  # float64, so that a tiny leak is not rounding noise
    if batch_norms:
        probe.eval()
    inputs = mg.tensor(_array(X).astype(np.float64), requires_grad=True)
    outputs = probe(inputs)
    worst, leaking = 0.0, []
    for i in range(min(examples, len(inputs.data))):
        (grad,) = mg.grad(outputs[i].sum(), [inputs], retain_graph=True, allow_unused=True)
        others = np.delete(np.zeros_like(inputs.data) if grad is None else grad.data, i, axis=0)
        leak = float(np.abs(others).max()) if others.size else 0.0
        worst = max(worst, leak)
        if leak > 0:
            leaking.append(i)
    note = f" (BatchNorm in train mode mixes examples by design: {', '.join(batch_norms)}; checked in eval mode)" \
        if batch_norms else ""
    numbers = {"max_cross_example_gradient": worst, "examples_checked": min(examples, len(inputs.data))}
    if leaking:
        return CheckResult("batch independence", False,
                           f"outputs of examples {leaking} depend on other examples (max |d out_i / d x_j| = {worst:.3g}){note}",
                           numbers, "look for a reshape, transpose or reduction that mixes the batch dimension")
    return CheckResult("batch independence", True, f"each output depends on its own example only{note}", numbers)


# ------------------------------------------------------------------------------------------------
# 3. overfit one batch
# ------------------------------------------------------------------------------------------------


class _regularization_off:
    """Dropout p = 0 and weight_decay = 0 for a block; put back after."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer

    def __enter__(self):
        self.dropouts = [(module, module.p) for module in self.model.modules() if type(module).__name__ == "Dropout"]
        for module, _ in self.dropouts:
            module.p = 0.0
        self.decays = [(group, group.get("weight_decay", 0)) for group in self.optimizer.param_groups]
        for group, _ in self.decays:
            if "weight_decay" in group:
                group["weight_decay"] = 0.0
        return self

    def __exit__(self, *exc_info):
        for module, p in self.dropouts:
            module.p = p
        for group, decay in self.decays:
            if "weight_decay" in group:
                group["weight_decay"] = decay
        return False


def _train(model, loss_fn, optimizer, X, y, steps):
    """Full-batch training for `steps`; returns the losses and the parameters' gradients of the
    first step (None where a parameter got no gradient)."""
    losses, first_grads = [], None
    for _ in range(steps):
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        if first_grads is None:
            first_grads = {name: (None if p.grad is None else p.grad.copy()) for name, p in model.named_parameters()}
        optimizer.step()
        losses.append(float(loss.item()))
    return np.array(losses), first_grads


def overfit_one_batch(model, loss_fn, optimizer_factory, batch, steps: int = 200, target=None,
                      target_fraction: float = OVERFIT_TARGET_FRACTION) -> CheckResult:
    """Train on one small batch (dropout and weight decay off) for `steps`; pass when the loss
    falls below `target` (default `target_fraction` of the initial loss). A model that cannot
    memorize 8 examples has a bug; on failure the verdict names the layers whose parameters got
    no gradient (cut out of the graph) or a vanishing one (mean |g| < 1e-7)."""
    X, y = (_tensor(part) for part in batch)
    with _restored(model):
        model.train()
        optimizer = optimizer_factory(model.parameters())
        with _regularization_off(model, optimizer):
            losses, first_grads = _train(model, loss_fn, optimizer, X, y, steps)
    target = target if target is not None else target_fraction * losses[0]
    final = float(losses[-1])
    numbers = {"initial_loss": float(losses[0]), "final_loss": final, "target": target, "steps": steps}
    verdict = f"loss {losses[0]:.4g} -> {final:.4g} in {steps} steps on {len(X.data)} examples (target {target:.3g})"
    if np.isfinite(final) and final <= target:
        return CheckResult("overfit one batch", True, verdict, numbers)
    no_gradient = [name for name, grad in first_grads.items() if grad is None]
    tiny = [name for name, grad in first_grads.items()
            if grad is not None and grad.size and np.abs(grad).mean() < VANISHING_MEAN_ABS]
    numbers.update(no_gradient=no_gradient, vanishing_gradient=tiny)
    if no_gradient:
        cause = (f"gradient flow stops before {', '.join(no_gradient)}: these parameters got no gradient "
                 "(a detach(), a no_grad block, or an op on .data cuts them out of the graph)")
    elif tiny:
        cause = f"gradients vanish at {', '.join(tiny)} (mean |g| < {VANISHING_MEAN_ABS:g}): check activations and init"
    else:
        cause = "the model cannot memorize one batch: raise the learning rate or the capacity, and check the loss"
    return CheckResult("overfit one batch", False, verdict + "; " + cause.split(":")[0], numbers, cause)


def check_input_dependence(model_factory, loss_fn, optimizer_factory, X, y, steps: int = 100,
                           ratio: float = INPUT_DEPENDENCE_RATIO) -> CheckResult:
    """Train one fresh model on the real inputs and one on zeroed inputs for `steps`: the real
    one must end below `ratio` x the zero-input one's loss. If not, the model is not using its
    inputs (wrong features fed, inputs overwritten, or a label-only shortcut)."""
    X, y = _tensor(X), _tensor(y)
    finals = {}
    for label, inputs in (("real", X), ("zeroed", mg.zeros_like(X))):
        model = model_factory()
        losses, _ = _train(model, loss_fn, optimizer_factory(model.parameters()), inputs, y, steps)
        finals[label] = float(losses[-1])
    numbers = {"loss_real_inputs": finals["real"], "loss_zeroed_inputs": finals["zeroed"], "ratio_required": ratio}
    verdict = f"after {steps} steps: loss {finals['real']:.4g} on real inputs vs {finals['zeroed']:.4g} on zeroed inputs"
    if finals["real"] < ratio * finals["zeroed"]:
        return CheckResult("input dependence", True, verdict, numbers)
    return CheckResult("input dependence", False, verdict, numbers,
                       "the model learns no more from the inputs than from zeros: check what is fed to it")


# ------------------------------------------------------------------------------------------------
# 4. gradient health
# ------------------------------------------------------------------------------------------------


def check_gradients(model, loss_fn, X, y, entries_per_parameter: int = 10, eps: float = 1e-6,
                    seed: int = 0) -> CheckResult:
    """Gradient check of the whole model in float64 on a small batch: for a few random entries
    of every parameter, the analytic gradient against the central difference
    (L(theta + eps) - L(theta - eps)) / (2 eps), compared by the relative error
    |a - n| / max(|a|, |n|) in CS231n's bands: > 1e-2 wrong, < 1e-4 fine for losses with kinks
    (ReLU), < 1e-7 good."""
    model = copy.deepcopy(model).double()
    model.eval()
    X = mg.tensor(_array(X).astype(np.float64))
    y = _tensor(y)
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    generator = np.random.default_rng(seed)
    worst, worst_at = 0.0, None
    for name, parameter in model.named_parameters():
        analytic = np.zeros_like(parameter.data) if parameter.grad is None else parameter.grad
        flat = parameter.data.reshape(-1)
        for index in generator.choice(flat.size, size=min(entries_per_parameter, flat.size), replace=False):
            original = flat[index]
            with mg.no_grad():
                flat[index] = original + eps
                plus = float(loss_fn(model(X), y).item())
                flat[index] = original - eps
                minus = float(loss_fn(model(X), y).item())
                flat[index] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic.reshape(-1)[index])
            scale = max(abs(exact), abs(numeric))
            relative = 0.0 if scale == 0 else abs(exact - numeric) / scale
            if relative > worst:
                worst, worst_at = relative, f"{name}[{int(index)}]"
    band = ("wrong" if worst > GRADIENT_WRONG else "uncomfortable" if worst > GRADIENT_KINKS_OK
            else "fine with kinks" if worst > GRADIENT_GOOD else "good")
    numbers = {"max_relative_error": worst, "at": worst_at, "band": band}
    verdict = f"max relative error {worst:.2e} ({band})" + (f" at {worst_at}" if worst_at else "")
    if worst <= GRADIENT_KINKS_OK:
        return CheckResult("gradient check", True, verdict, numbers)
    return CheckResult("gradient check", False, verdict, numbers,
                       "a backward rule disagrees with finite differences: gradcheck each custom op")


# ------------------------------------------------------------------------------------------------
# 5. learning rate, and the suite
# ------------------------------------------------------------------------------------------------


def check_learning_rate(model, loss_fn, optimizer_factory, X, y, batch_size: int = 64, num_iter: int = 60,
                        factor: float = LEARNING_RATE_FACTOR) -> CheckResult:
    """Run a short LR range test on a copy of the model and compare the optimizer's learning
    rate with the suggestion: more than `factor` away either way fails, when the suggestion has
    high confidence (its rules agree within 10x); an uncertain suggestion passes with a note."""
    from diagnostics.lr_finder import LRFinder

    model = copy.deepcopy(model)
    optimizer = optimizer_factory(model.parameters())
    current = float(optimizer.param_groups[0]["lr"])
    loader = mg.data.DataLoader(mg.data.TensorDataset(_array(X), _array(y)), batch_size=batch_size,
                                shuffle=True, seed=0)
    finder = LRFinder(model, optimizer, loss_fn).range_test(loader, num_iter=num_iter)
    suggestion = finder.suggestion()
    ratio = current / suggestion.lr if suggestion.lr > 0 else float("nan")
    numbers = {"lr": current, "suggested_lr": suggestion.lr, "ratio": ratio, "confidence": suggestion.confidence}
    verdict = f"lr {current:.3g} vs suggested {suggestion.lr:.3g} ({suggestion.confidence} confidence)"
    if not np.isfinite(ratio) or 1 / factor <= ratio <= factor:
        return CheckResult("learning rate", True, verdict, numbers)
    if suggestion.confidence != "high":
        return CheckResult("learning rate", True, verdict + f": {max(ratio, 1 / ratio):.0f}x off, but the range "
                           "test's rules disagree, so this is no verdict on the learning rate", numbers)
    direction = "lower" if ratio > 1 else "higher"
    return CheckResult("learning rate", False, verdict + f": {max(ratio, 1 / ratio):.0f}x off", numbers,
                       f"use a {direction} learning rate, near {suggestion.lr:.3g}")


@dataclass
class SuiteResult:
    """The checks that ran, in order; `passed` is False at the first failure (the suite stops)."""

    results: list

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def first_failure(self):
        return next((result for result in self.results if not result.passed), None)

    def __str__(self) -> str:
        lines = [str(result) for result in self.results]
        lines.append("all checks passed" if self.passed else f"stopped at: {self.first_failure.name}")
        return "\n".join(lines)


def run_sanity_suite(model, loss_fn, optimizer_factory, X, y, X_val=None, y_val=None, num_classes=None,
                     model_factory=None, overfit_steps: int = 200, learning_rate: bool = True) -> SuiteResult:
    """Every check in the diagnostic-hierarchy order; stops at the first failure.
    `model_factory` (a function returning a fresh model) enables the input-dependence check."""
    batch = (_array(X)[:8], _array(y)[:8])
    checks = [
        lambda: check_data(X, y, num_classes, X_val, y_val),
        lambda: check_initial_loss(model, loss_fn, X, y, num_classes),
        lambda: check_batch_independence(model, _array(X)[:8]),
        lambda: overfit_one_batch(model, loss_fn, optimizer_factory, batch, steps=overfit_steps),
    ]
    if model_factory is not None:
        checks.append(lambda: check_input_dependence(model_factory, loss_fn, optimizer_factory, X, y))
    checks.append(lambda: check_gradients(model, loss_fn, _array(X)[:4], _array(y)[:4]))
    if learning_rate:
        checks.append(lambda: check_learning_rate(model, loss_fn, optimizer_factory, X, y))
    results = []
    for check in checks:
        results.append(check())
        if not results[-1].passed:
            break
    return SuiteResult(results)
