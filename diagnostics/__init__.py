"""Training diagnostics on plain arrays: record, detect, diagnose, recommend.

    from diagnostics import Recorder, diagnose, LRFinder, clip_grad_norm_

    rec = Recorder(model)                 # hooks in; rec.detach() removes them
    ... train, calling rec.step(loss=..., lr=...) after each optimizer.step() ...
    print(diagnose(rec))                  # the doctor's report

Every detector is a pure function of recorded arrays (a History), so the same diagnosis runs
on a minigrad model, a PyTorch model (through its adapter) or a CSV/JSONL log from anywhere.

The names below are imported from their modules on first use, so that the command line
(`python -m diagnostics`) can configure NumPy before anything imports it.
"""

import importlib

# public name -> the module that defines it
_EXPORTS = {
    "Recorder": "diagnostics.probes",
    "diagnose": "diagnostics.doctor",
    "Report": "diagnostics.doctor",
    "LRFinder": "diagnostics.lr_finder",
    "clip_grad_norm_": "diagnostics.clipping",
    "clip_grad_value_": "diagnostics.clipping",
    "adaptive_clip_grad_": "diagnostics.clipping",
    "ClipStats": "diagnostics.clipping",
    "EarlyStopping": "diagnostics.early_stopping",
    "compare_runs": "diagnostics.compare",
    "run_sanity_suite": "diagnostics.sanity",
    "audit_init": "diagnostics.model_checks",
    "dead_units": "diagnostics.model_checks",
    "analyze_curves": "diagnostics.curves",
    "analyze_gradients": "diagnostics.gradients",
    "analyze_activations": "diagnostics.activations",
    "Finding": "diagnostics.findings",
    "KINDS": "diagnostics.findings",
    "SEVERITIES": "diagnostics.findings",
    "History": "diagnostics.history",
    "load_history": "diagnostics.history",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diagnostics' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
