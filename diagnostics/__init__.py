"""Training diagnostics on plain arrays: record, detect, diagnose, recommend.

    from diagnostics import Recorder, diagnose, LRFinder, clip_grad_norm_

    rec = Recorder(model)                 # hooks in; rec.detach() removes them
    ... train, calling rec.step(loss=..., lr=...) after each optimizer.step() ...
    print(diagnose(rec))                  # the doctor's report

Every detector is a pure function of recorded arrays (a History), so the same diagnosis runs
on a minigrad model, a PyTorch model (through its adapter) or a CSV/JSONL log from anywhere.
"""

from diagnostics.activations import analyze_activations
from diagnostics.clipping import ClipStats, adaptive_clip_grad_, clip_grad_norm_, clip_grad_value_
from diagnostics.compare import compare_runs
from diagnostics.curves import analyze_curves
from diagnostics.doctor import Report, diagnose
from diagnostics.early_stopping import EarlyStopping
from diagnostics.findings import KINDS, SEVERITIES, Finding
from diagnostics.gradients import analyze_gradients
from diagnostics.history import History, load_history
from diagnostics.lr_finder import LRFinder
from diagnostics.model_checks import audit_init, dead_units
from diagnostics.probes import Recorder
from diagnostics.sanity import run_sanity_suite

__all__ = [
    "Recorder", "diagnose", "Report", "LRFinder", "clip_grad_norm_", "clip_grad_value_", "adaptive_clip_grad_",
    "ClipStats", "EarlyStopping", "compare_runs", "run_sanity_suite", "audit_init", "dead_units",
    "analyze_curves", "analyze_gradients", "analyze_activations", "Finding", "KINDS", "SEVERITIES",
    "History", "load_history",
]
