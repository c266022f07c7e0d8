"""Results across runs: finding run directories and reading what they logged (``runs``),
statistics across seeds (``stats``), learning curves on a common step grid (``curves``),
figures (``plots``) and training many seeds at once (``multirun``).

The command-line scripts ``multirun.py``, ``aggregate.py`` and ``plot.py`` are thin wrappers over
these modules. ``analysis`` reads run directories and starts ``train.py`` as a program; it never
imports ``train``.
"""
