"""What a finished study leaves in its folder besides the trials' run directories: the best
trial's complete config as ``best.yaml`` (for a multi-objective study, each Pareto-optimal
trial's as ``best_<number>.yaml``), figures drawn with optuna.visualization.matplotlib as PNG
(Agg backend), and the lines tune.py prints at the end."""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dqn_family.configs import ConfigError
from dqn_family.fileio import (
    one_line,
    require_real_folder,
    require_writable_file,
    short_repr,
    write_figure,
    write_text_atomic,
)
from dqn_family.tuning.objective import config_file_text
from dqn_family.tuning.study import TuneSettings, shown_url


def write_best(study: optuna.Study, settings: TuneSettings) -> list[Path]:
    """best.yaml (or best_<number>.yaml per Pareto-optimal trial); none without a COMPLETE trial.
    A stale best_<number>.yaml from an earlier, shorter study is not removed (it is still a config)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if settings.multi_objective:
        chosen = [(trial, settings.out / f"best_{trial.number}.yaml") for trial in study.best_trials]
    else:
        chosen = [(study.best_trial, settings.out / "best.yaml")]
    texts = []
    for trial, path in chosen:  # every config checked before any file is written
        try:
            texts.append((path, config_file_text(settings, trial.params, trial.number)))
        except ConfigError as error:  # stored parameters are untrusted input (tuning.study.check_stored_trials)
            raise ConfigError(
                f"study {settings.study_name!r}: trial {trial.number}'s parameters do not make a valid config: {error}"
            ) from None
    for path, text in texts:
        write_text_atomic(path, text)  # a link or special file planted there is refused
    return [path for path, _ in texts]


def check_study_folder(out: Path) -> None:
    """Refuse (RefusedPath, before any trial runs) a study folder where a name tune.py writes is a
    symlink or special file: best.yaml, best_<n>.yaml, figures/ and its PNGs, trial_<n>/. The
    folder may come from someone else; a planted link must not make the study write through it,
    and a FIFO must not hang it. (The writes refuse them too; this says so before hours of trials.)"""
    if not out.is_dir():
        return
    for path in out.iterdir():
        if path.name == "figures" or re.fullmatch(r"trial_\d+", path.name):
            require_real_folder(path, create=False)
        elif re.fullmatch(r"best(_\d+)?\.yaml", path.name):
            require_writable_file(path)
    figures = out / "figures"
    if figures.is_dir() and not figures.is_symlink():
        for path in figures.glob("*.png"):
            require_writable_file(path)


def write_figures(study: optuna.Study, settings: TuneSettings, say: Callable[[str], None] = print) -> list[Path]:
    """The study's figures as PNG in ``<out>/figures``; each one that cannot be drawn is skipped
    with a note (no matplotlib, too few trials)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots
    except ImportError as error:
        say(f"note: no figures ({error}; install the tune extra: pip install -e '.[tune]')")
        return []
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    target = (lambda trial: trial.values[0]) if settings.multi_objective else None
    name = "objective (mean return)"
    # Each draws an Axes or (some Optuna plots) an array of them: read below by duck typing.
    figures: dict[str, Callable[[], Any]] = {
        "optimization_history": lambda: optuna_plots.plot_optimization_history(study, target=target, target_name=name),
        "parallel_coordinate": lambda: optuna_plots.plot_parallel_coordinate(study, target=target, target_name=name),
    }
    if complete >= 2:
        figures["param_importances"] = lambda: optuna_plots.plot_param_importances(
            study, target=target, target_name=name
        )
    else:
        say("note: no parameter-importance figure (it needs at least 2 COMPLETE trials)")
    if settings.multi_objective:
        figures["pareto_front"] = lambda: optuna_plots.plot_pareto_front(
            study, target_names=["objective (mean return)", "training seconds"]
        )
    folder = settings.out / "figures"
    require_real_folder(folder)  # made if missing; a link or file planted there is refused
    written = []
    for figure_name, draw in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = draw()
            figure = getattr(axes, "figure", None) or axes.flat[0].figure  # one Axes, or an array of them
        except Exception as error:  # a figure is a convenience: the study and configs are what count
            say(f"note: figure {figure_name} skipped ({type(error).__name__}: {one_line(error, 200)})")
            continue
        try:  # drawn into memory, then renamed into place: a link planted there is refused (RefusedPath)
            write_figure(folder / f"{figure_name}.png", figure, dpi=100, bbox_inches="tight")
        finally:
            plt.close(figure)
        written.append(folder / f"{figure_name}.png")
    return written


def summary_lines(study: optuna.Study, settings: TuneSettings, best_files: list[Path]) -> list[str]:
    """The end of tune.py's output: counts, the best trial(s), the files, the dashboard command."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(trial.state == state for trial in trials) for state in TrialState}
    lines = [
        f"study {settings.study_name}: {counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} "
        f"pruned, {counts[TrialState.FAIL]} failed"
    ]
    if best_files and settings.multi_objective:
        front = ", ".join(f"trial {t.number} ({t.values[0]:.1f}, {t.values[1]:.1f} s)" for t in study.best_trials)
        lines.append(
            f"Pareto front (objective, training seconds): {front}; their configs: best_<number>.yaml in {settings.out}"
        )
    elif best_files:
        best = study.best_trial
        run_dir = best.user_attrs.get("run_dir")  # as the trial recorded it: untrusted, so bounded and escaped
        lines.append(
            f"best: trial {best.number}, value {best.value:.1f}, run directory {short_repr(run_dir, 200)}; "
            f"config: {best_files[0]} (python train.py --config {best_files[0]})"
        )
    else:
        lines.append("no trial completed: no best config was written")
    lines.append(dashboard_line(settings.storage_url))
    return lines


def dashboard_line(storage_url: str) -> str:
    """How to browse the study: the optuna-dashboard command, or how to install it first."""
    command = f"optuna-dashboard {shown_url(storage_url)}"
    if importlib.util.find_spec("optuna_dashboard") is None:
        return (
            f"dashboard: optuna-dashboard is not installed; install it (pip install optuna-dashboard), then: {command}"
        )
    return f"dashboard: {command}"
