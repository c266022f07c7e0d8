"""Mixed precision (agents/precision.py): a bf16 update matches the float32 one within what bf16's
rounding allows, for each learner; weights and Adam's state stay float32; fp16 scales its loss and
keeps the scaler's state in checkpoints; the options that cannot combine are refused.

Tolerances, worked out from bf16's format: 8 significant bits, so each rounding of an input,
weight or activation is off by at most 2**-9 (0.2%) of its value. A forward through the 2 hidden
layers and the head rounds ~6 times, so the loss may be off by ~1% (quadratic in the error for
the Huber/MSE terms: ~2%); backward rounds as many times again on the way down, so the gradient,
as a whole vector, may be off by ~2-4%. Tested: loss within rtol 2e-2, gradient within a relative
L2 error of 5e-2 (measured here: loss 1e-4 to 2e-4, gradient 0.7% to 1.6%). fp16 has 11
significant bits, 4x finer (measured: gradient 0.04%); tested at rtol 2e-3 / 1e-2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents import make_agent
from dqn_family.configs import Config, ConfigError
from dqn_family.replay import Batch


def _batch(seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        observations=rng.normal(size=(32, 4)).astype(np.float32),
        actions=rng.integers(0, 3, 32),
        rewards=rng.normal(size=32).astype(np.float32),
        next_observations=rng.normal(size=(32, 4)).astype(np.float32),
        terminated=(rng.random(32) < 0.2).astype(np.float32),
        discounts=np.full(32, 0.99, np.float32),
        indices=np.arange(32),
        weights=None,
    ).to_torch("cpu")


def _agent(algo: str, precision: str, **options):
    torch.manual_seed(0)
    config = Config(
        algo=algo,
        hidden_sizes=(64, 64),
        precision=precision,
        num_atoms=11,
        num_quantiles=8,
        v_min=-2.0,
        v_max=2.0,
        **options,
    )
    return make_agent(config, observation_shape=(4,), n_actions=3, device=torch.device("cpu"), seed=0)


def _update(algo: str, precision: str) -> tuple[float, torch.Tensor, object]:
    """(loss, gradient vector, agent) after one update on the same batch from the same weights."""
    agent = _agent(algo, precision)
    loss = float(agent.update(_batch())["td_loss"])
    return loss, torch.cat([p.grad.flatten() for p in agent.q_network.parameters()]), agent


@pytest.mark.parametrize("algo", ["dqn", "c51", "qrdqn"])
@pytest.mark.parametrize("precision, loss_rtol, grad_rtol", [("bf16", 2e-2, 5e-2), ("fp16", 2e-3, 1e-2)])
def test_low_precision_update_matches_fp32_within_rounding(algo, precision, loss_rtol, grad_rtol):
    loss32, grad32, _ = _update(algo, "fp32")
    loss, grad, agent = _update(algo, precision)
    assert loss == pytest.approx(loss32, rel=loss_rtol)
    assert float((grad - grad32).norm() / grad32.norm()) < grad_rtol
    assert grad.dtype == torch.float32  # master weights' gradients
    assert loss != loss32  # the low precision was used at all


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_keeps_weights_and_adam_state_float32(precision):
    _, _, agent = _update("c51", precision)
    assert {p.dtype for p in agent.q_network.parameters()} == {torch.float32}
    moments = [t for state in agent.optimizer.state.values() for k, t in state.items() if k != "step"]
    assert moments and {t.dtype for t in moments} == {torch.float32}


def test_fp16_checkpoint_round_trips_the_gradient_scale():
    agent = _agent("dqn", "fp16")
    agent.update(_batch())
    agent.grad_scaler.update(new_scale=1024.0)
    state = agent.state_dict()
    assert state["grad_scaler"]["scale"] == 1024.0
    fresh = _agent("dqn", "fp16")
    fresh.load_state_dict(state)
    assert fresh.grad_scaler.get_scale() == 1024.0


def test_switching_precision_loads_the_other_precisions_state():
    """fp32 -> fp16 starts a fresh scaler (2**16); fp16 -> bf16 ignores the saved one."""
    fp16 = _agent("dqn", "fp16")
    fp16.load_state_dict(_agent("dqn", "fp32").state_dict())
    assert fp16.grad_scaler.get_scale() == 2.0**16
    bf16 = _agent("dqn", "bf16")
    bf16.load_state_dict(fp16.state_dict())
    assert bf16.grad_scaler is None and "grad_scaler" not in bf16.state_dict()


def test_malformed_grad_scaler_state_is_refused_and_changes_nothing():
    agent = _agent("dqn", "fp16")
    state = agent.state_dict()
    state["grad_scaler"] = {**state["grad_scaler"], "scale": float("nan")}
    before = [p.clone() for p in agent.q_network.parameters()]
    with pytest.raises(ValueError, match="scale"):
        _agent("dqn", "fp16").load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters()))


def test_fp16_with_compile_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="compile and precision fp16"):
        Config(precision="fp16", compile=True)


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16"):
        Config(precision="fp8")


def test_precision_names_match_the_autocast_registry():
    from dqn_family.agents.precision import AUTOCAST_DTYPES
    from dqn_family.configs.config import PRECISIONS

    assert tuple(AUTOCAST_DTYPES) == PRECISIONS
