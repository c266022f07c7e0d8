"""Recurrent Q-networks and their learner, after R2D2 (Kapturowski et al. 2019, "Recurrent
Experience Replay in Distributed Reinforcement Learning", ICLR).

A recurrent Q-network maps an observation and a recurrent state to Q-values and the next state.
The loop, evaluation and export use only this interface, which a user's own module
(``--recurrent custom --network module:Factory``) implements too:

- ``state_size``: int S; a state is one float32 tensor [B, S] (an LSTM's h and c side by side);
- ``initial_state(batch_size) -> [B, S]``: the state at an episode's start (zeros here);
- ``step(observations [B, *obs], state [B, S]) -> (q [B, A], state [B, S])``: one acting step;
- ``unroll(observations [T, B, *obs], state [B, S], resets [T, B] bool or None) -> (q [T, B, A], state)``:
  a sequence; where ``resets[t]`` the state is set back to the initial state before step t.

``RecurrentQNetwork`` is the built-in one: any torso, then an LSTM or GRU, then any head (plain,
dueling, C51, QR, noisy: ``QNetwork``'s own head). ``RecurrentAgent`` acts with it, carrying each
sub-env's state, and learns from replayed sequences (replay.sequence): the online network unrolls
the burn-in steps without gradients from the sequence's stored state (or zeros, R2D2's
"zero start state" strategy), then the rest; the target network unrolls the whole sequence from
the same state; every step after the burn-in is then one sample of the learner's own TD maths
(``td_terms`` of DQN, C51 or QR-DQN), masked where the sequence is padding.
Shapes: T = time, B = batch, A = actions, K = outputs per action, S = state, N = T * B.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from dqn_family.agents.acting import greedy_step
from dqn_family.agents.dqn import DQNAgent
from dqn_family.agents.layers import reset_noise
from dqn_family.agents.masks import check_legal, uniform_actions
from dqn_family.agents.networks import (
    ACTIVATION_MODULES,
    NetworkError,
    NetworkFactory,
    QNetwork,
    custom_torso,
    mlp_torso,
)
from dqn_family.agents.precision import autocast
from dqn_family.agents.torsos import check_torso, choose_torso, conv_torso
from dqn_family.replay.observations import map_observations, observation_count
from dqn_family.replay.sequence import SequenceBatch

RECURRENT_INTERFACE = ("state_size", "initial_state", "step", "unroll")


class RecurrentNetwork(Protocol):
    """The interface of a recurrent Q-network (module docstring)."""

    state_size: int

    def initial_state(self, batch_size: int) -> torch.Tensor: ...

    def step(self, observations: torch.Tensor, state_BS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def unroll(
        self, observations: torch.Tensor, state_BS: torch.Tensor, resets_TB: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def as_recurrent(network: nn.Module) -> RecurrentNetwork:
    """``network`` seen through its recurrent interface (checked by is_recurrent when it was built)."""
    return cast(RecurrentNetwork, network)


def is_recurrent(network: nn.Module) -> bool:
    """Whether ``network`` has the recurrent interface (module docstring)."""
    return all(hasattr(network, name) for name in RECURRENT_INTERFACE)


class RecurrentQNetwork(nn.Module):
    """torso -> LSTM or GRU (``core``, state width ``hidden_size``) -> QNetwork head."""

    def __init__(
        self,
        torso: nn.Module,
        feature_dim: int,
        n_actions: int,
        *,
        core: str,
        hidden_size: int,
        float_input: bool = True,
        **head_options: Any,
    ) -> None:
        super().__init__()
        if core not in ("lstm", "gru"):
            raise ValueError(f"unknown recurrent core {core!r}")
        self.torso, self.core_kind, self.hidden_size, self.n_actions = torso, core, hidden_size, n_actions
        self.core: nn.LSTM | nn.GRU = (nn.LSTM if core == "lstm" else nn.GRU)(feature_dim, hidden_size)
        self.head = QNetwork(nn.Identity(), hidden_size, n_actions, **head_options)
        self.output = self.head.output
        self.state_size = hidden_size * (2 if core == "lstm" else 1)
        self.float_input = float_input  # Box observations become float here; frames and state indices are the torso's

    @property
    def support(self) -> torch.Tensor:
        """The C51 head's atom values [K] (what C51Agent's maths reads from its network)."""
        return self.head.support

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros((batch_size, self.state_size), device=next(self.parameters()).device)

    def q_values(self, out_TBAK: torch.Tensor) -> torch.Tensor:
        """Q-values [..., A] from raw head outputs [..., A, K]."""
        lead = out_TBAK.shape[:-2]
        return self.head.q_values(out_TBAK.reshape(-1, *out_TBAK.shape[-2:])).view(*lead, self.n_actions)

    def unroll_outputs(
        self, observations: torch.Tensor, state_BS: torch.Tensor, resets_TB: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw head outputs [T, B, A, K] (Q-values, C51 logits or QR quantiles) and the last state."""
        steps, batch = observations.shape[:2]
        flat = observations.reshape(steps * batch, *observations.shape[2:])
        features_TBF = self.torso(flat.float() if self.float_input else flat).view(steps, batch, -1)
        hidden_TBH, state_BS = self._run_core(features_TBF, state_BS, resets_TB)
        out_NAK = self.head.head_outputs(hidden_TBH.reshape(steps * batch, self.hidden_size))
        return out_NAK.view(steps, batch, *out_NAK.shape[1:]), state_BS

    def unroll(
        self, observations: torch.Tensor, state_BS: torch.Tensor, resets_TB: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out_TBAK, state_BS = self.unroll_outputs(observations, state_BS, resets_TB)
        return self.q_values(out_TBAK), state_BS

    def step(self, observations: torch.Tensor, state_BS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_TBA, state_BS = self.unroll(observations.unsqueeze(0), state_BS)
        return q_TBA[0], state_BS

    def forward(self, observations: torch.Tensor, state_BS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.step(observations, state_BS)

    def _run_core(
        self, features_TBF: torch.Tensor, state_BS: torch.Tensor, resets_TB: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The core over the sequence: one call when no reset falls inside it (the common case in
        training: replayed sequences never cross an episode's end), else step by step."""
        if resets_TB is None or not bool(resets_TB[1:].any()):
            if resets_TB is not None:
                state_BS = state_BS * (~resets_TB[0]).unsqueeze(1).to(state_BS.dtype)
            out_TBH, packed = self.core(features_TBF, self._unpack(state_BS))
            return out_TBH, self._pack(packed)
        outputs = []
        for t in range(features_TBF.shape[0]):
            state_BS = state_BS * (~resets_TB[t]).unsqueeze(1).to(state_BS.dtype)
            out_1BH, packed = self.core(features_TBF[t : t + 1], self._unpack(state_BS))
            state_BS = self._pack(packed)
            outputs.append(out_1BH)
        return torch.cat(outputs), state_BS

    def _unpack(self, state_BS: torch.Tensor) -> Any:
        if self.core_kind == "lstm":
            h_BH, c_BH = state_BS.split(self.hidden_size, dim=1)
            return h_BH.unsqueeze(0).contiguous(), c_BH.unsqueeze(0).contiguous()
        return state_BS.unsqueeze(0).contiguous()

    def _pack(self, packed: Any) -> torch.Tensor:
        if self.core_kind == "lstm":
            return torch.cat([packed[0][0], packed[1][0]], dim=1)
        return packed[0]


def build_recurrent_network(
    observation_shape: tuple[int, ...],
    n_actions: int,
    *,
    core: str,
    hidden_size: int,
    hidden_sizes: tuple[int, ...],
    activation: str,
    torso: str = "auto",
    observation_states: int | None = None,
    network: str | NetworkFactory | None = None,
    **head_options: Any,
) -> RecurrentQNetwork:
    """The torso the feed-forward network would have (agents.networks), or the user's ``network`` as
    the torso (its output the core's input features: agents.networks.custom_torso), an LSTM or GRU,
    the head."""
    if network is not None:
        width = hidden_sizes[-1]
        module = custom_torso(network, observation_shape, width, activation, observation_states)
        return RecurrentQNetwork(
            module, width, n_actions, core=core, hidden_size=hidden_size, float_input=False, **head_options
        )
    kind = "mlp" if observation_states is not None else choose_torso(observation_shape, torso)
    if observation_states is not None and torso not in ("auto", "mlp"):
        raise NetworkError(
            f"torso {torso} needs image observations; this env's observations are Discrete({observation_states}) "
            "state indices: use --torso mlp or auto"
        )
    if kind == "mlp":
        module = mlp_torso(observation_shape, hidden_sizes, activation, observation_states)
        width = hidden_sizes[-1]
    else:
        problem = check_torso(observation_shape, kind)
        if problem is not None:
            raise NetworkError(f"--recurrent {core}: {problem}")
        module, width = conv_torso(observation_shape, kind, hidden_sizes, ACTIVATION_MODULES[activation])
    return RecurrentQNetwork(
        module,
        width,
        n_actions,
        core=core,
        hidden_size=hidden_size,
        float_input=kind == "mlp" and observation_states is None,
        **head_options,
    )


def check_recurrent_network(module: nn.Module, observation_shape: tuple[int, ...], n_actions: int, name: str) -> None:
    """NetworkError unless a user's recurrent network has the interface and its shapes (B=2, T=3)."""
    missing = [attribute for attribute in RECURRENT_INTERFACE if not hasattr(module, attribute)]
    if missing:
        raise NetworkError(
            f"network {name} is not recurrent: it lacks {', '.join(missing)} (--recurrent custom needs "
            f"{', '.join(RECURRENT_INTERFACE)}; see the README)"
        )
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()
            network = as_recurrent(module)
            state = network.initial_state(2)
            q_BA, next_state = network.step(torch.zeros((2, *observation_shape)), state)
            q_TBA, _ = network.unroll(
                torch.zeros((3, 2, *observation_shape)), state, torch.zeros((3, 2), dtype=torch.bool)
            )
    except Exception as error:
        raise NetworkError(f"network {name} failed its recurrent interface on a batch of 2: {error}") from None
    finally:
        module.train(was_training)
    size = getattr(module, "state_size", None)
    shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in (state, q_BA, next_state, q_TBA)]
    if shapes != [(2, size), (2, n_actions), (2, size), (3, 2, n_actions)]:
        raise NetworkError(
            f"network {name} must give states [B, state_size={size}], step Q-values [B, {n_actions}] and unroll "
            f"Q-values [T, B, {n_actions}]; for B=2, T=3 it gave state, step Q, next state, unroll Q = {shapes}"
        )


def masked_sequence_loss(loss_TB: torch.Tensor, mask_TB: torch.Tensor, weights_B: torch.Tensor | None) -> torch.Tensor:
    """The mean loss over the steps the mask keeps (padding and burn-in left out), each sequence's
    steps scaled by its importance weight."""
    weighted_TB = loss_TB * mask_TB if weights_B is None else loss_TB * mask_TB * weights_B.unsqueeze(0)
    return weighted_TB.sum() / mask_TB.sum().clamp(min=1.0)


# A sequence's replay priority (R2D2, section 2.3): p = eta * max_t |delta_t| + (1 - eta) * mean_t |delta_t|,
# over the steps in the loss; "|delta|" is the learner's own per-step priority (|TD error|, C51's KL, QR's loss).
def sequence_priorities(priorities_TB: torch.Tensor, mask_TB: torch.Tensor, eta: float) -> torch.Tensor:
    masked_TB = priorities_TB * mask_TB
    mean_B = masked_TB.sum(dim=0) / mask_TB.sum(dim=0).clamp(min=1.0)
    return eta * masked_TB.max(dim=0).values + (1.0 - eta) * mean_B


class RecurrentAgent:
    """Acting with a recurrent state per sub-env, and learning from replayed sequences, around a
    learner (DQN, C51, QR-DQN) that owns the networks, the optimizer, the generators and the TD maths."""

    def __init__(self, learner: DQNAgent, *, burn_in: int, stored_state: bool, priority_eta: float) -> None:
        if not is_recurrent(learner.q_network):
            raise ValueError("a RecurrentAgent needs a recurrent Q-network")
        self.learner, self.burn_in, self.stored_state, self.priority_eta = learner, burn_in, stored_state, priority_eta
        self.device, self.n_actions = learner.device, learner.n_actions

    @property
    def q_network(self) -> nn.Module:
        return self.learner.q_network

    @property
    def target_network(self) -> nn.Module:
        return self.learner.target_network

    def initial_state(self, count: int) -> np.ndarray:
        """Zero states [count, S] as float32 numpy (how the loop keeps them, and replay stores them)."""
        return as_recurrent(self.q_network).initial_state(count).detach().cpu().numpy().astype(np.float32)

    # --- acting ------------------------------------------------------------------------------
    def act(
        self, observations: np.ndarray, states: np.ndarray, epsilon: float, legal: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actions, next states): random with probability epsilon, else greedy; with a mask
        ``legal`` (bool [B, A]), both only among each row's legal actions (agents/masks.py). The
        network runs for every sub-env, exploring or not, so that each state follows its own
        episode. ValueError for a row of ``legal`` with no legal action."""
        learner, count = self.learner, observation_count(observations)  # dictionary observations too
        if legal is not None:
            check_legal(legal, count, self.n_actions)
        if learner.noisy:
            reset_noise(self.q_network)
        draws = learner.rng.random((2, count))
        explore = draws[0] < epsilon
        random_actions = uniform_actions(draws[1], self.n_actions, legal)
        was_training = self.q_network.training
        self.q_network.train(learner.noisy)  # as DQNAgent.greedy_actions: eval mode, except noise
        try:
            state_BS = torch.as_tensor(states, device=self.device)
            greedy, next_BS = greedy_step(self.q_network, observations, state_BS, legal, device=self.device)
        finally:
            self.q_network.train(was_training)
        assert next_BS is not None  # a state in, a state out
        return np.where(explore, random_actions, greedy), next_BS.cpu().numpy()

    # --- learning ----------------------------------------------------------------------------
    def _outputs(self, network: nn.Module, observations_TB: torch.Tensor, state_BS: torch.Tensor) -> torch.Tensor:
        """What the learner's td_terms takes: raw head outputs [T, B, A, K] or Q-values [T, B, A]."""
        if self.learner.uses_head_outputs:  # C51 and QR-DQN: the built-in network (build_network refuses others)
            return cast(RecurrentQNetwork, network).unroll_outputs(observations_TB, state_BS)[0].float()
        return as_recurrent(network).unroll(observations_TB, state_BS)[0].float()

    def loss_terms(self, batch: SequenceBatch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss [T', B], priority [T', B], Q of the taken actions [T', B]) for the T' = L - burn_in
        steps after the burn-in of each sequence; the caller masks padding."""
        burn, learner = self.burn_in, self.learner
        observations_TB = map_observations(lambda part: part.transpose(0, 1), batch.observations)  # [L + 1, B, *obs]
        steps, size = batch.actions.shape[1] - burn, batch.actions.shape[0]
        state_BS = batch.states if self.stored_state else as_recurrent(self.q_network).initial_state(size)
        online_state_BS = state_BS
        if burn:
            with torch.no_grad():
                burn_in_TB = map_observations(lambda part: part[:burn], observations_TB)
                _, online_state_BS = as_recurrent(self.q_network).unroll(burn_in_TB, state_BS)
        after_TB = map_observations(lambda part: part[burn:], observations_TB)
        online_TB = self._outputs(self.q_network, after_TB, online_state_BS)  # positions burn..L
        with torch.no_grad():
            target_TB = self._outputs(self.target_network, observations_TB, state_BS)  # positions 0..L
            bootstrap_TB = batch.bootstrap[:, burn:].transpose(0, 1)  # positions in burn+1..L
            batch_range_TB = torch.arange(size, device=bootstrap_TB.device).expand(steps, size)
            next_target_TB = target_TB[bootstrap_TB, batch_range_TB]
            next_online_q_TB = None
            if learner.double:
                online_q_TB = (
                    cast(RecurrentQNetwork, self.q_network).q_values(online_TB)
                    if learner.uses_head_outputs
                    else online_TB
                )
                next_online_q_TB = online_q_TB.detach()[bootstrap_TB - burn, batch_range_TB]
            # The legal actions of each step's bootstrap observation [T', B, A], or None.
            next_legal_TB = None if batch.legal is None else batch.legal.transpose(0, 1)[bootstrap_TB, batch_range_TB]

        def flat(values_BL: torch.Tensor) -> torch.Tensor:
            return values_BL[:, burn:].transpose(0, 1).reshape(steps * size)

        def flat_steps(values_TB: torch.Tensor) -> torch.Tensor:
            return values_TB.reshape(steps * size, *values_TB.shape[2:])

        loss_N, priorities_N, q_N = learner.td_terms(
            flat_steps(online_TB[:steps]),
            flat(batch.actions),
            flat(batch.rewards),
            flat(batch.discounts),
            flat(batch.terminated),
            flat_steps(next_target_TB),
            None if next_online_q_TB is None else flat_steps(next_online_q_TB),
            None if next_legal_TB is None else flat_steps(next_legal_TB),
        )
        return loss_N.view(steps, size), priorities_N.view(steps, size), q_N.view(steps, size)

    def update(self, batch: SequenceBatch[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on a batch of sequences; detached metrics, and one priority per sequence."""
        if self.learner.noisy:
            reset_noise(self.q_network)
            reset_noise(self.target_network)
        # Mixed precision as the feed-forward learner has it (agents/precision.py): the unrolls under
        # autocast, their outputs cast to float32 before the targets and the loss.
        with autocast(self.device, self.learner.precision):
            loss_TB, priorities_TB, q_TB = self.loss_terms(batch)
            mask_TB = batch.mask[:, self.burn_in :].transpose(0, 1)
            weights_B = batch.weights if isinstance(batch.weights, torch.Tensor) else None
            loss = masked_sequence_loss(loss_TB, mask_TB, weights_B)
        self.learner.apply_gradients(loss)
        valid = mask_TB.sum().clamp(min=1.0)
        return {
            "td_loss": loss.detach(),
            "q_values": (q_TB.detach() * mask_TB).sum() / valid,
            "priorities": sequence_priorities(priorities_TB.detach(), mask_TB, self.priority_eta),
        }

    # --- the learner's -----------------------------------------------------------------------
    def sync_target(self, tau: float = 1.0) -> None:
        self.learner.sync_target(tau)

    def set_learning_rate(self, learning_rate: float) -> None:
        self.learner.set_learning_rate(learning_rate)

    def state_dict(self) -> dict:
        return self.learner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state)
