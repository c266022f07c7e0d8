"""Results across runs: finding run directories and reading what they logged (``runs``),
statistics across seeds (``stats``), learning curves on a common step grid (``curves``),
figures (``plots``) and training many seeds at once (``multirun``).

The command-line scripts ``multirun.py``, ``aggregate.py`` and ``plot.py`` are thin wrappers over
these modules. ``analysis`` reads run directories and starts ``train.py`` as a program; it never
imports ``train``.
"""

from dqn_family.configs import UserError

PLOTTING_PACKAGES = ("scipy", "matplotlib")


def missing_plots_extra(prog: str, error: ModuleNotFoundError) -> UserError:
    """The one-line error for a missing scientific package (re-raises any other import error)."""
    package = (error.name or "").split(".")[0]
    if package not in PLOTTING_PACKAGES:
        raise error
    return UserError(f"{prog} needs {package}, which is not installed; install it with: pip install -e '.[plots]'")
