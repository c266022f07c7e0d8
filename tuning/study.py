"""A tuning study's settings and its Optuna study in a storage: the storage opened (SQLite by
default, any SQLAlchemy URL), the sampler and pruner chosen by name, the study created or found
again (and refused when it was made with other settings), and the trials whose worker is gone
marked FAIL, so that a study stopped by SIGKILL continues where it was.

A trial's worker is known two ways: its host, process id and process start time (recorded when
the trial starts, checked at once on the same host) and Optuna's heartbeat (every
``HEARTBEAT_SECONDS``; a trial silent for ``GRACE_SECONDS`` is failed from any host).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from dqn_family.configs import UserError
from dqn_family.fileio import kind_of_file, one_line, redact_credentials, require_writable_file
from dqn_family.fileio.atomic import RefusedPath

SAMPLERS = ("tpe", "cmaes", "nsga2", "random")
PRUNERS = ("median", "hyperband", "none")
OBJECTIVES = ("mean-last", "auc")
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
SQLITE_TIMEOUT_SECONDS = 60  # workers sharing one SQLite file wait this long for its lock
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The storage URL of tune.py's worker processes: in their environment, which other users cannot
# read, not on their command line, which ps shows to everyone (a URL may hold a password).
STORAGE_ENV = "DQN_TUNE_STORAGE"


@dataclass(frozen=True, kw_only=True)
class TuneSettings:
    """Everything a worker needs to run a study's trials (tune.py builds it from its flags)."""

    env_id: str
    algo: str
    trials: int  # finished (COMPLETE or PRUNED) trials the study should hold
    study_name: str
    storage_url: str
    out: Path
    sampler: str = "tpe"
    pruner: str = "median"
    objective: str = "mean-last"
    space: dict[str, Any] = field(default_factory=dict)  # tuning.space.SearchSpace
    overrides: dict[str, Any] = field(default_factory=dict)  # config fields fixed for every trial
    config_file: str | None = None

    @property
    def multi_objective(self) -> bool:
        return self.sampler == "nsga2"

    def recorded(self) -> dict[str, Any]:
        """What must stay the same for a study to be continued (stored as a study user attribute)."""
        from dqn_family.tuning.space import space_to_dict

        fixed = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self.overrides.items()
            if key != "track"  # where the scalars are also sent does not change a trial's result
        }
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "objective": self.objective,
            "multi_objective": self.multi_objective,
            "space": space_to_dict(self.space),
            "fixed": fixed,
            "config_file": self.config_file,
        }


def quiet_optuna() -> None:
    """Optuna's own log lines and experimental-feature warnings off: tune.py prints a line per trial."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def shown_url(url: str) -> str:
    """A storage URL with its password hidden (it is printed and written to logs)."""
    return redact_credentials(url)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite"):
        return None
    try:
        from sqlalchemy.engine import make_url

        database = make_url(url).database
    except Exception:  # open_storage says the URL cannot be opened
        return None
    return Path(database) if database and database != ":memory:" else None


def check_sqlite_file(url: str, *, in_study_folder: bool) -> None:
    """Refuse a SQLite database (or its journal) that is not a regular file, before SQLAlchemy opens
    it: a FIFO would hang and a device be written to. In the study's own folder (the default
    ``<out>/study.db``) a symlink is refused too (fileio.require_writable_file); a path the user named in
    ``--storage`` may be a link."""
    path = sqlite_file(url)
    if path is None:
        return
    for each in (path, *(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))):
        if in_study_folder:
            require_writable_file(each)
        elif kind_of_file(each) not in (None, "nothing"):
            raise RefusedPath(
                errno.EINVAL, f"is {kind_of_file(each)}, not a regular file; refusing to open it", str(each)
            )


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study storage at ``url``, with heartbeats; UserError if it cannot be opened."""
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if url.startswith("sqlite") else None
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
        )
    except Exception as error:  # SQLAlchemy's ArgumentError, OperationalError, a missing driver module, ...
        raise UserError(
            f"storage {shown_url(url)} cannot be opened: {redact_credentials(one_line(error, 200))}"
        ) from None


