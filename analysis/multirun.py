"""Training a grid of (env, algo, seed) trials at once, each as its own ``python -m dqn_family.train`` process
with its own run directory, on this machine (a thread per worker slot, each waiting on one child
process) or as Ray tasks (``ray``, the optional extra).

Every trial's config is resolved and validated here, before anything starts, and handed to
train.py as a complete YAML file, so a trial trains with exactly the config that was checked.
A trial that fails (an exception, a crash, a non-zero exit) is recorded and the others go on.
Each child writes its output, its periodic progress lines included, to ``ROOT/multirun/<trial>.log``;
the progress view reads the latest step from there.

However the parent stops (an exception, Ctrl-C, or SIGTERM, which ``multirun.py`` turns into an
exception), its children are stopped too: each gets SIGTERM, which makes train.py save a
checkpoint and exit, and SIGKILL if it has not exited ``STOP_SECONDS`` later. Each child runs in its own
session, so that a Ctrl-C in the terminal reaches it only once, through the parent.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from dqn_family.configs import config_to_dict, env_file_name, resolve_config
from dqn_family.configs.errors import ConfigError
from dqn_family.configs.trust import game_of
from dqn_family.envs import make_env, resolve_env_id
from dqn_family.fileio import one_line, open_for_writing, require_real_folder, write_text_atomic

# The checkout (the dqn_family package's folder): the children's working directory, and on their
# PYTHONPATH so that 'module:EnvId' names from the checkout (e.g. tests.*) import there too.
CODE_DIR = Path(__file__).resolve().parents[1]
GRID_FIELDS = ("env_id", "algo", "seed", "run_dir")
_PROGRESS = re.compile(rb"(\d+)/(\d+) \[")
STOP_SECONDS = 10.0  # how long a stopped trial may take to save its checkpoint before it is killed


@dataclass(frozen=True)
class Trial:
    """One training run of the grid: its resolved config and where its files go."""

    name: str  # <env>__<algo>__s<seed>, also its run directory's name
    run_dir: str
    log_path: str
    config_yaml: str  # the complete resolved config, given to train.py as --config
    total_steps: int


@dataclass(frozen=True)
class Outcome:
    name: str
    returncode: int
    seconds: float
    error: str  # the last line of the trial's output when it failed, else ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def plan_trials(
    *,
    env_ids: list[str],
    algos: list[str],
    seeds: list[int],
    root: Path,
    overrides: dict[str, Any],
    config_file: str | None,
) -> list[Trial]:
    """The grid's trials with validated configs; any invalid config or env id is a ConfigError."""
    from dqn_family.agents import AGENTS  # the registry, so a misspelt algo fails now rather than in every trial

    clash = sorted(set(overrides) & set(GRID_FIELDS))
    if clash:
        raise ConfigError(
            f"{', '.join(clash)} cannot be overridden per trial; set the grid with "
            "--envs/--algos/--seeds and the directories with --root"
        )
    for algo in algos:
        if algo not in AGENTS:
            raise ConfigError(f"algo must be one of {', '.join(AGENTS)}; got {algo!r}")
    for env_id in env_ids:
        check_env_id(env_id)
    root, trials = root.resolve(), []
    for env_id in env_ids:
        for algo in algos:
            for seed in seeds:
                name = f"{env_file_name(env_id)}__{algo}__s{seed}"
                config = resolve_config(
                    {**overrides, "env_id": env_id, "algo": algo, "seed": seed, "run_dir": str(root / name)},
                    config_file,
                )
                trials.append(
                    Trial(
                        name=name,
                        run_dir=str(root / name),
                        log_path=str(root / "multirun" / f"{name}.log"),
                        config_yaml=yaml.safe_dump(config_to_dict(config), sort_keys=False),
                        total_steps=config.total_steps,
                    )
                )
    if len({trial.name for trial in trials}) < len(trials):
        raise ConfigError("the grid lists the same env, algo or seed twice")
    return trials


def check_env_id(env_id: str) -> None:
    """Raise ConfigError unless ``env_id`` is registered (without building the env); a two-player
    game (``pettingzoo:<game>``, no Gymnasium id) is made once instead."""
    if game_of(env_id) is not None:
        make_env(env_id).close()  # a GameError names what is wrong: one line
        return
    try:
        gym.spec(resolve_env_id(env_id))
    except gym.error.Error as error:
        raise ConfigError(f"env {env_id!r} is not registered: {one_line(error)}") from None


def run_trial(
    trial: Trial, code_dir: str | None = None, on_start: Callable[[subprocess.Popen], None] | None = None
) -> Outcome:
    """Train one trial as a child process (``python -m dqn_family.train --config FILE`` in ``code_dir``,
    default the current directory) and wait for it; its output goes to ``trial.log_path``."""
    start = time.perf_counter()
    log_path = Path(trial.log_path)
    require_real_folder(log_path.parent)
    config_path = log_path.with_suffix(".yaml")
    write_text_atomic(config_path, trial.config_yaml)
    # The child's output is a log file, not a terminal: train.py writes a progress line every few
    # seconds instead of a bar (training.progress), unbuffered so the progress view sees it.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open_for_writing(log_path) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dqn_family.train", "--config", str(config_path)],
            cwd=code_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            if on_start is not None:
                on_start(process)
            returncode = process.wait()
        except BaseException:  # interrupted or cancelled: do not leave the child training
            stop_processes([process])
            raise
    error = "" if returncode == 0 else last_line(log_path) or f"exit code {returncode}"
    return Outcome(name=trial.name, returncode=returncode, seconds=time.perf_counter() - start, error=error)


