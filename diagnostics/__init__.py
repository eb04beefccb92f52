"""Training diagnostics on plain arrays: record, detect, diagnose, recommend."""

from diagnostics.findings import KINDS, SEVERITIES, Finding
from diagnostics.history import History, load_history

__all__ = ["Finding", "KINDS", "SEVERITIES", "History", "load_history"]
