"""The agent contract, parametrised over the AGENTS registry and component combinations, each built
the way train.py builds it (configs.resolve_config, then agents.make_agent) for CartPole's shapes
(observations [4], 2 actions), and for FrozenLake's (Discrete(16) observations, 4 actions), and fed
hand-built batches: a 1-step uniform batch, and an n-step
prioritized one (per-sample discounts gamma^k, importance weights).

Also: combinations of options that cannot work are a ConfigError from agents.build_network."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dqn_family import evaluate
from dqn_family.agents import (
    AGENTS,
    C51Agent,
    DQNAgent,
    NoisyLinear,
    build_network,
    learner_class,
    make_agent,
    save_model,
)
from dqn_family.agents.layers import reset_noise
from dqn_family.agents.networks import OneHot
from dqn_family.configs import Config, ConfigError, resolve_config, save_config
from dqn_family.replay import Batch
from tests.custom_nets import BranchyQNet, PlainQNet

CPU = torch.device("cpu")
GAMMA = 0.99

# (algo, component flags); every registry entry appears at least once.
CASES = [
    ("dqn", {}),
    ("dqn", {"double": True, "dueling": True}),
    ("dqn", {"noisy": True}),
    ("c51", {}),
    ("c51", {"double": True, "dueling": True}),
    ("qrdqn", {}),
    ("qrdqn", {"dueling": True, "noisy": True}),
    ("rainbow", {}),
]
CASE_IDS = [algo + "".join(f"-{flag}" for flag in flags) for algo, flags in CASES]


def one_step_uniform_batch() -> Batch:
    rng = np.random.default_rng(0)
    return Batch(
        observations=torch.as_tensor(rng.normal(size=(5, 4)), dtype=torch.float32),
        actions=torch.tensor([0, 1, 1, 0, 1]),
        rewards=torch.tensor([1.0, 0.0, -1.0, 1.0, 2.0]),
        next_observations=torch.as_tensor(rng.normal(size=(5, 4)), dtype=torch.float32),
        terminated=torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]),
        discounts=torch.full((5,), GAMMA),
        indices=torch.arange(5),
    )


def n_step_prioritized_batch() -> Batch:
    """3-step returns: tails cut short by termination or truncation carry gamma^k with k < 3."""
    batch = one_step_uniform_batch()
    return Batch(
        **{
            **batch.__dict__,
            "rewards": torch.tensor([2.9, 0.0, -1.0, 1.5, 3.0]),
            "discounts": torch.tensor([GAMMA**3, GAMMA**3, GAMMA, GAMMA**2, GAMMA**3]),
            "weights": torch.tensor([1.0, 0.4, 0.7, 1.0, 0.2]),
        }
    )


BATCHES = {"1-step uniform": one_step_uniform_batch, "3-step prioritized": n_step_prioritized_batch}


def config_for(algo: str, flags: dict) -> Config:
    return resolve_config(
        {
            "algo": algo,
            "env_id": "CartPole-v1",
            "hidden_sizes": (8,),
            "num_atoms": 11,
            "num_quantiles": 5,
            "device": "cpu",
            **flags,
        }
    )


def agent_for(algo: str, flags: dict, *, seed: int = 0) -> DQNAgent:
    torch.manual_seed(seed)  # the network's initial weights
    return make_agent(config_for(algo, flags), observation_shape=(4,), n_actions=2, device=CPU, seed=seed)


def parameters(agent_network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in agent_network.named_parameters()}


cases = pytest.mark.parametrize("algo, flags", CASES, ids=CASE_IDS)
batches = pytest.mark.parametrize("make_batch", BATCHES.values(), ids=BATCHES.keys())


def test_agents_registry_holds_the_four_learners():
    assert set(AGENTS) == {"dqn", "c51", "qrdqn", "rainbow"}
    assert {algo for algo, _ in CASES} == set(AGENTS)


def test_rainbow_agent_is_c51_with_a_noisy_dueling_head():
    agent = agent_for("rainbow", {})
    assert isinstance(agent, C51Agent) and agent.double and agent.noisy
    network = agent.q_network
    assert network.output == "c51" and network.value is not None
    assert isinstance(network.advantage, NoisyLinear) and isinstance(network.value, NoisyLinear)
    torch.testing.assert_close(network.support, torch.linspace(0.0, 200.0, 11))  # the CartPole preset's support


@cases
def test_agent_forward_gives_one_q_per_action(algo, flags):
    agent = agent_for(algo, flags)
    assert agent.q_network(one_step_uniform_batch().observations).shape == (5, 2)


@cases
def test_agent_act_gives_one_valid_action_per_observation(algo, flags):
    actions = agent_for(algo, flags).act(np.zeros((5, 4), dtype=np.float32), epsilon=0.0)
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1}


@cases
@batches
def test_agent_update_returns_finite_loss_q_and_priorities(algo, flags, make_batch):
    metrics = agent_for(algo, flags).update(make_batch())
    assert metrics["td_loss"].shape == () and torch.isfinite(metrics["td_loss"])
    assert metrics["q_values"].shape == () and torch.isfinite(metrics["q_values"])
    priorities = metrics["priorities"]
    assert priorities.shape == (5,) and torch.isfinite(priorities).all() and (priorities >= 0).all()
    assert not priorities.requires_grad


@cases
@batches
def test_agent_update_changes_every_parameter(algo, flags, make_batch):
    agent = agent_for(algo, flags)
    before = parameters(agent.q_network)
    agent.update(make_batch())
    unchanged = [name for name, p in parameters(agent.q_network).items() if torch.equal(p, before[name])]
    assert unchanged == []


def discrete_observation_agent(algo: str, flags: dict, *, numpy_acting: bool = True) -> DQNAgent:
    """An agent for FrozenLake's spaces: 16 states (observations are int64 indices, shape ()), 4 actions."""
    torch.manual_seed(0)
    config = resolve_config(
        {
            "algo": algo,
            "env_id": "FrozenLake-v1",
            "hidden_sizes": (8,),
            "num_atoms": 11,
            "num_quantiles": 5,
            "device": "cpu",
            "numpy_acting": numpy_acting,
            **flags,
        }
    )
    return make_agent(config, observation_shape=(), n_actions=4, device=CPU, seed=0, observation_states=16)


