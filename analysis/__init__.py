"""Results across runs: finding run directories and reading what they logged (``runs``),
statistics across seeds (``stats``), learning curves on a common step grid (``curves``),
figures (``plots``) and training many seeds at once (``multirun``).

The command-line scripts ``multirun.py``, ``aggregate.py`` and ``plot.py`` are thin wrappers over
these modules. ``analysis`` reads run directories and starts ``train.py`` as a program; it never
imports ``train``.
"""

from dqn_family.configs import UserError

PLOTTING_PACKAGES = ("scipy", "matplotlib")

# The confidence intervals of every table, figure and JSON file (analysis.stats computes them),
# named once; here rather than in stats so that a script's --help names them without scipy.
CONFIDENCE = 0.95
INTERVAL_METHOD = "percentile bootstrap"
INTERVAL_NAME = f"{CONFIDENCE:.0%} {INTERVAL_METHOD} CI"
# Fewer runs per group than this, and a percentile bootstrap interval is too narrow to trust: it
# never reaches beyond the scores, and for the mean of 2 or 3 scores it is exactly [min, max].
MIN_RUNS_FOR_INTERVAL = 5


def missing_plots_extra(prog: str, error: ModuleNotFoundError) -> UserError:
    """The one-line error for a missing scientific package (re-raises any other import error)."""
    package = (error.name or "").split(".")[0]
    if package not in PLOTTING_PACKAGES:
        raise error
    return UserError(f"{prog} needs {package}, which is not installed; install it with: pip install -e '.[plots]'")
