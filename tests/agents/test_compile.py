"""--compile: the whole gradient step compiled as one graph (agents/compiled.py) gives the same
updates as eager PyTorch, for each learner class (double, dueling and noisy heads among them), with
gradient clipping engaged, under a changing learning rate, and with Adam's state interchangeable
with eager runs (checkpoints resume either way), and on dictionary observations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dqn_family.agents import AGENTS, input_parts, make_agent
from dqn_family.configs import Config
from dqn_family.replay import Batch
from tests.dict_envs import IMAGE_SHAPE, CueImageEnv

pytestmark = pytest.mark.slow  # each case compiles a graph (seconds)


def _batch(seed: int, reward_scale: float = 1.0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        observations=rng.normal(size=(16, 4)).astype(np.float32),
        actions=rng.integers(0, 2, 16),
        rewards=(reward_scale * rng.normal(size=16)).astype(np.float32),
        next_observations=rng.normal(size=(16, 4)).astype(np.float32),
        terminated=(rng.random(16) < 0.2).astype(np.float32),
        discounts=np.full(16, 0.99, np.float32),
        indices=np.arange(16),
        weights=rng.uniform(0.5, 1.0, 16).astype(np.float32),
    ).to_torch("cpu")


def _agent(compiled: bool, algo: str = "dqn", **options):
    torch.manual_seed(0)
    config = Config(
        algo=algo, hidden_sizes=(8,), compile=compiled, num_atoms=11, num_quantiles=8, v_min=-2.0, v_max=2.0, **options
    )
    return make_agent(config, observation_shape=(4,), n_actions=2, device=torch.device("cpu"), seed=0)


def _parameters(agent) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in agent.q_network.parameters()])


@pytest.mark.parametrize(
    "algo, options", [("dqn", {"double": True, "dueling": True}), ("c51", {"noisy": True}), ("qrdqn", {})]
)
def test_compiled_update_matches_eager_update(algo, options):
    assert {algo} <= AGENTS.keys()
    losses, parameters = {}, {}
    for compiled in (False, True):
        agent = _agent(compiled, algo, **options)
        losses[compiled] = [float(agent.update(_batch(step))["td_loss"]) for step in range(3)]
        parameters[compiled] = _parameters(agent)
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(parameters[True], parameters[False], rtol=1e-4, atol=1e-6)


def test_compiled_update_clips_gradients_as_eager_does():
    """Rewards of ~1,000 make the gradient norm far larger than max_grad_norm 0.5: clipping acts."""
    parameters, priorities = {}, {}
    for compiled in (False, True):
        agent = _agent(compiled, max_grad_norm=0.5, loss="mse")
        for step in range(3):
            priorities[compiled] = agent.update(_batch(step, reward_scale=1000.0))["priorities"]
        parameters[compiled] = _parameters(agent)
    unclipped = _agent(False, max_grad_norm=None, loss="mse")
    for step in range(3):
        unclipped.update(_batch(step, reward_scale=1000.0))
    assert not torch.allclose(_parameters(unclipped), parameters[False], rtol=1e-3)  # clipping changed the step
    torch.testing.assert_close(parameters[True], parameters[False], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(priorities[True], priorities[False], rtol=1e-4, atol=1e-3)


def test_compiled_update_follows_learning_rate_changes():
    parameters = {}
    for compiled in (False, True):
        agent = _agent(compiled)
        for step, learning_rate in enumerate((1e-2, 3e-3, 0.0, 1e-3)):
            agent.set_learning_rate(learning_rate)
            before = _parameters(agent)
            agent.update(_batch(step))
            if learning_rate == 0.0:  # Adam's step is proportional to the learning rate
                torch.testing.assert_close(_parameters(agent), before, rtol=0, atol=0)
        parameters[compiled] = _parameters(agent)
    torch.testing.assert_close(parameters[True], parameters[False], rtol=1e-4, atol=1e-6)


def test_adam_state_moves_between_compiled_and_eager_agents():
    """A checkpoint from a compiled run resumes in an eager one (and back) as if never switched."""
    reference = _agent(False)
    for step in range(4):
        reference.update(_batch(step))
    compiled = _agent(True)
    for step in range(2):
        compiled.update(_batch(step))
    eager = _agent(False)
    eager.load_state_dict(compiled.state_dict())
    assert int(eager.optimizer.state_dict()["state"][0]["step"]) == 2
    eager.update(_batch(2))
    recompiled = _agent(True)
    recompiled.load_state_dict(eager.state_dict())
    recompiled.update(_batch(3))
    torch.testing.assert_close(_parameters(recompiled), _parameters(reference), rtol=1e-4, atol=1e-6)


def test_compiled_bf16_update_matches_eager_bf16_update():
    """Autocast traced into the compiled graph: the same bf16 roundings as eager, to float32 noise."""
    losses = {}
    for compiled in (False, True):
        agent = _agent(compiled, "c51", precision="bf16")
        losses[compiled] = [float(agent.update(_batch(step))["td_loss"]) for step in range(3)]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-3)


@pytest.mark.parametrize("algo, options", [("dqn", {"double": True}), ("qrdqn", {})])
def test_compiled_update_with_action_masks_matches_eager_update(algo, options):
    """The next states' masks traced into the graph: one legal action per row, none in some."""
    legal = np.random.default_rng(9).random((16, 2)) < 0.5
    legal[:, 0] = ~legal[:, 1]
    legal[:3] = False  # no legal action: read as all legal by the target (agents/masks.py)

    def masked(step: int) -> Batch:
        return dataclasses.replace(_batch(step), next_legal=torch.as_tensor(legal))

    losses = {}
    for compiled in (False, True):
        agent = _agent(compiled, algo, **options)
        losses[compiled] = [float(agent.update(masked(step))["td_loss"]) for step in range(3)]
    unmasked = _agent(False, algo, **options)
    assert [float(unmasked.update(_batch(step))["td_loss"]) for step in range(3)] != losses[False]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4, atol=1e-6)


