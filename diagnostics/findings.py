"""Finding: one rule that fired, with the numbers that fired it.

Every detector in the diagnostics layer returns a list of Findings. A Finding names *what* was
seen (``kind``, one word from :data:`KINDS`), *when* it started (``step``), *where* (``layer``,
or None for the whole model), *how bad* (``severity``), the *evidence* (the measured numbers and
the threshold they crossed) and a one-line ``message`` a person reads, e.g.::

    layer fc1.weight: mean |grad| 3.2e-09 < 1e-07 (vanishing)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

# One vocabulary across detectors, the doctor, the lab and the CLI (DESIGN.md). Add a kind when
# a new detector needs one; never reuse a kind for another meaning.
KINDS = (
    "exploding_gradients",
    "vanishing_gradients",
    "non_finite",
    "dead_relu",
    "saturation",
    "plateau",
    "lr_too_low",
    "oscillation",
    "loss_spike",
    "divergence",
    "overfitting",
    "underfitting",
    "double_descent",
    "bad_init",
    "update_ratio",
    "clipping",
    "healthy",
)

# Ordered from least to most serious; `Finding.rank` is the index in this tuple.
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Finding:
    """One detector result.

    kind:     one of KINDS.
    step:     the first step at which the rule holds (None when it is not tied to a step).
    layer:    the layer or parameter name the rule is about (None for the whole model).
    severity: one of SEVERITIES.
    evidence: the numbers that fired the rule, including the threshold it was compared with.
    message:  one line for a person to read.
    """

    kind: str
    message: str
    severity: str = "warning"
    step: int | None = None
    layer: str | None = None
    evidence: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Finding: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding: unknown severity {self.severity!r}; expected one of {', '.join(SEVERITIES)}"
            )

    @property
    def rank(self) -> int:
        """Position of the severity in SEVERITIES: 0 info, 1 warning, 2 critical."""
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (evidence values converted to plain Python numbers)."""
        return {
            "kind": self.kind,
            "message": self.message,
            "severity": self.severity,
            "step": self.step,
            "layer": self.layer,
            "evidence": {key: _plain(value) for key, value in self.evidence.items()},
        }

    def __str__(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        return f"[{self.severity}] {self.kind}{where}: {self.message}"


def _plain(value):
    """NumPy scalars and arrays as Python numbers and lists, so findings serialize to JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def accepted_thresholds(rule, thresholds: dict) -> dict:
    """The entries of `thresholds` that `rule` takes as keyword arguments, so that one dict of
    overrides can be passed to every rule of a family."""
    names = inspect.signature(rule).parameters
    return {key: value for key, value in thresholds.items() if key in names}
