"""The doctor: symptoms -> findings -> a diagnosis with ranked recommendations.

    report = diagnose(rec)          # a Recorder, a History, a dict of columns, or a log's path
    print(report)                   # the text report
    report.primary                  # the most likely cause, a finding kind ("healthy" if none)
    report.kinds, report.findings, report.recommendations, report.to_dict()

Every detector runs on the recorded arrays (curves.py on the loss curves, gradients.py and
activations.py on the per-layer statistics, clipping.py on the clip telemetry). The findings are
then read through the failure-signature table below: each row is a cause, the symptoms it
produces, and its fixes. A cause is ranked by the severity of its own finding and by how many
of the other findings it explains (dead ReLUs explain vanishing gradients in the layers before
them and a plateau of the loss; a plateau alone explains nothing), so the report names a root
cause rather than its symptoms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diagnostics import activations, curves, gradients
from diagnostics.activations import analyze_activations
from diagnostics.clipping import clipping_findings
from diagnostics.curves import analyze_curves
from diagnostics.findings import KINDS, Finding
from diagnostics.gradients import analyze_gradients
from diagnostics.history import History, load_history
from diagnostics.stats import last_finite

# Every detector threshold is a module constant; it is overridden by its lower-case name.
THRESHOLD_NAMES = {
    module: {name.lower() for name in vars(module) if name.isupper() and not name.startswith("_")}
    for module in (curves, gradients, activations)
}
THRESHOLD_NAMES[curves] |= {"floor", "initial_loss"}


@dataclass(frozen=True)
class Cause:
    """One row of the failure-signature table."""

    kind: str                    # the finding kind that names the cause
    title: str                   # as the report prints it
    gradient_norm: str           # what the gradient norm does
    loss_trend: str              # what the loss does
    explains: tuple[str, ...]    # other finding kinds this cause produces
    fixes: tuple[str, ...]       # ranked recommendations


# The failure-signature table (symptom: gradient norm x loss trend -> cause -> fixes).
FAILURE_SIGNATURES = (
    Cause("exploding_gradients", "exploding gradients", "grows past 100 or to NaN/Inf",
          "jumps up, then NaN", ("non_finite", "divergence", "loss_spike", "oscillation", "update_ratio"),
          ("clip the gradient norm (clip_grad_norm_(params, 1.0))",
           "lower the learning rate (run the LR range test)",
           "add normalization (BatchNorm/LayerNorm) or use a smaller initialization (He/Xavier)")),
    Cause("non_finite", "non-finite values (NaN/Inf)", "NaN/Inf", "NaN",
          ("divergence", "vanishing_gradients", "plateau", "underfitting", "update_ratio", "dead_relu"),
          ("find the first op that made the NaN with minigrad.detect_anomaly()",
           "guard log/sqrt/division inputs (clamp, or the double-where for where(cond, f(x), ...))",
           "lower the learning rate and clip the gradient norm")),
    Cause("dead_relu", "dead ReLU units", "0 for dead units' weights, small before them",
          "plateaus early", ("vanishing_gradients", "plateau", "underfitting", "lr_too_low", "update_ratio"),
          ("use LeakyReLU (or ELU/GELU) so that inactive units still get a gradient",
           "lower the learning rate: a large step pushes biases so negative that units never fire",
           "use He (kaiming) initialization and a small positive bias (e.g. 0.01)")),
    Cause("saturation", "saturated tanh/sigmoid units", "tiny in the layers before the saturated ones",
          "plateaus", ("vanishing_gradients", "plateau", "underfitting", "lr_too_low", "update_ratio"),
          ("use Xavier (Glorot) initialization for tanh/sigmoid layers",
           "add normalization (LayerNorm/BatchNorm) before the activation",
           "lower the learning rate, or switch to ReLU with He initialization")),
    Cause("vanishing_gradients", "vanishing gradients", "< 1e-7, shrinking toward the input",
          "plateaus from the start", ("plateau", "underfitting", "lr_too_low", "update_ratio"),
          ("add residual connections or use a different activation (ReLU/LeakyReLU instead of sigmoid/tanh)",
           "use He initialization for ReLU layers, Xavier for tanh",
           "add normalization layers (BatchNorm/LayerNorm)")),
    Cause("bad_init", "poor initialization", "too large or too small from step 0",
          "starts far from ln(C) or stalls", ("vanishing_gradients", "exploding_gradients", "saturation", "dead_relu"),
          ("initialize each layer for its activation: He (kaiming) for ReLU, Xavier for tanh/sigmoid",
           "check the loss at initialization against -ln(1/C) (diagnostics.sanity)")),
    Cause("divergence", "divergence", "grows", "rises far above its best",
          ("loss_spike",),
          ("lower the learning rate", "add warmup (LinearLR) and gradient clipping")),
    Cause("oscillation", "learning rate too high (oscillation)", "large and erratic", "zig-zags without settling",
          ("loss_spike",),
          ("lower the learning rate (by 3-10x, or use the LR range test)",
           "use a schedule that decays the learning rate (cosine, step)",
           "use momentum or Adam, which average the gradient over steps")),
    Cause("loss_spike", "loss spikes", "spikes", "sudden jumps",
          (),
          ("add learning-rate warmup (LinearLR for the first few hundred steps)",
           "clip the gradient norm",
           "look for bad batches (outliers, wrong labels) at the spike steps")),
    Cause("lr_too_low", "learning rate too low", "small and steady", "falls slowly and steadily, never bends",
          ("underfitting", "plateau", "update_ratio"),
          ("raise the learning rate (the LR range test suggests one)",
           "train longer if raising it is not possible")),
    Cause("plateau", "loss plateau", "small", "flat far above its best",
          (),
          ("raise the learning rate or use momentum/Adam to escape the plateau",
           "check gradient flow per layer (vanishing or dead units cause plateaus)")),
    Cause("overfitting", "overfitting", "normal", "train falls, validation rises",
          (),
          ("stop at the validation minimum (early stopping)", "add weight decay (AdamW) or dropout",
           "get more training data, or use a smaller model")),
    Cause("underfitting", "underfitting", "normal", "train and validation stay high",
          ("plateau",),
          ("use a bigger model (more width or depth)", "train longer or with a higher learning rate",
           "reduce regularization (weight decay, dropout)")),
    Cause("double_descent", "double descent", "normal", "validation falls, rises, falls lower",
          (),
          ("keep training past the first validation minimum: the second descent goes lower",
           "or regularize (weight decay) to remove the peak")),
    Cause("update_ratio", "update size out of range", "normal", "any",
          (),
          ("adjust that layer's learning rate: aim for update/weight ratios near 1e-3",)),
    Cause("clipping", "clipping misconfigured", "clipped on every step, or never", "any",
          (),
          ("if it fires on every step, lower the learning rate or raise max_norm; if never, drop it or lower max_norm",)),
)
_CAUSES = {cause.kind: cause for cause in FAILURE_SIGNATURES}


@dataclass(frozen=True)
class Recommendation:
    """A fix, and the finding that calls for it."""

    text: str
    cause: str
    because: Finding

    def __str__(self) -> str:
        return f"{self.text}  [{self.because.kind}: {self.because.message}]"


class Report:
    """The doctor's answer: findings, the primary cause and ranked recommendations."""

    def __init__(self, findings: list[Finding], history: History, checked_steps: int):
        self.findings = findings
        self.history = history
        self.checked_steps = checked_steps
        self.ranked_causes = _rank_causes(findings)
        self.primary = self.ranked_causes[0] if self.ranked_causes else "healthy"
        self.recommendations = self._recommend()

    @property
    def kinds(self) -> set[str]:
        """Every kind that fired ({'healthy'} when nothing did)."""
        return {finding.kind for finding in self.findings} or {"healthy"}

    @property
    def healthy(self) -> bool:
        return self.primary == "healthy"

    def findings_of(self, kind: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == kind]

    def _recommend(self) -> list[Recommendation]:
        """Fixes of each cause in rank order, skipping causes that a higher-ranked cause
        explains (a plateau caused by vanishing gradients needs the vanishing-gradient fixes)."""
        recommendations, explained = [], set()
        for kind in self.ranked_causes:
            if kind in explained:
                continue
            explained.update(_CAUSES[kind].explains)
            evidence = _strongest(self.findings_of(kind))
            for text in _CAUSES[kind].fixes:
                recommendations.append(Recommendation(text, kind, evidence))
        return recommendations

    def to_dict(self) -> dict:
        return {
            "primary": self.primary,
            "kinds": sorted(self.kinds),
            "causes": list(self.ranked_causes),
            "findings": [finding.to_dict() for finding in self.findings],
            "recommendations": [{"text": r.text, "cause": r.cause, "because": r.because.message}
                                for r in self.recommendations],
            "steps": self.checked_steps,
        }

    def __str__(self) -> str:
        return format_report(self)

    def __repr__(self) -> str:
        return f"Report(primary={self.primary!r}, kinds={sorted(self.kinds)})"


