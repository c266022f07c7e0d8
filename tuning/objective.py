"""One trial of a study: its config (the layers train.py uses, plus the sampled parameters), a
normal training run in ``<out>/trial_<number>/`` through ``train(config, on_evaluation=...)``,
and the value the study optimises.

The objective is computed from the periodic greedy evaluations: ``mean-last`` the mean of the
last ``LAST_EVALUATIONS`` of them, ``auc`` the mean of all of them (the area under the
evaluation curve divided by its number of points). Each evaluation reports the objective so far
to the trial, and a trial the pruner stops ends there through training.hooks.StopTraining: the
trial is PRUNED, and its run directory's summary.json says ``stopped_early``. Multi-objective
studies (NSGA-II) return (objective, training wall-clock seconds) and are never pruned.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import optuna

from dqn_family.configs import Config, ConfigError, print_config
from dqn_family.configs.loading import Layer, config_layers, merge_layers
from dqn_family.fileio import require_real_folder, write_text_atomic
from dqn_family.training.hooks import StopTraining
from dqn_family.tuning.space import config_value
from dqn_family.tuning.study import TuneSettings, this_worker

LAST_EVALUATIONS = 3


def objective_value(kind: str, evaluation_means: list[float]) -> float:
    """The objective of a run's evaluation means so far (see the module docstring)."""
    if not evaluation_means:
        raise ConfigError("the trial made no periodic evaluation; set --eval-frequency below --total-steps")
    chosen = evaluation_means[-LAST_EVALUATIONS:] if kind == "mean-last" else evaluation_means
    return float(np.mean(chosen))


def too_few_evaluations(settings: TuneSettings) -> str | None:
    """A warning when the budget gives a trial fewer periodic evaluations than ``mean-last``
    averages (the objective is then the mean of fewer, and noisier); None when it does not."""
    config, _ = tuned_config(settings, {}, "fixed settings")
    evaluations = config.total_steps // config.eval_frequency
    if settings.objective != "mean-last" or evaluations >= LAST_EVALUATIONS:
        return None
    return (
        f"--total-steps {config.total_steps:,} with --eval-frequency {config.eval_frequency:,} gives each trial "
        f"{evaluations} periodic evaluation(s), and the objective mean-last is the mean of the last "
        f"{LAST_EVALUATIONS}: here it is the mean of {evaluations}; for {LAST_EVALUATIONS}, set --eval-frequency "
        f"to {config.total_steps // LAST_EVALUATIONS:,} or less"
    )


def tuned_layers(settings: TuneSettings, params: dict[str, Any], source: str) -> list[Layer]:
    """The config layers of a trial: train.py's (presets, --config, the fixed flags), then the
    sampled parameters (``source`` names them in print_config's comments)."""
    given = {**settings.overrides, "env_id": settings.env_id, "algo": settings.algo}
    values = {name: config_value(name, value) for name, value in params.items()}
    return [*config_layers(given, settings.config_file), Layer(source, values)]


def tuned_config(settings: TuneSettings, params: dict[str, Any], source: str) -> tuple[Config, dict[str, str]]:
    """The validated config of a trial's parameters (run_dir unset) and where each value came from."""
    merged, origins = merge_layers(tuned_layers(settings, params, source))
    return Config(**merged), origins


def config_file_text(settings: TuneSettings, params: dict[str, Any], number: int) -> str:
    """A trial's complete config as ``train.py --print-config`` writes it (``--config`` takes it)."""
    config, origins = tuned_config(settings, params, f"tuned: study {settings.study_name}, trial {number}")
    header = (
        f"# The config of trial {number} of study {settings.study_name} (tune.py); train it with: "
        f"python train.py --config THIS_FILE\n"
    )
    return header + print_config(config, origins)


class Objective:
    """``study.optimize``'s function: trains one trial and returns its value(s)."""

    def __init__(self, *, settings: TuneSettings) -> None:
        self.settings = settings

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        settings = self.settings
        trial.set_user_attr("worker", this_worker())
        params = {name: param.suggest(trial) for name, param in settings.space.items()}
        run_dir = settings.out / f"trial_{trial.number}"
        require_real_folder(run_dir, create=False)  # a link planted there would take the run elsewhere
        config, _ = tuned_config(settings, params, f"trial {trial.number}")
        # No progress bar in trials: tune.py prints a line per trial instead (--progress turns it on).
        config = dataclasses.replace(
            config, run_dir=str(run_dir), progress=bool(settings.overrides.get("progress", False))
        )
        trial.set_user_attr("run_dir", str(run_dir))
        means: list[float] = []

        def on_evaluation(step: int, mean: float) -> None:
            means.append(mean)
            if settings.multi_objective:
                return  # Optuna cannot prune multi-objective studies
            trial.report(objective_value(settings.objective, means), step)
            if trial.should_prune():
                raise StopTraining(
                    f"pruned by Optuna (study {settings.study_name}, trial {trial.number}) at env step {step:,}"
                )

        from dqn_family.train import train  # here: importing torch is for the workers, not the CLI's checks

        result = train(config, on_evaluation=on_evaluation)
        value = objective_value(settings.objective, means)
        state = "PRUNED" if result.stopped_early else "COMPLETE"
        _write_trial_file(run_dir, settings, trial.number, state, params, value, result.seconds, means)
        if result.stopped_early:
            raise optuna.TrialPruned(result.stopped_early)
        return (value, result.seconds) if settings.multi_objective else value


def _write_trial_file(
    run_dir,
    settings: TuneSettings,
    number: int,
    state: str,
    params: dict[str, Any],
    value: float,
    seconds: float,
    means: list[float],
) -> None:
    """trial.json in the run directory: which study and trial it was, how it ended, its parameters."""
    record = {
        "study": settings.study_name,
        "trial": number,
        "state": state,
        "pruned": state == "PRUNED",
        "objective": settings.objective,
        "value": value,
        "seconds": round(seconds, 3),
        "evaluation_means": means,
        "params": params,
    }
    write_text_atomic(run_dir / "trial.json", json.dumps(record, indent=2) + "\n")