@cases
def test_agent_on_discrete_observations_updates_every_parameter(algo, flags):
    agent = discrete_observation_agent(algo, flags)
    batch = Batch(
        **{
            **n_step_prioritized_batch().__dict__,
            "observations": torch.tensor([0, 3, 15, 3, 7]),
            "next_observations": torch.tensor([1, 7, 15, 2, 11]),
            "actions": torch.tensor([0, 1, 3, 2, 1]),
        }
    )
    before = parameters(agent.q_network)
    metrics = agent.update(batch)
    assert torch.isfinite(metrics["td_loss"]) and torch.isfinite(metrics["priorities"]).all()
    unchanged = [name for name, p in parameters(agent.q_network).items() if torch.equal(p, before[name])]
    assert unchanged == []


@cases
def test_agent_on_discrete_observations_acts_the_same_with_numpy_and_torch(algo, flags):
    states = np.arange(16, dtype=np.int64)  # a vector env's batch of Discrete observations
    with_numpy = discrete_observation_agent(algo, flags).act(states, epsilon=0.0)
    with_torch = discrete_observation_agent(algo, flags, numpy_acting=False).act(states, epsilon=0.0)
    assert with_numpy.shape == (16,) and set(with_numpy.tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(with_numpy, with_torch)


@cases
def test_agent_update_leaves_target_network_until_sync(algo, flags):
    agent = agent_for(algo, flags)
    before = parameters(agent.target_network)
    agent.update(one_step_uniform_batch())
    assert all(torch.equal(p, before[name]) for name, p in parameters(agent.target_network).items())


@cases
def test_agent_sync_target_with_tau_one_copies_online_network(algo, flags):
    agent = agent_for(algo, flags)
    agent.update(one_step_uniform_batch())
    agent.sync_target()
    online, target = agent.q_network.state_dict(), agent.target_network.state_dict()
    assert online.keys() == target.keys()
    assert all(torch.equal(online[key], target[key]) for key in online)


@cases
def test_agent_sync_target_polyak_moves_target_by_tau(algo, flags):
    agent = agent_for(algo, flags)
    agent.update(one_step_uniform_batch())
    old_target, online = parameters(agent.target_network), parameters(agent.q_network)
    agent.sync_target(tau=0.25)
    for name, p in parameters(agent.target_network).items():
        torch.testing.assert_close(p, old_target[name] + 0.25 * (online[name] - old_target[name]))


@cases
def test_agent_state_dict_round_trip_gives_identical_actions(algo, flags):
    trained = agent_for(algo, flags)
    trained.update(n_step_prioritized_batch())
    restored = agent_for(algo, flags, seed=1)
    restored.load_state_dict(copy.deepcopy(trained.state_dict()))
    observations = np.random.default_rng(3).normal(size=(64, 4)).astype(np.float32)
    for epsilon in (0.0, 0.0, 0.5):  # noisy agents redraw noise each call, from the restored generator
        np.testing.assert_array_equal(restored.act(observations, epsilon), trained.act(observations, epsilon))


@cases
def test_agent_saved_model_reloads_through_evaluate_load_run(algo, flags, tmp_path):
    agent = agent_for(algo, flags)
    agent.update(n_step_prioritized_batch())
    save_config(config_for(algo, flags), tmp_path / "config.yaml")
    save_model(tmp_path / "model_latest.pt", agent.q_network.state_dict(), env_step=1)
    _, reloaded = evaluate.load_run(tmp_path, device=CPU)
    assert type(reloaded) is type(agent.q_network)
    saved, loaded = agent.q_network.state_dict(), reloaded.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[key], loaded[key]) for key in saved)
    observations = one_step_uniform_batch().observations
    assert torch.equal(reloaded.eval()(observations), agent.q_network.eval()(observations))


