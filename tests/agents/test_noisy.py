"""NoisyLinear (Fortunato et al. 2018): factorised noise f(x) = sign(x) sqrt(|x|), mean weights in
eval mode, a fixed noise sample until reset_noise, seeded generators; and a noisy agent draws
fresh noise for every acting step and every update."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dqn_family.agents import MLPQNetwork, NoisyLinear
from dqn_family.agents.dqn import DQNAgent
from dqn_family.agents.layers import reset_noise, seed_noise
from dqn_family.replay import Batch

X_B3 = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.3, -1.0]])


def seeded_layer(seed: int = 0, *, noise_seed: int | None = None) -> NoisyLinear:
    torch.manual_seed(seed)
    layer = NoisyLinear(3, 2)
    if noise_seed is not None:
        layer.generator = torch.Generator().manual_seed(noise_seed)
        layer.reset_noise()
    return layer


def test_noisy_linear_train_output_uses_factorised_noise():
    # mu_w = [[1, 2]], sigma_w = [[0.1, 0.2]], eps_in = [1, -1], eps_out = [2]:
    #   W = [1 + 0.1 * 2 * 1, 2 + 0.2 * 2 * -1] = [1.2, 1.6];  b = 0.5 + 0.3 * 2 = 1.1
    #   y([1, 1]) = 1.2 + 1.6 + 1.1 = 3.9
    layer = NoisyLinear(2, 1)
    with torch.no_grad():
        layer.weight_mu.copy_(torch.tensor([[1.0, 2.0]]))
        layer.bias_mu.copy_(torch.tensor([0.5]))
        layer.weight_sigma.copy_(torch.tensor([[0.1, 0.2]]))
        layer.bias_sigma.copy_(torch.tensor([0.3]))
        layer.eps_in.copy_(torch.tensor([1.0, -1.0]))
        layer.eps_out.copy_(torch.tensor([2.0]))
    torch.testing.assert_close(layer(torch.tensor([[1.0, 1.0]])), torch.tensor([[3.9]]))


def test_noisy_linear_eval_mode_uses_mean_weights_whatever_the_noise():
    layer = seeded_layer().eval()
    expected_B2 = F.linear(X_B3, layer.weight_mu, layer.bias_mu)
    torch.testing.assert_close(layer(X_B3), expected_B2, rtol=0, atol=0)
    layer.reset_noise()
    torch.testing.assert_close(layer(X_B3), expected_B2, rtol=0, atol=0)


def test_noisy_linear_train_mode_with_fixed_noise_gives_same_output_twice():
    layer = seeded_layer()
    assert torch.equal(layer(X_B3), layer(X_B3))


def test_noisy_linear_reset_noise_changes_train_output():
    layer = seeded_layer()
    before_B2 = layer(X_B3)
    layer.reset_noise()
    assert not torch.equal(layer(X_B3), before_B2)


def test_noisy_linear_train_output_differs_from_mean_output():
    layer = seeded_layer()
    assert not torch.equal(layer(X_B3), F.linear(X_B3, layer.weight_mu, layer.bias_mu))


def test_noisy_linear_same_generator_seed_gives_identical_noise():
    first, second = seeded_layer(noise_seed=7), seeded_layer(noise_seed=7)
    assert torch.equal(first.eps_in, second.eps_in) and torch.equal(first.eps_out, second.eps_out)
    first.reset_noise()
    second.reset_noise()
    assert torch.equal(first.eps_in, second.eps_in) and torch.equal(first.eps_out, second.eps_out)


def test_noisy_linear_different_generator_seeds_give_different_noise():
    assert not torch.equal(seeded_layer(noise_seed=7).eps_in, seeded_layer(noise_seed=8).eps_in)


def test_noisy_linear_scaled_noise_is_sign_times_sqrt_of_magnitude():
    torch.testing.assert_close(
        NoisyLinear._scaled(torch.tensor([-4.0, 0.0, 0.25, 9.0])), torch.tensor([-2.0, 0.0, 0.5, 3.0])
    )


def test_noisy_linear_reset_noise_draws_input_then_output_noise_through_f():
    layer = seeded_layer(noise_seed=3)
    generator = torch.Generator().manual_seed(3)
    raw_in, raw_out = torch.randn(3, generator=generator), torch.randn(2, generator=generator)
    torch.testing.assert_close(layer.eps_in, raw_in.sign() * raw_in.abs().sqrt())
    torch.testing.assert_close(layer.eps_out, raw_out.sign() * raw_out.abs().sqrt())


def test_noisy_linear_initial_parameters_scale_with_fan_in():
    # mu ~ U[-1/sqrt(p), 1/sqrt(p)], sigma = sigma0 / sqrt(p); p = 4 inputs: bound 0.5, sigma 0.3 * 0.5
    layer = NoisyLinear(4, 3, sigma0=0.3)
    assert layer.weight_mu.abs().max().item() <= 0.5 and layer.bias_mu.abs().max().item() <= 0.5
    torch.testing.assert_close(layer.weight_sigma, torch.full((3, 4), 0.15))
    torch.testing.assert_close(layer.bias_sigma, torch.full((3,), 0.15))


def test_reset_noise_redraws_every_noisy_layer_in_a_module():
    module = nn.Sequential(seeded_layer(0), nn.ReLU(), NoisyLinear(2, 2))
    before = [layer.eps_in.clone() for layer in (module[0], module[2])]
    reset_noise(module)
    assert all(not torch.equal(layer.eps_in, old) for layer, old in zip((module[0], module[2]), before))


def test_reset_noise_without_noisy_layers_is_a_no_op():
    module = nn.Linear(2, 2)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    reset_noise(module)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in state.items())


def test_seed_noise_gives_every_noisy_layer_the_generator():
    module = nn.Sequential(NoisyLinear(2, 2), NoisyLinear(2, 2))
    generator = torch.Generator().manual_seed(0)
    seed_noise(module, generator)
    assert module[0].generator is generator and module[1].generator is generator


def noisy_agent() -> DQNAgent:
    torch.manual_seed(0)
    network = MLPQNetwork((2,), 2, hidden_sizes=(4,), noisy=True)
    return DQNAgent(q_network=network, n_actions=2, device=torch.device("cpu"), seed=0, learning_rate=0.01)


def test_noisy_dqn_agent_act_draws_fresh_noise_each_step():
    agent = noisy_agent()
    before = agent.q_network.advantage.eps_out.clone()
    agent.act(np.zeros((1, 2), dtype=np.float32), epsilon=0.0)
    assert not torch.equal(agent.q_network.advantage.eps_out, before)


def test_noisy_dqn_agent_update_draws_fresh_noise_for_online_and_target():
    agent = noisy_agent()
    online_before = agent.q_network.advantage.eps_out.clone()
    target_before = agent.target_network.advantage.eps_out.clone()
    agent.update(
        Batch(
            observations=torch.ones(1, 2),
            actions=torch.tensor([0]),
            rewards=torch.tensor([1.0]),
            next_observations=torch.ones(1, 2),
            terminated=torch.tensor([0.0]),
            discounts=torch.tensor([0.9]),
            indices=torch.tensor([0]),
        )
    )
    assert not torch.equal(agent.q_network.advantage.eps_out, online_before)
    assert not torch.equal(agent.target_network.advantage.eps_out, target_before)


def test_noisy_dqn_agent_acts_through_its_noise():
    # Greedy actions come from the noisy (train-mode) network, so with epsilon 0 a noisy agent
    # still varies its action for one observation across steps.
    agent = noisy_agent()
    with torch.no_grad():
        agent.q_network.advantage.weight_mu.zero_()
        agent.q_network.advantage.bias_mu.zero_()  # mean Q ties exactly: only the noise decides
        agent.q_network.advantage.bias_sigma.fill_(1.0)
    observation = np.zeros((1, 2), dtype=np.float32)
    actions = {int(agent.act(observation, epsilon=0.0)[0]) for _ in range(50)}
    assert actions == {0, 1}
