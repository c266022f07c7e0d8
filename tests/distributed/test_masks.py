"""distributed/ with action masks, without Ray: an actor acts with its envs' masks and sends the next
observations' masks (transitions) or each observation's (sequences), with its count of illegal
actions; the replay keeps them; the learner loop in-process logs charts/illegal_actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents import make_agent
from dqn_family.distributed.actor import ActorCore
from dqn_family.distributed.learner import DistributedRun, InlineWorkers, learner_loop
from dqn_family.distributed.replay_server import ReplayServer
from dqn_family.training.run_dir import create_run_dir
from dqn_family.training.state import part_seeds
from tests.masked_envs import EPISODE_LENGTH, INFO_SPEC, N_ACTIONS, TRUNCATE_SPEC, legal_at
from tests.run_logs import read_scalars


@pytest.mark.parametrize("prioritized", [False, True])
def test_actor_core_with_masks_sends_next_masks_and_takes_no_illegal_action(tiny_config, prioritized):
    config = tiny_config(env_id=TRUNCATE_SPEC, num_envs=2, n_step=2, send_steps=40, prioritized=prioritized)
    core = ActorCore(config, 0, env_seed=0)
    info, data = core.collect(0, -1, lambda: pytest.fail("no weights were published"))
    assert info.illegal_actions == 0 and info.episodes == [(float(EPISODE_LENGTH), EPISODE_LENGTH)] * 8
    t_next = data.items["next_observations"][:, 0].astype(int)
    np.testing.assert_array_equal(data.items["next_legal"], [legal_at(t) for t in t_next])
    assert prioritized == (data.priorities is not None)


def test_actor_core_with_masks_sends_sequences_with_a_mask_per_observation(tiny_config):
    config = tiny_config(
        env_id=INFO_SPEC, recurrent="gru", recurrent_size=8, sequence_length=4, sequence_overlap=2, burn_in=1
    )
    core = ActorCore(config, 0, env_seed=0)
    _, data = core.collect(0, -1, lambda: pytest.fail("no weights were published"))
    assert data.items
    for sequence in data.items:
        t = sequence.observations[: sequence.length + 1, 0].astype(int)
        expected = [legal_at(step) if step < EPISODE_LENGTH else np.zeros(N_ACTIONS, bool) for step in t]
        np.testing.assert_array_equal(sequence.legal[: sequence.length + 1], expected)


def test_learner_loop_inline_with_masks_stores_and_logs_them(tiny_config):
    from torch.utils.tensorboard import SummaryWriter

    config = tiny_config(env_id=INFO_SPEC, actors=2, total_steps=400, eval_frequency=400, log_frequency=100)
    agent_seed, buffer_seed, _ = part_seeds(config)
    cores = [ActorCore(config, i, env_seed=config.seed + i) for i in range(config.actors)]
    agent = make_agent(config, observation_shape=(2,), n_actions=N_ACTIONS, device=torch.device("cpu"), seed=agent_seed)
    server = ReplayServer(
        config, observation_shape=(2,), observation_dtype=np.dtype(np.float32), seed=buffer_seed, action_masks=4
    )
    run = DistributedRun(
        config=config,
        run_dir=create_run_dir(config, torch.device("cpu")),
        device=torch.device("cpu"),
        agent=agent,
        workers=InlineWorkers(cores, server),
        env_seeds=np.random.default_rng(0),
        spaces={"observation_shape": [2], "observation_dtype": "float32", "n_actions": N_ACTIONS},
    )
    with SummaryWriter(log_dir=str(run.run_dir)) as writer:
        result = learner_loop(run, writer, None, handle_signals=False)
    assert result.final_eval.returns == [float(EPISODE_LENGTH)] * config.eval_episodes
    assert server.buffer.next_legal_bits is not None and len(server.buffer) == 300  # buffer_size
    scalars = read_scalars(run.run_dir)
    assert {value for _, value in scalars["charts/episodic_return"]} == {float(EPISODE_LENGTH)}
    logged = [value for _, value in scalars["charts/illegal_actions"]]
    assert logged and set(logged) == {0.0}