def make_sampler(name: str) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler()
    if name == "random":
        return optuna.samplers.RandomSampler()
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler()
    try:
        import cmaes  # noqa: F401  (CmaEsSampler needs it and fails late without it)
    except ModuleNotFoundError:
        raise UserError("--sampler cmaes needs the cmaes package; install it with: pip install -e '.[tune]'") from None
    # Categorical parameters are outside CMA-ES: they are sampled independently (at random).
    return optuna.samplers.CmaEsSampler(warn_independent_sampling=False)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def open_study(
    settings: TuneSettings, storage: optuna.storages.BaseStorage, pruner: optuna.pruners.BasePruner | None = None
) -> optuna.Study:
    """The study named in ``settings``, created if new; UserError if it exists with other settings."""
    directions: list[Literal["maximize", "minimize"]] = (
        ["maximize", "minimize"] if settings.multi_objective else ["maximize"]
    )
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        directions=directions,
        sampler=make_sampler(settings.sampler),
        pruner=pruner or make_pruner(settings.pruner),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != directions:
        raise UserError(
            f"study {settings.study_name!r} optimises {len(study.directions)} objective(s); it cannot "
            f"be continued with --sampler {settings.sampler}; choose another --study"
        )
    recorded, wanted = study.user_attrs.get("tune_settings"), settings.recorded()
    if recorded is None:
        study.set_user_attr("tune_settings", wanted)
    elif recorded != wanted:
        differ = ", ".join(key for key in wanted if recorded.get(key) != wanted[key])
        raise UserError(
            f"study {settings.study_name!r} was made with other settings ({differ} differ); continue it "
            "with the same env, algo, objective, search space and train flags, or choose another --study"
        )
    check_stored_trials(study, settings)
    return study


def check_stored_trials(study: optuna.Study, settings: TuneSettings) -> None:
    """UserError naming the first trial whose parameters the study's search space cannot have
    sampled (another name, e.g. ``network``; another range; a value outside it). Stored trials are
    untrusted input: they become best.yaml, the config tune.py tells the user to train."""
    from dqn_family.tuning.space import stored_params_problem

    for trial in study.get_trials(deepcopy=False):
        problem = stored_params_problem(settings.space, trial.params, trial.distributions)
        if problem:
            raise UserError(
                f"study {settings.study_name!r}: trial {trial.number} {problem}; tune.py makes no such trial with "
                "this search space (the study may come from someone else): choose another --study or --out"
            )


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return sum(state in FINISHED for state in states), states.count(TrialState.RUNNING)


# --- workers that are gone -----------------------------------------------------------------


def this_worker() -> dict[str, Any]:
    """This process, as recorded in each trial it runs (trial user attribute ``worker``)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), so that a reused pid is not
    taken for the recorded process; None where /proc is not there or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the command name


def _worker_alive(worker: Any) -> bool:
    """False when ``worker`` (a this_worker() record) ran on this host and its process is gone;
    True when it may still run (another host: its heartbeat decides)."""
    if (
        not isinstance(worker, dict)
        or worker.get("host") != socket.gethostname()
        or not isinstance(worker.get("pid"), int)
    ):
        return True
    if worker.get("started") is not None and Path("/proc").is_dir():
        return _process_start(worker["pid"]) == worker["started"]
    try:
        os.kill(worker["pid"], 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker is gone (killed, crashed); return their numbers.
    (Through the storage's public methods; ``storage`` is the one the study was opened with.)"""
    optuna.storages.fail_stale_trials(study)  # silent heartbeats, from any host
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _worker_alive(trial.user_attrs.get("worker")):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "error", "its worker process ended while it ran")
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):  # another worker was first
            continue
    return failed