def test_many_compiled_agents_in_one_process_stay_under_torchs_recompile_limit():
    """Agents made one after another in one process (in-process tuning trials, a test session) each
    compile the same update: more of them than torch's recompile limit still update (the limit is
    lowered to 2 here, from 8, to keep the test short)."""
    with torch._dynamo.config.patch(recompile_limit=2):
        for width in range(4):
            torch.manual_seed(width)
            config = Config(hidden_sizes=(4 + width,), compile=True)
            agent = make_agent(config, observation_shape=(4,), n_actions=2, device=torch.device("cpu"), seed=width)
            assert torch.isfinite(agent.update(_batch(width))["td_loss"])


def test_compiled_update_on_dict_batches_matches_eager_update():
    rng = np.random.default_rng(0)

    def batch(step: int) -> Batch:
        def observations() -> dict[str, np.ndarray]:
            return {
                "clock": rng.random((16, 2)).astype(np.float32),
                "cue": rng.integers(0, 2, 16),
                "image": (rng.random((16, *IMAGE_SHAPE)) < 0.1).astype(np.uint8),
            }

        return Batch(
            observations=observations(),
            actions=rng.integers(0, 2, 16),
            rewards=rng.random(16).astype(np.float32),
            next_observations=observations(),
            terminated=np.zeros(16, np.float32),
            discounts=np.full(16, 0.9, np.float32),
            indices=np.arange(16),
            weights=np.ones(16, np.float32),
        ).to_torch("cpu")

    parts = input_parts(CueImageEnv().observation_space)
    batches = [batch(step) for step in range(3)]
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        config = Config(algo="dqn", double=True, dueling=True, hidden_sizes=(8,), compile=compiled)
        agent = make_agent(
            config, observation_shape=(), n_actions=2, device=torch.device("cpu"), seed=0, observation_parts=parts
        )
        losses[compiled] = [float(agent.update(b)["td_loss"]) for b in batches]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4, atol=1e-6)
    assert np.isfinite(losses[True]).all()  # assert_allclose takes NaN as equal to NaN
