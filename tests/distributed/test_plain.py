"""distributed/ without Ray: the actor's stepping, the replay server and the learner's flow limits
against hand-worked numbers, and the learner loop run in-process (InlineWorkers)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time

import numpy as np
import pytest
import torch

from dqn_family.agents import RecurrentAgent, as_recurrent, input_parts, make_agent, replay_layout
from dqn_family.distributed.actor import ActorCore, SendData, actor_epsilon, apex_epsilon
from dqn_family.distributed.learner import (
    DistributedRun,
    Flow,
    InlineWorkers,
    Polled,
    epsilon_range,
    learner_loop,
    replay_ratio,
    replay_ratio_so_far,
)
from dqn_family.distributed.replay_server import ReplayServer
from dqn_family.replay import SequenceReplayBuffer
from dqn_family.training.run_dir import create_run_dir
from dqn_family.training.state import part_seeds, spaces_for
from tests.run_logs import read_scalars
from tests.scripted_envs import EPISODE_LENGTH, TERMINATE_SPEC


@pytest.mark.parametrize(
    "index, actors, expected",
    [(0, 1, 0.4), (0, 8, 0.4), (7, 8, 0.4**8), (1, 3, 0.4**4.5), (2, 3, 0.4**8)],
)
def test_apex_epsilon_is_the_papers_spread(index, actors, expected):
    assert apex_epsilon(index, actors) == pytest.approx(expected)


def test_actor_epsilon_anneals_to_each_actors_own_rate(tiny_config):
    config = tiny_config(actors=3, epsilon_start=1.0, epsilon_end=0.05, epsilon_decay_steps=100)
    assert actor_epsilon(config, 2, 0) == 1.0
    assert actor_epsilon(config, 2, 50) == pytest.approx(0.5 + 0.5 * 0.4**8)
    assert actor_epsilon(config, 1, 100) == pytest.approx(0.4**4.5)
    schedule = tiny_config(actors=3, actor_exploration="schedule", epsilon_decay_steps=100)
    assert actor_epsilon(schedule, 2, 100) == pytest.approx(0.05)


def test_actor_core_collect_skips_autoreset_steps_and_counts_real_ones(tiny_config):
    # 2 envs of 3-step episodes: per env the vector steps go t=1,2,3(end),reset,1,2,3,reset,...
    config = tiny_config(env_id=TERMINATE_SPEC, num_envs=2, send_steps=12)
    core = ActorCore(config, 0, env_seed=0)
    info, data = core.collect(0, -1, lambda: pytest.fail("no weights were published"))
    # 8 vector steps hold 6 real steps per env (two of the 8 are autoresets): 12 env steps, 4 episodes.
    assert (info.env_steps, info.transitions, len(info.episodes)) == (12, 12, 4)
    assert info.episodes == [(float(EPISODE_LENGTH), EPISODE_LENGTH)] * 4
    observations, next_observations = data.items["observations"], data.items["next_observations"]
    np.testing.assert_array_equal(next_observations[:, 0], observations[:, 0] + 1)  # never across a reset
    assert data.priorities is None  # uniform replay: no initial priorities computed


def test_actor_core_priorities_are_the_learners_td_errors(tiny_config):
    config = tiny_config(prioritized=True, send_steps=20)
    core = ActorCore(config, 0, env_seed=1)
    _, data = core.collect(0, -1, lambda: {})
    t = {name: torch.as_tensor(value) for name, value in data.items.items()}
    with torch.no_grad():
        q = core.agent.q_network(t["observations"]).gather(1, t["actions"][:, None]).squeeze(1)
        next_q = core.agent.target_network(t["next_observations"]).max(dim=1).values
    target = t["rewards"] + t["discounts"] * (1.0 - t["terminated"].float()) * next_q
    np.testing.assert_allclose(data.priorities, (target - q).abs().numpy(), rtol=1e-5)


def test_actor_core_fetches_weights_first_then_every_weight_sync_steps(tiny_config):
    config = tiny_config(send_steps=10, weight_sync_steps=25)
    core = ActorCore(config, 0, env_seed=0)
    weights = {
        "version": 7,
        "q_network": core.agent.q_network.state_dict(),
        "target_network": core.agent.target_network.state_dict(),
    }
    fetched = []

    def fetch():
        fetched.append(weights["version"])
        return weights

    versions = []
    for version in (7, 8, 9, 10, 11):
        weights["version"] = version
        versions.append(core.collect(0, version, fetch)[0].weights_version)
    # fetched at once (none yet), then after 30 >= 25 steps since: sends 1 and 4 act with new weights
    assert versions == [7, 7, 7, 10, 10]


def _transitions(start: int, count: int) -> dict[str, np.ndarray]:
    observations = np.arange(start, start + count, dtype=np.float32)[:, None].repeat(4, axis=1)
    return {
        "observations": observations,
        "actions": np.zeros(count, dtype=np.int64),
        "rewards": np.ones(count, dtype=np.float32),
        "next_observations": observations + 1,
        "terminated": np.zeros(count, dtype=bool),
        "truncated": np.zeros(count, dtype=bool),
        "discounts": np.full(count, 0.99, dtype=np.float32),
    }


def _server(tiny_config, **overrides) -> ReplayServer:
    config = tiny_config(prioritized=True, priority_alpha=1.0, priority_epsilon=1e-6, **overrides)
    return ReplayServer(config, observation_shape=(4,), observation_dtype=np.dtype(np.float32), seed=0)


def test_replay_server_gives_actor_priorities_and_acknowledges(tiny_config):
    server = _server(tiny_config, buffer_size=8, batch_size=2)
    assert server.add(SendData(_transitions(0, 3), np.array([1.0, 2.0, 3.0]))) == 3
    leaves = server.buffer.tree.get(np.arange(3))
    np.testing.assert_allclose(leaves, [1.0 + 1e-6, 2.0 + 1e-6, 3.0 + 1e-6])
    assert server.stats()["added"] == 3


def test_replay_server_drops_priorities_of_overwritten_slots(tiny_config):
    server = _server(tiny_config, buffer_size=4, batch_size=2)
    server.add(SendData(_transitions(0, 3), np.ones(3)))
    generations = server.generations[[0, 2]].copy()
    server.add(SendData(_transitions(3, 2), np.ones(2)))  # slots 3 and 0: slot 0's transition is gone
    applied = server.update_priorities(np.array([0, 2]), generations, np.array([5.0, 7.0]))
    assert applied == 1
    np.testing.assert_allclose(server.buffer.tree.get(np.array([0, 2])), [1.0 + 1e-6, 7.0 + 1e-6])


def test_flow_updates_allowed_follow_the_replay_ratio():
    flow = Flow(learning_starts=100, batch_size=32, replay_ratio=8.0, max_steps_in_flight=200)
    # after learning_starts, one update per batch_size / replay_ratio = 4 env steps, the first at once
    assert [flow.updates_allowed(e, 1_000) for e in (99, 100, 103, 104, 140)] == [0, 1, 1, 2, 11]
    assert flow.updates_allowed(140, 31) == 0  # not a batch stored yet


def test_flow_may_send_within_flight_and_ratio_limits():
    flow = Flow(learning_starts=100, batch_size=32, replay_ratio=8.0, max_steps_in_flight=200)
    assert flow.may_send(env_steps=0, in_flight=150, send=50, updates=0, stored=0)
    assert not flow.may_send(env_steps=0, in_flight=160, send=50, updates=0, stored=0)  # 210 in flight
    # 10 updates consumed 100 + 10 x 4 = 140 steps; sends may reach 140 + 200 = 340 env steps
    assert flow.may_send(env_steps=240, in_flight=50, send=50, updates=10, stored=240)
    assert not flow.may_send(env_steps=250, in_flight=50, send=50, updates=10, stored=250)


def test_replay_ratio_defaults_to_the_single_process_ratio(tiny_config):
    assert replay_ratio(tiny_config(batch_size=32, gradient_steps=2, train_frequency=4)) == 16.0
    assert replay_ratio(tiny_config(replay_ratio=3.5)) == 3.5


def _inline_run(config) -> DistributedRun:
    """A distributed run of ``config`` with its actors and replay in this process (dictionary
    observations too: one input per key, replay by key)."""
    agent_seed, buffer_seed, _ = part_seeds(config)
    cores = [ActorCore(config, i, env_seed=config.seed + i) for i in range(config.actors)]
    envs = cores[0].envs
    space = envs.single_observation_space
    parts = input_parts(space)
    shape, dtype = (space.shape, space.dtype) if parts is None else ((), None)
    cpu = torch.device("cpu")
    agent = make_agent(
        config, observation_shape=shape, n_actions=2, device=cpu, seed=agent_seed, observation_parts=parts
    )
    state_size = as_recurrent(agent.q_network).state_size if isinstance(agent, RecurrentAgent) else None
    server = ReplayServer(
        config,
        observation_shape=shape,
        observation_dtype=dtype,
        seed=buffer_seed,
        state_size=state_size,
        observation_parts=None if parts is None else replay_layout(parts),
    )
    return DistributedRun(
        config=config,
        run_dir=create_run_dir(config, torch.device("cpu")),
        device=torch.device("cpu"),
        agent=agent,
        workers=InlineWorkers(cores, server),
        env_seeds=np.random.default_rng(0),
        spaces=spaces_for(space, envs.single_action_space),
    )


def test_learner_loop_inline_writes_a_run_directory_at_the_replay_ratio(tiny_config):
    from torch.utils.tensorboard import SummaryWriter

    config = tiny_config(
        actors=2, total_steps=600, prioritized=True, eval_frequency=300, checkpoint_every=300, log_frequency=100
    )
    run = _inline_run(config)
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    # 2 actors x 50-step sends: exactly 600 env steps; every stored transition was acknowledged
    assert result.env_steps == 600 and run.workers.replay_stats()["added"] == 600
    # ratio 8 x 1 / 4 = 2: (600 - 50) x 2 / 8 + 1 updates, less those the last sends' steps had not allowed yet
    assert 120 <= result.updates <= 138
    names = {p.name for p in run.run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "model_latest.pt", "model_best.pt", "summary.json", "checkpoints"} <= names
    assert json.loads((run.run_dir / "summary.json").read_text())["env_steps"] == 600
    scalars = read_scalars(run.run_dir)
    for tag in (
        "distributed/env_steps_per_second",
        "distributed/replay_ratio",
        "distributed/weight_lag",
        "distributed/actor_0/env_steps_per_second",
        "distributed/actor_restarts",
        "eval/mean_return",
    ):
        assert tag in scalars, tag


def test_learner_loop_inline_trains_a_recurrent_network_from_actors_sequences(tiny_config):
    """R2D2 = the distributed loop with the recurrent acting part and the sequence adder: actors send
    sequences (with their start states), the replay stores and samples sequences, the learner
    updates on them."""
    from torch.utils.tensorboard import SummaryWriter

    config = tiny_config(
        env_id="envs.pomdp:CartPoleNoVelocity-v1",
        recurrent="gru",
        recurrent_size=8,
        sequence_length=8,
        sequence_overlap=4,
        burn_in=2,
        actors=2,
        total_steps=600,
        buffer_size=400,  # 50 sequences
        prioritized=True,
        checkpoint_every=300,
    )
    run = _inline_run(config)
    assert isinstance(run.agent, RecurrentAgent)
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    server = run.workers.server
    assert result.env_steps == 600 and result.updates > 0
    assert isinstance(server.buffer, SequenceReplayBuffer) and 0 < len(server.buffer) <= 50
    # every acknowledged item is a sequence of at most 8 steps, and each step emitted is in one: all
    # but the last steps of each actor's episode in progress (at most 8 each)
    assert server.stats()["added"] >= (600 - 2 * 8) // 8
    # the sequences start from the network's own initial state at an episode's start
    starts = server.buffer.arrays["states"][: len(server.buffer)]
    assert starts.shape[1] == 8 and np.isfinite(starts).all()


class LateAcknowledgements(InlineWorkers):
    """The replay's acknowledgements arrive one a poll, as Ray's may when several sends finish
    together: the learner learns of a run's last steps while settling before a checkpoint."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.held: list = []

    def pending(self, actor: int) -> int:
        return super().pending(actor) + sum(1 for ack in self.held if ack.info.actor == actor)

    def steps_in_flight(self) -> int:
        return super().steps_in_flight() + len(self.held) * self.send

    def poll(self, timeout: float) -> Polled:
        self.held.extend(super().poll(timeout).acks)
        arrived, self.held = self.held[:1], self.held[1:]
        return Polled(acks=arrived)

    def drain(self) -> Polled:
        held, self.held = self.held, []
        return Polled(acks=held)