def _strongest(findings: list[Finding]) -> Finding:
    return max(findings, key=lambda finding: (finding.rank, -(finding.step or 0)))


def _rank_causes(findings: list[Finding]) -> list[str]:
    """Causes that fired with at least a warning, most likely first: by the severity of their
    own findings, then by how many other fired kinds they explain, then by their order in the
    table. Info findings are notes, not causes."""
    findings = [finding for finding in findings if finding.severity != "info"]
    fired = {finding.kind for finding in findings}
    order = [cause.kind for cause in FAILURE_SIGNATURES]

    def score(kind):
        severity = max(finding.rank for finding in findings if finding.kind == kind)
        explained = sum(1 for other in _CAUSES[kind].explains if other in fired)
        return (severity, explained, -order.index(kind))

    return sorted((kind for kind in fired if kind in _CAUSES), key=score, reverse=True)


def format_report(report: Report) -> str:
    """The text report: the diagnosis with its evidence, the recommendations, the rest."""
    history = report.history
    lines = [f"minigrad doctor: {report.checked_steps} recorded steps"]
    loss = history.get("loss")
    finite_loss = loss[np.isfinite(loss)] if loss is not None else np.zeros(0)
    if finite_loss.size:
        lines.append(f"Loss: {finite_loss[0]:.4g} -> {finite_loss[-1]:.4g} (best {finite_loss.min():.4g})")
    grad_norm = history.get("grad_norm")
    if grad_norm is not None and np.isfinite(grad_norm).any():
        lines.append(f"Gradient norm: {last_finite(grad_norm):.3g} at the last step "
                     f"(median {np.nanmedian(grad_norm):.3g})")
    if report.healthy:
        lines.append("Diagnosis: healthy — no rule fired" if not report.findings else "Diagnosis: healthy")
        lines.extend(f"  note: {finding.message}" for finding in report.findings)
        return "\n".join(lines)
    cause = _CAUSES[report.primary]
    lines.append(f"Diagnosis: {cause.title}")
    lines.append(f"  signature: gradient norm {cause.gradient_norm}; loss {cause.loss_trend}")
    explained = {report.primary, *cause.explains}
    for finding in report.findings:
        if finding.kind in explained:
            where = f"step {finding.step}: " if finding.step is not None else ""
            lines.append(f"  - {where}{finding.message}")
    lines.append("Recommendations:")
    for number, recommendation in enumerate(report.recommendations[:6], start=1):
        lines.append(f"  {number}. {recommendation.text}  [{recommendation.cause}]")
    others = [finding for finding in report.findings if finding.kind not in explained]
    if others:
        lines.append("Also found:")
        lines.extend(f"  - {finding}" for finding in others)
    return "\n".join(lines)


