"""`python -m diagnostics ...`: the same command line as `minigrad-diagnose` (see cli.py)."""

import os

# The lab trains small models: one BLAS thread is faster than two competing for 2 cores.
# (Set before NumPy is imported; a setting already in the environment wins.)
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

from diagnostics.cli import main  # noqa: E402

raise SystemExit(main())