def last_line(log_path: Path, tail_bytes: int = 8192) -> str:
    """The last non-blank line of a log that is not a progress bar (tqdm redraws its bar after a
    traceback; carriage returns count as line ends)."""
    lines = re.split(rb"[\r\n]+", _tail(log_path, tail_bytes))
    return next(
        (
            line.decode("utf-8", "replace").strip()
            for line in reversed(lines)
            if line.strip() and not _PROGRESS.search(line)
        ),
        "",
    )


def steps_done(log_path: Path, tail_bytes: int = 4096) -> int | None:
    """The env steps of the last progress bar update in a trial's log, if there is one yet."""
    matches = _PROGRESS.findall(_tail(log_path, tail_bytes))
    return int(matches[-1][0]) if matches else None


def _tail(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read()
    except OSError:
        return b""


def stop_processes(processes: list[subprocess.Popen], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM each running process, then SIGKILL those still running ``seconds`` later."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


Poll = Callable[[dict[str, Outcome]], None]  # called with the outcomes so far, about once a second


class _Children:
    """The child processes of run_local's worker threads; once stopping, a child that starts is
    stopped at once (a worker thread may start one while the main thread is stopping the rest)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.stopping = False
        self.lock = threading.Lock()

    def started(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.processes.append(process)
            if self.stopping:
                raise RuntimeError("multirun is stopping")  # run_trial stops the child

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            processes = list(self.processes)
        stop_processes(processes)


def run_local(trials: list[Trial], *, workers: int, poll: Poll) -> dict[str, Outcome]:
    """Run the trials here, ``workers`` at a time; return their outcomes by name. If this is
    interrupted, the children are stopped (see the module docstring) before the exception goes on."""
    children = _Children()
    outcomes: dict[str, Outcome] = {}
    executor = ThreadPoolExecutor(max_workers=workers)
    pending: dict[Future, Trial] = {
        executor.submit(run_trial, trial, str(CODE_DIR), children.started): trial for trial in trials
    }
    try:
        while pending:
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                trial = pending.pop(future)
                outcomes[trial.name] = _outcome_of(trial, future.result)
            poll(outcomes)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        children.stop()
        raise
    executor.shutdown()
    return outcomes


def run_ray(trials: list[Trial], *, workers: int, poll: Poll, address: str | None = None) -> dict[str, Outcome]:
    """Run the trials as Ray tasks of one CPU each: on a local Ray instance with ``workers`` CPUs
    (started here unless one is already running), or on the cluster at ``address``, where the
    code is shipped as the tasks' working directory. Progress is read from the trials' logs, so
    it shows while ``--root`` is on a file system the driver shares with the workers."""
    from dqn_family.distributed.ray_session import start_ray

    shipped = {"working_dir": str(CODE_DIR), "excludes": ["runs/", ".git/", "*.pt", "docs/"]}
    started = start_ray(
        address=address, num_cpus=workers, what="--backend ray", runtime_env=None if address is None else shipped
    )[1]
    import ray  # once start_ray has set Ray's environment

    if address is None:  # this machine: workers import analysis, and run train.py, from CODE_DIR
        pythonpath = os.pathsep.join(filter(None, [str(CODE_DIR), os.environ.get("PYTHONPATH")]))
        options: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}}}
        code_dir: str | None = str(CODE_DIR)
    else:  # a cluster: each node needs dqn-family installed; the task's working directory is the shipped checkout
        options, code_dir = {}, None
    remote_trial = ray.remote(num_cpus=1, max_retries=0, **options)(run_trial)
    pending: dict[ray.ObjectRef[Outcome], Trial] = {remote_trial.remote(trial, code_dir): trial for trial in trials}
    outcomes: dict[str, Outcome] = {}

    def result(ref: ray.ObjectRef[Outcome]) -> Outcome:  # ray.get for one ref (partial cannot pick its overload)
        return ray.get(ref)

    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1.0)
            for ref in done:
                trial = pending.pop(ref)
                outcomes[trial.name] = _outcome_of(trial, functools.partial(result, ref))
            poll(outcomes)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)  # raises KeyboardInterrupt in the task: run_trial stops its child
        ray.wait(list(pending), num_returns=len(pending), timeout=STOP_SECONDS + 5)  # before shutdown kills them
        raise
    finally:
        if started:
            ray.shutdown()
    return outcomes


def _outcome_of(trial: Trial, get: Callable[[], Outcome]) -> Outcome:
    """A trial's Outcome; an exception of the runner itself (not of train.py) becomes a failure."""
    try:
        return get()
    except Exception as error:  # e.g. a Ray worker that died: one trial fails, the others go on
        return Outcome(
            name=trial.name,
            returncode=-1,
            seconds=0.0,
            error=f"{type(error).__name__}: {one_line(error)}",
        )
