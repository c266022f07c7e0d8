"""Starting and resuming a distributed run: ``python train.py --env LunarLander-v3 --actors 4``
(train.py dispatches here when ``actors`` > 0). Ray is started locally with a CPU for each actor and
one for the replay, or joined at ``ray_address``; the learner is this process, on the best device.

The run directory is the one a single-process run writes (training.run_dir: config.yaml, meta.json,
TensorBoard events, model_latest.pt / model_best.pt, checkpoints/, summary.json), so evaluate.py,
aggregate.py, plot.py and ``--resume`` read it unchanged. Ray is started or joined by
distributed.ray_session, only when a run asks for actors: it is an optional extra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dqn_family.agents import (
    RecurrentAgent,
    as_recurrent,
    check_multi_input_config,
    input_parts,
    make_agent,
    replay_layout,
    resolve_device,
    set_torch_threads,
)
from dqn_family.checkpoints import lock_run_dir, record_resume, stop_on_signals, wait_for_later_event_file_name
from dqn_family.configs import Config, ConfigError
from dqn_family.configs.errors import os_errors_in
from dqn_family.configs.trust import cwd_importable
from dqn_family.distributed.learner import DistributedRun, learner_loop
from dqn_family.distributed.ray_session import start_ray
from dqn_family.envs import EnvOptions, action_count, make_env, masks_of, observation_layout, observation_states
from dqn_family.replay.memory import available_memory
from dqn_family.training.hooks import EvaluationCallback
from dqn_family.training.run_dir import config_table, create_run_dir
from dqn_family.training.state import TrainResult, checked, part_seeds, restore, spaces_for
from dqn_family.training.tracking import check_available as check_tracker_available
from dqn_family.training.tracking import open_writer

if TYPE_CHECKING:
    from dqn_family.distributed.ray_workers import RayWorkers

# Memory one more actor process costs: each ray::RayActorCore of `train.py --env CartPole-v1 --actors 2`
# held 400 MiB resident, 267 MiB of it its own (psutil's memory_full_info: rss, uss; the rest is shared
# libraries), on Linux with torch 2 on the CPU. The replay's process costs as much before its buffer.
ACTOR_BYTES = 300 * 10**6
PACKAGE_PARENT = Path(__file__).parents[2]  # the folder dqn_family was imported from (a checkout's PYTHONPATH entry)


def train_distributed(
    config: Config, *, handle_signals: bool = False, on_evaluation: EvaluationCallback | None = None
) -> TrainResult:
    """Train from ``config`` with ``config.actors`` Ray actors (see train.train for the arguments)."""
    refuse_dictionary_observations(config)
    check_tracker_available(config.track)
    with ray_session(config) as workers_options:
        run, workers = _build(config, workers_options)
        try:
            with stop_on_signals(handle_signals) as stop:
                run_dir = create_run_dir(config, run.device)
                run = dataclasses.replace(run, run_dir=run_dir)
                with os_errors_in(run_dir), lock_run_dir(run_dir), open_writer(config, run_dir) as writer:
                    writer.add_text("hyperparameters", config_table(dataclasses.replace(config, run_dir=str(run_dir))))
                    # actor 0's envs are seeded as a single-process run's; a signal meanwhile stops the run at step 0
                    workers.start_actors(config.seed, lambda: stop.signal is not None)
                    return learner_loop(run, writer, None, handle_signals, on_evaluation)
        finally:
            workers.close()


def refuse_dictionary_observations(config: Config) -> None:
    """ConfigError, before Ray starts, for an env with dictionary observations and an option they do
    not take (agents.check_multi_input_config names what to change)."""
    env = make_env(config.env_id, options=EnvOptions.of(config))
    try:
        parts = input_parts(env.observation_space)
    finally:
        env.close()
    if parts is not None:
        check_multi_input_config(config, config.network is not None, list(parts))


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
            with stop_on_signals(handle_signals) as stop:
                workers.start_actors(int(run.env_seeds.integers(2**31)), lambda: stop.signal is not None)
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
        parts = input_parts(space)  # dictionary observations: one input per key
        observation_shape, observation_dtype = observation_layout(space) if parts is None else ((), None)
        n_actions = action_count(env.action_space)
        masks = masks_of(env, config.action_mask, config.env_id)  # the actors decide alike (envs.action_masks)
        spaces = spaces_for(space, env.action_space)
    finally:
        env.close()
    agent = make_agent(
        config,
        observation_shape=observation_shape,
        n_actions=n_actions,
        device=device,
        seed=agent_seed,
        observation_states=observation_states(space),
        observation_parts=parts,
    )
    replay = start_replay(
        config,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        seed=buffer_seed,
        options=workers_options,
        state_size=as_recurrent(agent.q_network).state_size if isinstance(agent, RecurrentAgent) else None,
        action_masks=masks,
        observation_parts=None if parts is None else replay_layout(parts),
    )
    workers = RayWorkers(config, replay, workers_options)
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


@contextlib.contextmanager
def ray_session(config: Config) -> Iterator[dict[str, Any]]:
    """Ray, started here (and shut down after) unless this process already joined it
    (distributed.ray_session); yields the options the run's Ray actors need (none so far). On this
    machine, Ray's processes inherit a PYTHONPATH that finds dqn_family and, where the command line
    made it importable, the working directory's modules (a 'module:EnvId'): set before Ray starts,
    so that its pre-started workers serve the actors (a runtime_env of their own would make Ray start
    new ones, seconds each); on a cluster, every node needs dqn-family installed."""
    check_actor_memory(config)
    if config.ray_address is None:
        os.environ["PYTHONPATH"] = _pythonpath()
    ray, started = start_ray(address=config.ray_address, num_cpus=config.actors + 1, what="--actors")
    try:
        _check_cpus(ray, config)
        yield {}
    finally:
        if started:
            ray.shutdown()


def check_actor_memory(config: Config) -> None:
    """On this machine, the actors and the replay's process must fit in the memory left (the
    replay's buffer is checked on its own, once its size is known): a ConfigError before Ray starts."""
    if config.ray_address is not None:
        return  # the cluster's memory, which Ray's own scheduler accounts for
    found = available_memory()
    needed = (config.actors + 1) * ACTOR_BYTES
    if found is not None and needed > found[0]:
        most = max(found[0] // ACTOR_BYTES - 1, 0)
        raise ConfigError(
            f"--actors {config.actors} needs about {needed / 1e9:.1f} GB ({ACTOR_BYTES / 1e6:.0f} MB per actor "
            f"process, and one more for the replay) but only {found[0] / 1e9:.1f} GB is available "
            f"({found[1]}); use at most --actors {most} here, or join a cluster with --ray-address"
        )


def _check_cpus(ray: Any, config: Config) -> None:
    """More actors than CPUs: a warning on this machine (they share cores), an error on a cluster
    (an actor that finds no CPU would wait for one forever)."""
    if config.ray_address is None:
        cpus = os.cpu_count() or 1
        if config.actors > cpus:
            print(
                f"warning: --actors {config.actors} is more than the {cpus} CPUs of this machine: the actors, the "
                f"replay and the learner share them, so env steps per second will not grow with --actors here",
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
    """PYTHONPATH for Ray's workers: the checkout dqn_family comes from, and the working directory
    only where the command line put it on this process's import path (configs.trust's rule)."""
    parts = [str(PACKAGE_PARENT)] if (PACKAGE_PARENT / "dqn_family").exists() else []
    if cwd_importable():
        parts.append(os.getcwd())
    parts.append(os.environ.get("PYTHONPATH", ""))
    return os.pathsep.join(part for part in parts if part)
