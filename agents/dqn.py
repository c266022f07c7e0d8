"""DQN (Mnih et al. 2015, "Human-level control through deep reinforcement learning") and
Double DQN (van Hasselt et al. 2016): an online Q-network, a target network, Adam.

The agent acts (epsilon-greedy) and learns from a batch it is handed; it does not own the replay
buffer or the environments. The targets are pure functions below, shapes in the names:
B = batch, A = actions.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dqn_family.agents.acting import greedy_step
from dqn_family.agents.compiled import CompiledUpdate
from dqn_family.agents.layers import NoisyLinear, reset_noise, seed_noise
from dqn_family.agents.masks import bootstrap_legal, check_legal, masked_argmax, masked_q, uniform_actions
from dqn_family.agents.numpy_actor import numpy_greedy_policy
from dqn_family.agents.precision import autocast, check_grad_scaler_state, make_grad_scaler
from dqn_family.agents.state_checks import check_agent_state
from dqn_family.configs.config import LOSSES
from dqn_family.replay import Batch
from dqn_family.replay.observations import observation_count


# y = r + discount * (1 - terminated) * max_a' Q_target(s', a'), a' over the actions legal in s'
# (all of them without a mask; agents/masks.py)
def dqn_target(
    rewards_B: torch.Tensor,
    discounts_B: torch.Tensor,
    terminated_B: torch.Tensor,
    next_q_target_BA: torch.Tensor,
    next_legal_BA: torch.Tensor | None = None,
) -> torch.Tensor:
    next_q_BA = masked_q(next_q_target_BA, bootstrap_legal(next_legal_BA))
    return rewards_B + discounts_B * (1.0 - terminated_B) * next_q_BA.max(dim=1).values


# y = r + discount * (1 - terminated) * Q_target(s', argmax_a' Q_online(s', a')), a' legal in s'
def double_dqn_target(
    rewards_B: torch.Tensor,
    discounts_B: torch.Tensor,
    terminated_B: torch.Tensor,
    next_q_target_BA: torch.Tensor,
    next_q_online_BA: torch.Tensor,
    next_legal_BA: torch.Tensor | None = None,
) -> torch.Tensor:
    next_actions_B1 = masked_argmax(next_q_online_BA, bootstrap_legal(next_legal_BA)).unsqueeze(1)
    next_values_B = next_q_target_BA.gather(1, next_actions_B1).squeeze(1)
    return rewards_B + discounts_B * (1.0 - terminated_B) * next_values_B


# The loss registry's torch functions (configs.config.LOSSES names each one).
LOSS_FUNCTIONS = {name: getattr(F, function) for name, function in LOSSES.items()}


class DQNAgent:
    """Epsilon-greedy acting and TD learning with a target network.

    Subclasses (C51, QR-DQN) change only what the network outputs (``head_options``) and the
    per-sample loss (``loss_terms``); acting, optimisation and target updates are shared.
    """

    def __init__(
        self,
        *,
        q_network: nn.Module,
        n_actions: int,
        device: torch.device,
        seed: int,
        learning_rate: float,
        adam_eps: float = 1e-8,
        double: bool = False,
        loss: str = "huber",
        max_grad_norm: float | None = None,
        numpy_acting: bool = True,
        fused_adam: bool = False,
        compile: bool = False,
        precision: str = "fp32",
    ) -> None:
        self.n_actions = n_actions
        self.device = device
        self.q_network = q_network.to(device)
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.q_network.parameters(), lr=learning_rate, eps=adam_eps, fused=fused_adam or None
        )
        self.double = double
        self.loss_fn = LOSS_FUNCTIONS[loss]
        self.max_grad_norm = max_grad_norm
        self.rng = np.random.default_rng(seed)
        self.noise_generator = torch.Generator().manual_seed(seed)
        seed_noise(self.q_network, self.noise_generator)
        seed_noise(self.target_network, self.noise_generator)
        self.noisy = any(isinstance(m, NoisyLinear) for m in self.q_network.modules())
        self.numpy_greedy = numpy_greedy_policy(self.q_network) if numpy_acting else None
        # config ``precision``: forward passes and loss under autocast, float32 weights (agents/precision.py).
        self.precision = precision
        self.grad_scaler = make_grad_scaler(device, precision)
        # config ``compile``: the whole gradient step as one compiled graph (agents/compiled.py).
        self.compiled_update = CompiledUpdate(self) if compile else None

    @classmethod
    def from_config(cls, config, *, q_network: nn.Module, n_actions: int, device: torch.device, seed: int) -> DQNAgent:
        return cls(
            q_network=q_network,
            n_actions=n_actions,
            device=device,
            seed=seed,
            learning_rate=config.learning_rate,
            adam_eps=config.adam_eps,
            double=config.double,
            loss=config.loss,
            max_grad_norm=config.max_grad_norm,
            numpy_acting=config.numpy_acting,
            fused_adam=config.fused_adam,
            compile=config.compile,
            precision=config.precision,
        )

    @staticmethod
    def head_options(config) -> dict:
        """What the Q-network's head must output for this learner."""
        return {
            "output": "q",
            "num_outputs": 1,
            "dueling": config.dueling,
            "noisy": config.noisy,
            "noisy_sigma0": config.noisy_sigma0,
        }

    # --- acting ------------------------------------------------------------------------------
    def act(self, observations: np.ndarray, epsilon: float, legal: np.ndarray | None = None) -> np.ndarray:
        """One action per observation: random with probability epsilon, else greedy; with a mask
        ``legal`` (bool [B, A]), both only among each row's legal actions (agents/masks.py).

        The network runs only when at least one env acts greedily. ValueError for a row of
        ``legal`` with no legal action."""
        count = observation_count(observations)  # a dict of arrays by key too (dictionary observations)
        if legal is not None:
            check_legal(legal, count, self.n_actions)
        if self.noisy:
            reset_noise(self.q_network)  # a fresh noise sample for every acting step
        draws = self.rng.random((2, count))  # one generator call: which envs explore, and their actions
        explore = draws[0] < epsilon
        random_actions = uniform_actions(draws[1], self.n_actions, legal)
        if explore.all():
            return random_actions
        return np.where(explore, random_actions, self.greedy_actions(observations, legal))

    def greedy_actions(self, observations: np.ndarray, legal: np.ndarray | None = None) -> np.ndarray:
        """argmax_a Q(s, a) per observation, over each row's legal actions when ``legal`` is given."""
        if self.numpy_greedy is not None:  # no mode to set: plain MLPs only (agents.numpy_actor)
            return greedy_step(
                self.q_network, observations, None, legal, device=self.device, numpy_greedy=self.numpy_greedy
            )[0]
        was_training = self.q_network.training
        # Act in eval mode (BatchNorm statistics untouched, no dropout), except that noisy layers
        # explore through their noise, which only train mode applies.
        self.q_network.train(self.noisy)
        try:
            return greedy_step(self.q_network, observations, None, legal, device=self.device)[0]
        finally:
            self.q_network.train(was_training)

    # --- learning ----------------------------------------------------------------------------
    def update(self, batch: Batch[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on a batch of torch tensors; returns detached metrics (no sync):
        the loss, the mean Q of the taken actions, and per-sample priorities for replay."""
        if self.noisy:
            reset_noise(self.q_network)
            reset_noise(self.target_network)
        if self.compiled_update is not None:
            return self.compiled_update(batch)
        with autocast(self.device, self.precision):
            loss_B, priorities_B, q_B = self.loss_terms(batch)
            loss = self.batch_loss(loss_B, batch)
        self.apply_gradients(loss)
        return {"td_loss": loss.detach(), "q_values": q_B.detach().mean(), "priorities": priorities_B.detach()}

    def apply_gradients(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``: backward (scaled under fp16), gradient clipping, Adam."""
        self.optimizer.zero_grad(set_to_none=True)
        scaler = self.grad_scaler
        if scaler is None:
            loss.backward()
        else:  # fp16: backward on the scaled loss, then the true gradients back before clipping
            scaler.scale(loss).backward()
            scaler.unscale_(self.optimizer)
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), self.max_grad_norm)
        if scaler is None:
            self.optimizer.step()
        else:  # skips the step if a gradient is inf or NaN, and adapts the scale
            scaler.step(self.optimizer)
            scaler.update()

    @staticmethod
    def batch_loss(loss_B: torch.Tensor, batch: Batch[torch.Tensor]) -> torch.Tensor:
        """The mean per-sample loss; importance-sampling weights correct the bias of prioritized
        sampling (uniform replay has none)."""
        return loss_B.mean() if batch.weights is None else (loss_B * batch.weights).mean()

    def loss_terms(self, batch: Batch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-sample loss [B], per-sample priority [B], Q of the taken actions [B]).

        The priority prioritized replay gets back: here |y - Q(s, a)|, the TD error (Schaul et al.
        2016), whichever loss (Huber or MSE) is minimised; C51 uses the KL divergence of its
        distributions (agents/c51.py), QR-DQN its quantile loss (agents/qrdqn.py).
        Under mixed precision the networks' outputs are cast to float32 first: targets and loss in full precision."""
        q_BA = self.q_network(batch.observations).float()
        with torch.no_grad():
            next_q_target_BA = self.target_network(batch.next_observations).float()
            next_q_online_BA = self.q_network(batch.next_observations).float() if self.double else None
        return self.td_terms(
            q_BA,
            batch.actions,
            batch.rewards,
            batch.discounts,
            batch.terminated,
            next_q_target_BA,
            next_q_online_BA,
            batch.next_legal,
        )

    # Whether ``td_terms`` takes the network's raw head outputs [B, A, K] (C51, QR-DQN) rather
    # than Q-values [B, A]: what a recurrent unroll must give it (agents/recurrent.py).
    uses_head_outputs = False

    def td_terms(
        self,
        out_BA: torch.Tensor,
        actions_B: torch.Tensor,
        rewards_B: torch.Tensor,
        discounts_B: torch.Tensor,
        terminated_B: torch.Tensor,
        next_target_BA: torch.Tensor,
        next_online_q_BA: torch.Tensor | None,
        next_legal_BA: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``loss_terms`` from network outputs already computed: the online network's for the
        observations, the target network's for the next observations, and (Double DQN only) the
        online network's Q-values for the next observations; with ``next_legal_BA`` (bool [B, A])
        the target's choice of next action is among the legal ones. A recurrent learner unrolls
        the networks over sequences and hands every time step in here as one batch."""
        q_B = out_BA.gather(1, actions_B.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            if next_online_q_BA is not None:
                target_B = double_dqn_target(
                    rewards_B, discounts_B, terminated_B, next_target_BA, next_online_q_BA, next_legal_BA
                )
            else:
                target_B = dqn_target(rewards_B, discounts_B, terminated_B, next_target_BA, next_legal_BA)
        loss_B = self.loss_fn(q_B, target_B, reduction="none")
        return loss_B, (target_B - q_B).abs().detach(), q_B

    def set_learning_rate(self, learning_rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    @torch.no_grad()
    def sync_target(self, tau: float = 1.0) -> None:
        """Hard copy (tau = 1) or Polyak averaging: target <- tau * online + (1 - tau) * target."""
        if tau >= 1.0:
            self.target_network.load_state_dict(self.q_network.state_dict())
            return
        torch._foreach_lerp_(list(self.target_network.parameters()), list(self.q_network.parameters()), tau)
        for target, online in zip(self.target_network.buffers(), self.q_network.buffers()):
            target.copy_(online)

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Networks, optimizer, and the exploration and noise generators' states: all a resumed
        agent needs to act and learn exactly as this one would (plain tensors, numbers, dicts); under
        fp16 also the gradient scaler's state (its current scale)."""
        state = {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "noise_generator": self.noise_generator.get_state(),
        }
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``; the generator keys are optional (older saves lack them).
        Everything is checked first (agents/state_checks.py): a state that does not fit raises
        ValueError and changes nothing. A gradient scaler's state is restored under fp16; a state
        saved without one (a run switching to fp16 on resume) leaves the fresh scaler, which finds
        its scale again within a few steps, and one saved under fp16 is ignored by bf16 and fp32."""
        check_agent_state(
            q_network=self.q_network, target_network=self.target_network, optimizer=self.optimizer, state=state
        )
        scaler_state = state.get("grad_scaler")
        if scaler_state is not None:
            check_grad_scaler_state(scaler_state)
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
        if "noise_generator" in state:
            self.noise_generator.set_state(state["noise_generator"])
        if scaler_state is not None and self.grad_scaler is not None:
            self.grad_scaler.load_state_dict(scaler_state)
