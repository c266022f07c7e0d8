"""--compile: the compiled loss gives the same updates as eager PyTorch (each learner class, with
double, dueling and noisy heads among them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import AGENTS, make_agent
from configs import Config
from replay import Batch


def _batch(seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(observations=rng.normal(size=(16, 4)).astype(np.float32), actions=rng.integers(0, 2, 16),
                 rewards=rng.normal(size=16).astype(np.float32),
                 next_observations=rng.normal(size=(16, 4)).astype(np.float32),
                 terminated=(rng.random(16) < 0.2).astype(np.float32), discounts=np.full(16, 0.99, np.float32),
                 indices=np.arange(16), weights=rng.uniform(0.5, 1.0, 16).astype(np.float32)).to_torch("cpu")


@pytest.mark.slow
@pytest.mark.parametrize("algo, options", [("dqn", {"double": True, "dueling": True}), ("c51", {"noisy": True}),
                                           ("qrdqn", {})])
def test_compiled_update_matches_eager_update(algo, options):
    assert {algo} <= AGENTS.keys()
    losses, parameters = {}, {}
    for compiled in (False, True):
        torch.manual_seed(0)
        config = Config(algo=algo, hidden_sizes=(8,), compile=compiled, num_atoms=11, num_quantiles=8,
                        v_min=-2.0, v_max=2.0, **options)
        agent = make_agent(config, observation_shape=(4,), n_actions=2, device=torch.device("cpu"), seed=0)
        losses[compiled] = [float(agent.update(_batch(step))["td_loss"]) for step in range(3)]
        parameters[compiled] = torch.cat([p.detach().flatten() for p in agent.q_network.parameters()])
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(parameters[True], parameters[False], rtol=1e-4, atol=1e-6)