def test_learner_loop_evaluates_at_the_end_when_settling_for_a_checkpoint_finishes_the_run(tiny_config):
    """Settling before a checkpoint counts the sends on their way; when they finish the run, the
    final evaluation still happens (it once did not: no model files, the run ended unevaluated)."""
    from torch.utils.tensorboard import SummaryWriter

    config = tiny_config(actors=2, total_steps=200, eval_frequency=200, checkpoint_every=100, send_steps=50)
    run = _inline_run(config)
    workers = run.workers
    run = dataclasses.replace(run, workers=LateAcknowledgements(workers.cores, workers.server))
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    assert result.env_steps == 200 and result.final_eval is not None
    assert (run.run_dir / "model_latest.pt").is_file() and (run.run_dir / "model_best.pt").is_file()


# --- bad input: one line, exit 2 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, message",
    [("--actors=-1", "actors must be >= 0"), ("--actors=1.5", "argument --actors: expected int, got '1.5'")],
)
def test_train_refuses_bad_actors_in_one_line(capsys, flag, message):
    from dqn_family import train

    try:
        code = train.main(["--env", "CartPole-v1", flag, "--total-steps", "10"])
    except SystemExit as exit:  # argparse's own errors exit from the parser
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_train_without_ray_names_the_extra(monkeypatch, tiny_config, capsys):
    import sys

    from dqn_family import train

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ModuleNotFoundError
    assert train.main(["--env", "CartPole-v1", "--actors", "2", "--total-steps", "10", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install -e '.[ray]'" in err and "\n" not in err


def test_unreachable_ray_address_is_one_line_in_seconds(monkeypatch):
    from dqn_family.configs import ConfigError
    from dqn_family.distributed import ray_session

    for name, value in ray_session.QUIET_ENV.items():
        monkeypatch.setenv(name, value)  # start_ray sets them; the test's environment gets them back
    with socket.socket() as listener:  # a port that refuses connections once this closes
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"--ray-address 127.0.0.1:{port}: nothing answers there"):
        ray_session.start_ray(address=f"127.0.0.1:{port}", num_cpus=1, what="--actors")
    assert time.monotonic() - started < ray_session.CONNECT_SECONDS + 1


def test_ray_address_where_something_else_listens_is_one_line_in_seconds(monkeypatch):
    """The review's case: a silent TCP listener at the address made Ray retry for minutes."""
    from dqn_family.configs import ConfigError
    from dqn_family.distributed import ray_session

    for name, value in ray_session.QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConfigError, match="something listens there, but it does not answer as a Ray server"):
            ray_session.start_ray(address=f"127.0.0.1:{port}", num_cpus=1, what="--actors")
    assert time.monotonic() - started < ray_session.CONNECT_SECONDS + 1