def as_history(source) -> tuple[History, dict | None]:
    """A History (and per-unit statistics when there are some) from a Recorder, a History,
    a dict of columns, or the path of a CSV/JSONL log."""
    if isinstance(source, History):
        return source, None
    if isinstance(source, dict):
        return History(source), None
    if isinstance(source, (str, Path)):
        return load_history(source), None
    if hasattr(source, "history") and hasattr(source, "unit_stats"):
        units = {name: source.unit_stats(name) for name in source.probes}
        return source.history, {name: stats for name, stats in units.items() if stats}
    raise TypeError(f"diagnose: expected a Recorder, a History, a dict of columns or a log path, "
                    f"got {type(source).__name__}")


def diagnose(source, *, extra_findings=(), **thresholds) -> Report:
    """Run every detector on a run and read the findings through the failure-signature table.

    source:         a Recorder, a History, a dict of columns, or a CSV/JSONL log path.
    extra_findings: findings from checks outside the recorded history (e.g. the init audit).
    thresholds:     overrides for any detector's named threshold (lower-case constant names).
    """
    history, unit_stats = as_history(source)
    unknown = sorted(set(thresholds) - set().union(*THRESHOLD_NAMES.values()))
    if unknown:
        raise ValueError(f"diagnose: unknown threshold {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(set().union(*THRESHOLD_NAMES.values())))}")

    def overrides(module):
        return {name: value for name, value in thresholds.items() if name in THRESHOLD_NAMES[module]}

    findings = list(extra_findings)
    loss = history.get("loss")
    if loss is not None:
        findings += analyze_curves(loss, history.get("val_loss"), history.steps, **overrides(curves))
    findings += analyze_gradients(history, **overrides(gradients))
    findings += analyze_activations(history, unit_stats, **overrides(activations))
    fired = history.get("clip_fired")
    if fired is not None:
        findings += clipping_findings(fired, history.get("clip_norm", np.zeros(0)),
                                      history.get("clip_threshold", np.zeros(0)))
    for finding in findings:
        if finding.kind not in KINDS:
            raise ValueError(f"diagnose: unknown finding kind {finding.kind!r}")
    return Report(findings, history, len(history))