# --- the batch's discounts and importance weights are what the loss uses ------------------------


@cases
def test_agent_loss_with_zero_discount_equals_terminated_loss(algo, flags):
    agent = agent_for(algo, flags)
    batch = one_step_uniform_batch()
    cut = Batch(**{**batch.__dict__, "discounts": torch.zeros(5), "terminated": torch.zeros(5)})
    ended = Batch(**{**batch.__dict__, "terminated": torch.ones(5)})
    torch.testing.assert_close(agent.loss_terms(cut)[0], agent.loss_terms(ended)[0])


@cases
def test_agent_loss_uses_each_samples_own_discount(algo, flags):
    agent = agent_for(algo, flags)
    batch = one_step_uniform_batch()
    changed = Batch(**{**batch.__dict__, "discounts": torch.tensor([0.5, GAMMA, GAMMA, GAMMA, GAMMA])})
    loss_B, changed_loss_B = agent.loss_terms(batch)[0], agent.loss_terms(changed)[0]
    assert loss_B[0] != changed_loss_B[0]
    torch.testing.assert_close(changed_loss_B[1:], loss_B[1:])


@cases
def test_agent_update_with_zero_weights_leaves_parameters_unchanged(algo, flags):
    agent = agent_for(algo, flags)
    before = parameters(agent.q_network)
    metrics = agent.update(Batch(**{**one_step_uniform_batch().__dict__, "weights": torch.zeros(5)}))
    assert metrics["td_loss"].item() == 0.0
    assert all(torch.equal(p, before[name]) for name, p in parameters(agent.q_network).items())


@cases
def test_agent_update_with_one_hot_weight_equals_update_on_that_sample_alone(algo, flags):
    # loss = mean_B(w * loss_B) with w = [0, 0, 5, 0, 0] is loss_2: the same loss and gradient as
    # a batch holding sample 2 alone. Both agents start identical (weights, noise generator).
    weighted, alone = agent_for(algo, flags), agent_for(algo, flags)
    batch = one_step_uniform_batch()
    weighted_metrics = weighted.update(Batch(**{**batch.__dict__, "weights": torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0])}))
    alone_metrics = alone.update(
        Batch(**{name: value[2:3] for name, value in batch.__dict__.items() if value is not None})
    )
    torch.testing.assert_close(weighted_metrics["td_loss"], alone_metrics["td_loss"])
    for (name, p), q in zip(weighted.q_network.named_parameters(), alone.q_network.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=f"gradient of {name}")


# --- action masks (agents/masks.py) ------------------------------------------------------------


@cases
@pytest.mark.parametrize("epsilon", [0.0, 0.5])
def test_agent_act_with_mask_takes_the_only_legal_action(algo, flags, epsilon):
    legal = np.array([[True, False], [False, True]] * 32)
    actions = agent_for(algo, flags).act(
        np.random.default_rng(4).normal(size=(64, 4)).astype(np.float32), epsilon, legal
    )
    np.testing.assert_array_equal(actions, [0, 1] * 32)