def test_more_actors_than_cpus_warns_with_the_numbers(monkeypatch, tiny_config, capsys):
    from dqn_family.distributed import run

    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    run._check_cpus(object(), tiny_config(actors=3))
    assert "warning: --actors 3 is more than the 2 CPUs of this machine" in capsys.readouterr().err
    run._check_cpus(object(), tiny_config(actors=2))
    assert capsys.readouterr().err == ""


def test_train_refuses_actors_beyond_memory_in_one_line_before_ray_starts(monkeypatch, capsys):
    from dqn_family import train
    from dqn_family.distributed import run

    def no_ray(**options):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(run, "available_memory", lambda: (10 * 10**9, "MemAvailable in /proc/meminfo"))
    monkeypatch.setattr(run, "start_ray", no_ray)
    code = train.main(["--env", "CartPole-v1", "--actors", "1000", "--total-steps", "10", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    # 1,001 processes x 300 MB = 300.3 GB; 10 GB holds 33 of them: 32 actors and the replay
    assert "--actors 1000 needs about 300.3 GB" in err and "use at most --actors 32 here" in err


def test_pythonpath_has_the_working_directory_only_where_it_is_importable(monkeypatch, tmp_path):
    from dqn_family.distributed import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run.sys, "path", [p for p in run.sys.path if p not in ("", str(tmp_path))])
    assert str(tmp_path) not in run._pythonpath().split(os.pathsep)
    monkeypatch.setattr(run.sys, "path", [*run.sys.path, str(tmp_path)])
    assert str(tmp_path) in run._pythonpath().split(os.pathsep)


# --- what the progress line says ---------------------------------------------------------------


def test_epsilon_range_shows_the_actors_spread():
    assert epsilon_range([0.4, 0.4]) == "0.40"
    assert epsilon_range([0.4, 0.02, 0.1]) == "0.02-0.40"


def test_replay_ratio_so_far_counts_from_learning_starts():
    # 100 updates of 64 transitions over the 1,000 env steps after learning_starts 200
    assert replay_ratio_so_far(100, 64, 1_200, 200) == 6.4
    assert replay_ratio_so_far(0, 64, 100, 200) == 0.0


@pytest.mark.parametrize("total_steps, expected", [(600, 600), (620, 650)])
def test_learner_loop_stops_at_total_steps_with_sends_in_flight(tiny_config, total_steps, expected):
    from torch.utils.tensorboard import SummaryWriter

    # 3 actors x 2 sends of 50 steps could be in flight: nothing starts past the budget, so a run
    # ends at it, or within the one send that crosses it
    config = tiny_config(actors=3, total_steps=total_steps, eval_frequency=0, checkpoint_every=0, log_frequency=100)
    run = _inline_run(config)
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    assert result.env_steps == expected


# --- resume ------------------------------------------------------------------------------------


def test_resume_ignores_the_recorded_ray_address(tiny_config, tmp_path, capsys):
    from dqn_family.checkpoints.resume import resume_config
    from dqn_family.configs.loading import save_config

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(tiny_config(actors=2, ray_address="ray://203.0.113.1:10001"), run_dir / "config.yaml")
    assert resume_config(run_dir, {}).ray_address is None  # a local Ray: the recorded address is not joined
    assert capsys.readouterr().err.splitlines() == [
        "note: this run was recorded with --ray-address 'ray://203.0.113.1:10001', which a resume does not join; "
        "it resumes on a local Ray instance (pass --ray-address again to join that cluster)"
    ]
    assert resume_config(run_dir, {"ray_address": "auto"}).ray_address == "auto"  # given again: joined


@pytest.mark.parametrize("recurrent", [False, True])
def test_learner_loop_inline_trains_on_dictionary_observations(tiny_config, recurrent):
    """Actors send dictionary observations (transitions: each key copied and concatenated key by key;
    R2D2 sequences: each key's [L + 1, *shape]) to a replay that keeps each key in its own dtype;
    the run directory evaluates like a single-process one."""
    from torch.utils.tensorboard import SummaryWriter

    from dqn_family import evaluate
    from tests.dict_envs import SPEC

    sequences = dict(recurrent="gru", recurrent_size=8, sequence_length=8, sequence_overlap=4, burn_in=2)
    config = tiny_config(
        env_id=SPEC, actors=2, total_steps=400, prioritized=True, eval_frequency=400, **(sequences if recurrent else {})
    )
    run = _inline_run(config)
    server = run.workers.server
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    assert result.env_steps == 400 and result.updates > 0
    stored = server.buffer.storage.observations
    assert (stored["image"].dtype, stored["cue"].dtype, stored["clock"].dtype) == (np.uint8, np.int64, np.float32)
    if not recurrent:  # every transition stored, each image with its one lit pixel: no parts mixed up on the way
        assert server.added == 400
        assert (stored["image"][:300].reshape(300, -1).sum(axis=1) == 1).all()
    assert evaluate.main([str(run.run_dir), "--episodes", "2"]) == 0
