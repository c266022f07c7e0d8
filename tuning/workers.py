"""Running a study's trials: one worker runs trials until the study holds the requested number of
finished (COMPLETE or PRUNED) ones (``run_trials``); ``--workers N`` are N such workers sharing
the study's storage, as local processes (``run_local_workers``) or as Ray tasks
(``run_ray_workers``), each worker a ``python -m dqn_family.tune ... --worker`` process.

Before each trial a worker marks FAIL the trials whose worker is gone (tuning.study) and counts:
it starts a trial only while finished + running trials are fewer than wanted, so N workers
overshoot by at most N - 1 trials (when they count at the same moment). However the parent
stops (an exception, Ctrl-C, SIGTERM), its worker processes get SIGTERM, which fails their
running trial, and SIGKILL ``analysis.multirun.STOP_SECONDS`` later (analysis.multirun's rules).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from dqn_family.analysis.multirun import STOP_SECONDS, stop_processes
from dqn_family.configs import UserError
from dqn_family.fileio import one_line, short_repr
from dqn_family.fileio.atomic import RefusedPath
from dqn_family.tuning.objective import Objective
from dqn_family.tuning.study import (
    STORAGE_ENV,
    TuneSettings,
    count_trials,
    fail_dead_trials,
    open_storage,
    open_study,
    quiet_optuna,
)

WAIT_SECONDS = 2.0  # between counts while other workers' trials finish the study
MAX_FAILURES_IN_A_ROW = 5


def trial_line(trial: FrozenTrial) -> str:
    """One line about a trial that ended: its number, how it ended (COMPLETE, PRUNED at a step,
    FAIL and why), its value, how long it took, its parameters (each value bounded)."""
    params = ", ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={_printable(value, 40)}"
        for name, value in trial.params.items()
    )
    took = f", {trial.duration.total_seconds():.1f} s" if trial.duration is not None else ""
    if trial.state == TrialState.FAIL:
        error = trial.user_attrs.get("error", "see the log above")
        return f"trial {trial.number}: FAIL{took}: {_printable(error, 300)} ({params})"
    values = ", ".join(f"{value:.1f}" for value in trial.values or [])
    values = f"({values})" if len(trial.values or []) > 1 else values  # nsga2: (return, training seconds)
    at = f" at env step {trial.last_step:,}" if trial.state == TrialState.PRUNED and trial.last_step else ""
    return f"trial {trial.number}: {trial.state.name}{at}, value {values}{took} ({params})"


def _printable(value: object, limit: int) -> str:
    """A stored value as text, bounded, with control characters (terminal escapes) escaped."""
    if not isinstance(value, str):
        return short_repr(value, limit)
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in value[: limit + 1])
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _say(line: str) -> None:
    print(line, flush=True)  # a worker's stdout may be a pipe or a file: each line as it happens


class _ErrorNote:
    """Records a failing trial's error in its user attributes (a one-line reason for trial_line);
    keeps a refused path (a planted link or FIFO where the trial's run directory goes), which
    ends the study instead of failing trial after trial."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.refused: RefusedPath | None = None

    def __call__(self, trial: optuna.Trial):
        try:
            return self.objective(trial)
        except (optuna.TrialPruned, KeyboardInterrupt):
            raise
        except Exception as error:
            if isinstance(error, RefusedPath):
                self.refused = error
            trial.set_user_attr("error", f"{type(error).__name__}: {one_line(error)}")
            raise


def run_trials(
    settings: TuneSettings, *, say: Callable[[str], None] = _say, pruner: optuna.pruners.BasePruner | None = None
) -> int:
    """Run trials until the study holds ``settings.trials`` finished ones; return how many ran here.
    ``pruner`` replaces the one ``settings`` names (from Python, e.g. a test's)."""
    quiet_optuna()  # a line per trial comes from trial_line instead
    storage = open_storage(settings.storage_url)
    study = open_study(settings, storage, pruner)
    objective, ran, failures = _ErrorNote(Objective(settings=settings)), 0, 0
    last: list[FrozenTrial] = []  # the trial the last optimize() call ran

    def note_trial(_: optuna.Study, trial: FrozenTrial) -> None:
        last.append(trial)
        say(trial_line(trial))

    while True:
        for number in fail_dead_trials(study, storage):
            say(f"trial {number}: FAIL: its worker process ended while it ran (marked now)")
        finished, running = count_trials(study)
        if finished >= settings.trials:
            return ran
        if finished + running >= settings.trials:
            time.sleep(WAIT_SECONDS)  # the running trials may still finish the study, or fail
            continue
        last.clear()
        study.optimize(
            objective,
            n_trials=1,
            catch=(Exception,),
            callbacks=[note_trial],
        )
        ran += 1
        if objective.refused is not None:
            raise objective.refused
        failures = failures + 1 if last and last[0].state == TrialState.FAIL else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            raise UserError(
                f"{failures} trials in a row failed, the last with: "
                f"{last[0].user_attrs.get('error', 'an error')}; check the train flags and search space"
            )


def worker_command(argv: list[str]) -> list[str]:
    """The command of one worker process: tune.py's own arguments, run as a worker, without
    ``--storage`` (the worker reads the URL from ``STORAGE_ENV``: a command line is public)."""
    return [sys.executable, "-m", "dqn_family.tune", "--worker", *_without_storage(argv)]


def _without_storage(argv: list[str]) -> list[str]:
    """``argv`` less its --storage flag and value, written any way argparse reads them
    (``--storage URL``, ``--storage=URL``, an unambiguous prefix such as ``--stor``), before any lone '--'."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept: list[str] = []
    index = 0
    while index < len(argv):
        flag = argv[index].split("=", 1)[0]
        if index < end and len(flag) >= len("--sto") and "--storage".startswith(flag):
            index += 1 if "=" in argv[index] else 2
            continue
        kept.append(argv[index])
        index += 1
    return kept


def worker_environment(storage_url: str) -> dict[str, str]:
    return {**os.environ, STORAGE_ENV: storage_url}


def run_local_workers(argv: list[str], workers: int, storage_url: str) -> list[int]:
    """``workers`` worker processes on this machine; their exit codes once all have ended."""
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    worker_command(argv),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=worker_environment(storage_url),
                )
            )
        return [process.wait() for process in processes]
    except BaseException:
        stop_processes(processes)
        raise


def run_worker_process(argv: list[str], cwd: str, storage_url: str) -> int:
    """One worker process, waited for (the body of a Ray task); a cancelled task stops it."""
    process = subprocess.Popen(
        worker_command(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=worker_environment(storage_url),
    )
    try:
        return process.wait()
    except BaseException:
        stop_processes([process])
        raise


def run_ray_workers(argv: list[str], workers: int, storage_url: str) -> list[int]:
    """``workers`` worker processes as Ray tasks of one CPU each, on a local Ray instance with
    ``workers`` CPUs (distributed.ray_session: this machine only)."""
    from dqn_family.distributed.ray_session import start_ray

    ray, started = start_ray(address=None, num_cpus=workers, what="--backend ray")
    env_vars = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    remote = ray.remote(num_cpus=1, max_retries=0, runtime_env={"env_vars": env_vars})(run_worker_process)
    refs = [
        remote.remote(argv, os.getcwd(), storage_url) for _ in range(workers)
    ]  # a task's arguments, not a command line
    try:
        return ray.get(refs)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)  # raises KeyboardInterrupt in the task: run_worker_process stops its worker
        ray.wait(refs, num_returns=len(refs), timeout=STOP_SECONDS + 5)
        raise
    finally:
        if started:
            ray.shutdown()