@cases
def test_agent_on_discrete_observations_acts_the_same_with_numpy_and_torch_under_a_mask(algo, flags):
    states = np.arange(16, dtype=np.int64)
    legal = np.random.default_rng(5).random((16, 4)) < 0.5
    legal[np.arange(16), np.arange(16) % 4] = True  # a legal action in every row
    with_numpy = discrete_observation_agent(algo, flags).act(states, epsilon=0.0, legal=legal)
    with_torch = discrete_observation_agent(algo, flags, numpy_acting=False).act(states, epsilon=0.0, legal=legal)
    assert legal[np.arange(16), with_numpy].all()
    np.testing.assert_array_equal(with_numpy, with_torch)


@cases
def test_agent_loss_with_all_legal_mask_equals_unmasked_loss(algo, flags):
    agent = agent_for(algo, flags)
    batch = n_step_prioritized_batch()
    masked = Batch(**{**batch.__dict__, "next_legal": torch.ones(5, 2, dtype=torch.bool)})
    assert torch.equal(agent.loss_terms(masked)[0], agent.loss_terms(batch)[0])


@cases
def test_agent_loss_with_one_legal_next_action_bootstraps_from_it(algo, flags):
    # With two actions, the unmasked target bootstraps from one of them: its loss is the loss of the
    # mask allowing only that one. Sample 2 is terminal with no legal action at all: finite, unchanged.
    agent = agent_for(algo, flags)
    batch = one_step_uniform_batch()
    loss_B = agent.loss_terms(batch)[0]
    only_BA = {}
    for action in (0, 1):
        legal = torch.zeros(5, 2, dtype=torch.bool)
        legal[:, action] = True
        legal[2] = False
        only_BA[action] = agent.loss_terms(Batch(**{**batch.__dict__, "next_legal": legal}))[0]
        assert torch.isfinite(only_BA[action]).all()
        assert torch.equal(only_BA[action][2], loss_B[2])
    bootstrapped = [row for row in (0, 1, 3, 4) if only_BA[0][row] != only_BA[1][row]]
    assert bootstrapped == [0, 1, 3, 4]  # the next action matters in every non-terminal row
    assert all(loss_B[row] in (only_BA[0][row], only_BA[1][row]) for row in bootstrapped)


# --- selection and impossible combinations ----------------------------------------------------


def test_learner_class_unknown_algo_is_config_error():
    with pytest.raises(ConfigError, match="algo must be one of dqn, c51, qrdqn, rainbow; got 'iqn'"):
        learner_class(Config(algo="iqn"))


@pytest.mark.parametrize(
    "algo, flags, outputs",
    [
        ("c51", {}, 11),
        ("qrdqn", {}, 5),
        ("rainbow", {}, 11),
        ("dqn", {"dueling": True}, 1),
        ("dqn", {"noisy": True}, 1),
    ],
    ids=["c51", "qrdqn", "rainbow", "dueling", "noisy"],
)
def test_build_network_custom_network_is_the_torso_under_a_head(algo, flags, outputs):
    """With a head on top, the user's network is built with n_actions = hidden_sizes[-1] (8) and its
    output, after the activation, is what the head reads; the head gives [B, A, K] outputs."""
    calls = []

    def factory(observation_shape, n_outputs):
        calls.append((observation_shape, n_outputs))
        return BranchyQNet(observation_shape, n_outputs)

    network = build_network(config_for(algo, flags), (4,), 3, network=factory)
    assert calls == [((4,), 8)]
    assert isinstance(network.torso[0], BranchyQNet) and isinstance(network.torso[1], torch.nn.ReLU)
    assert network.head_outputs(torch.ones(2, 4)).shape == (2, 3, outputs)
    assert network(torch.ones(2, 4)).shape == (2, 3)
    assert (network.value is not None) == (algo == "rainbow" or flags.get("dueling", False))


def test_build_network_custom_network_gives_q_values_under_a_plain_head():
    assert isinstance(build_network(config_for("dqn", {}), (4,), 3, network=BranchyQNet), BranchyQNet)


def test_build_network_custom_network_takes_discrete_states_one_hot():
    network = build_network(config_for("dqn", {}), (), 3, network=PlainQNet, observation_states=5)
    assert isinstance(network[0], OneHot) and network[1].layers[1].in_features == 5
    assert network(torch.tensor([0, 4])).shape == (2, 3)


def test_noisy_agent_same_seed_draws_same_noise():
    first, second = agent_for("dqn", {"noisy": True}), agent_for("dqn", {"noisy": True})
    reset_noise(first.q_network)
    reset_noise(second.q_network)
    assert torch.equal(first.q_network.advantage.eps_in, second.q_network.advantage.eps_in)
