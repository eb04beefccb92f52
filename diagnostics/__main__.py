"""`python -m diagnostics ...`: the same command line as `minigrad-diagnose` (see cli.py)."""

from diagnostics.cli import main

raise SystemExit(main())
