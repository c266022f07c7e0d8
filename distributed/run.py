"""Starting and resuming a distributed run: ``python train.py --env LunarLander-v3 --actors 4``
(train.py dispatches here when ``actors`` > 0). Ray is started locally with a CPU for each actor and
one for the replay, or joined at ``ray_address``; the learner is this process, on the best device.

The run directory is the one a single-process run writes (training.run_dir: config.yaml, meta.json,
TensorBoard events, model_latest.pt / model_best.pt, checkpoints/, summary.json), so evaluate.py,
aggregate.py, plot.py and ``--resume`` read it unchanged. Ray is imported here only, when a run
asks for actors: it is an optional extra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dqn_family.agents import DQNAgent, make_agent, resolve_device, set_torch_threads
from dqn_family.checkpoints import lock_run_dir, record_resume, stop_on_signals, wait_for_later_event_file_name
from dqn_family.configs import Config, ConfigError
from dqn_family.configs.errors import os_errors_in
from dqn_family.distributed.learner import DistributedRun, learner_loop
from dqn_family.envs import EnvOptions, action_count, make_env, observation_layout, observation_states
from dqn_family.fileio import one_line
from dqn_family.training.hooks import EvaluationCallback
from dqn_family.training.run_dir import config_table, create_run_dir
from dqn_family.training.state import TrainResult, checked, part_seeds, restore
from dqn_family.training.tracking import check_available as check_tracker_available
from dqn_family.training.tracking import open_writer

if TYPE_CHECKING:
    from dqn_family.distributed.ray_workers import RayWorkers

PACKAGE_PARENT = Path(__file__).parents[2]  # the folder dqn_family was imported from (a checkout's PYTHONPATH entry)


def train_distributed(
    config: Config, *, handle_signals: bool = False, on_evaluation: EvaluationCallback | None = None
) -> TrainResult:
    """Train from ``config`` with ``config.actors`` Ray actors (see train.train for the arguments)."""
    check_tracker_available(config.track)
    with ray_session(config) as workers_options:
        run, workers = _build(config, workers_options)
        try:
            with stop_on_signals(handle_signals):
                run_dir = create_run_dir(config, run.device)
                run = dataclasses.replace(run, run_dir=run_dir)
                with os_errors_in(run_dir), lock_run_dir(run_dir), open_writer(config, run_dir) as writer:
                    writer.add_text("hyperparameters", config_table(dataclasses.replace(config, run_dir=str(run_dir))))
                    workers.start_actors(config.seed)  # actor 0's envs are seeded as a single-process run's
                    return learner_loop(run, writer, None, handle_signals, on_evaluation)
        finally:
            workers.close()


def resume_distributed(
    run_dir: Path, config: Config, checkpoint_path: Path, payload: dict[str, Any], *, handle_signals: bool = False
) -> TrainResult:
    """Continue a distributed run from a loaded checkpoint (train.resume has checked that it is this
    run's and holds its lock): the replay's contents go back into the replay actor; the actors start
    fresh episodes, seeded from the checkpoint's env-seed generator, as a single-process resume does."""
    check_tracker_available(config.track)
    with ray_session(config) as workers_options:
        run, workers = _build(config, workers_options, run_dir=run_dir)
        try:
            resumed = checked(checkpoint_path, restore, run, payload)
            record_resume(run_dir, env_step=payload["env_step"], device=str(run.device))
            wait_for_later_event_file_name(run_dir)
            workers.start_actors(int(run.env_seeds.integers(2**31)))
            with open_writer(config, run_dir, purge_step=payload["env_step"] + 1) as writer:
                return learner_loop(run, writer, resumed, handle_signals)
        finally:
            workers.close()


def _build(
    config: Config, workers_options: dict[str, Any], run_dir: Path | None = None
) -> tuple[DistributedRun, RayWorkers]:
    """The learner's agent (seeded as a single-process run seeds its own), and the replay actor."""
    from dqn_family.distributed.ray_workers import RayWorkers, start_replay

    device = resolve_device(config.device)
    set_torch_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    agent_seed, buffer_seed, env_seed = part_seeds(config)
    env = make_env(config.env_id, options=EnvOptions.of(config))
    try:
        space = env.observation_space
        observation_shape, observation_dtype = observation_layout(space)
        n_actions = action_count(env.action_space)
    finally:
        env.close()
    agent = make_agent(
        config,
        observation_shape=observation_shape,
        n_actions=n_actions,
        device=device,
        seed=agent_seed,
        observation_states=observation_states(space),
    )
    replay = start_replay(
        config,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        seed=buffer_seed,
        options=workers_options,
    )
    spaces = {
        "observation_shape": list(observation_shape),
        "observation_dtype": str(observation_dtype),
        "n_actions": n_actions,
    }
    workers = RayWorkers(config, replay, workers_options)
    assert isinstance(agent, DQNAgent)  # Config refuses recurrent networks with actors
    run = DistributedRun(
        config=config,
        run_dir=run_dir if run_dir is not None else Path("."),  # the run directory is made once all is built
        device=device,
        agent=agent,
        workers=workers,
        env_seeds=np.random.default_rng(env_seed),
        spaces=spaces,
    )
    return run, workers


# --- Ray ---------------------------------------------------------------------------------------------


def require_ray() -> Any:
    """The ray module, or a ConfigError naming the extra to install."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError(
            "--actors needs ray, which is not installed; install the ray extra: pip install -e '.[ray]'"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(config: Config) -> Iterator[dict[str, Any]]:
    """Ray, started here (and shut down after) unless this process already joined it; yields the
    options the run's Ray actors need (none so far). On this machine, Ray's processes inherit a
    PYTHONPATH that finds dqn_family and the working directory's modules (a 'module:EnvId'): set
    before Ray starts, so that its pre-started workers serve the actors (a runtime_env of their own
    would make Ray start new ones, seconds each); on a cluster, every node needs dqn-family installed."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        _init(ray, config)
    try:
        _check_cpus(ray, config)
        yield {}
    finally:
        if started:
            ray.shutdown()


def _init(ray: Any, config: Config) -> None:
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if config.ray_address is None:
        os.environ["PYTHONPATH"] = _pythonpath()
        ray.init(num_cpus=config.actors + 1, include_dashboard=False, **quiet)
        return
    try:
        ray.init(address=config.ray_address, **quiet)
    except Exception as error:  # Ray reports an unreachable cluster as ConnectionError, RuntimeError or ValueError
        reason = one_line(error)[:200]
        raise ConfigError(f"cannot join the Ray cluster at --ray-address {config.ray_address}: {reason}") from None


def _check_cpus(ray: Any, config: Config) -> None:
    """More actors than CPUs: a warning on this machine (they share cores), an error on a cluster
    (an actor that finds no CPU would wait for one forever)."""
    if config.ray_address is None:
        cpus = os.cpu_count() or 1
        if config.actors > cpus:
            print(
                f"warning: {config.actors} actors on {cpus} CPUs (plus the learner and the replay): "
                "they share cores, so env steps per second will not grow with --actors",
                file=sys.stderr,
            )
        return
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if config.actors + 1 > cpus:
        raise ConfigError(
            f"--actors {config.actors} needs {config.actors + 1} CPUs on the Ray cluster (one per actor, one for "
            f"the replay), but it has {cpus}; lower --actors or add nodes"
        )


def _pythonpath() -> str:
    parts = [str(PACKAGE_PARENT)] if (PACKAGE_PARENT / "dqn_family").exists() else []
    parts += [os.getcwd(), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(part for part in parts if part)
