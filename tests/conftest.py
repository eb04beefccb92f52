"""Hypothesis profiles: `dev` for local work, `ci` (bounded, no deadline) when CI=true.

BLAS runs on one thread in tests: the models are small, and on a 2-core machine a second
BLAS thread competing with other work makes small matmuls up to 100x slower. (Set before NumPy
is first imported; an explicit setting in the environment wins.)
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev"))
