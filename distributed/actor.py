"""An Ape-X (or R2D2) actor's work, as plain Python (no Ray here; ``distributed.ray_workers`` wraps it
in a Ray actor): step its own vector envs with its own exploration rate, turn the steps into what
replay stores exactly as the single-process loop does, and hand them over in batches of about
``send_steps`` env steps. Its stepping is training.loop's ``Stepper`` with the run's acting part and
adder (n-step transitions, or overlapping sequences with their start states for a recurrent
network), gathered in a send buffer (:class:`TransitionSend`, :class:`SequenceSend`) instead of a
replay buffer. Transitions get initial priorities from the actor's copy of the network (Ape-X);
sequences get the replay's largest priority so far, as in a single-process run.

R2D2 (Kapturowski et al. 2019) is this actor with a recurrent acting part and the sequence adder.

Ape-X (Horgan et al. 2018, "Distributed Prioritized Experience Replay", ICLR), section 3 and
appendix: actor i of N explores with epsilon_i = 0.4^(1 + 7 i / (N - 1)); actors compute the
priorities of their transitions themselves, so new data need not wait for the learner to be
prioritized; they copy the learner's weights every 400 frames.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dqn_family.agents import DQNAgent, RecurrentAgent, input_parts, make_agent, set_torch_threads
from dqn_family.configs import Config
from dqn_family.configs.schedules import SCHEDULES
from dqn_family.envs import (
    EnvOptions,
    action_count,
    action_masks,
    make_vector_env,
    observation_layout,
    observation_states,
)
from dqn_family.replay import Batch, NStepTransitions, Sequence
from dqn_family.replay.observations import Observations, as_tensors, concatenate, map_observations
from dqn_family.training.loop import Stepper, acting_of, adder_of

# The learner's networks as plain tensors, tagged with the number of updates that made them.
Weights = dict[str, Any]  # {"version": int, "q_network": state_dict, "target_network": state_dict}


def apex_epsilon(index: int, actors: int) -> float:
    """Ape-X's final exploration rate of actor ``index`` of ``actors``: 0.4^(1 + 7 i / (N - 1)),
    from 0.4 (actor 0) down to 0.4^8 ~ 0.00066 (the last); 0.4 for a single actor."""
    if actors <= 1:
        return 0.4
    return 0.4 ** (1 + 7 * index / (actors - 1))


def actor_epsilon(config: Config, index: int, env_step: int) -> float:
    """Actor ``index``'s epsilon at global env step ``env_step`` (config.actor_exploration says how)."""
    end = config.epsilon_end
    if config.actor_exploration == "apex" and not config.noisy:
        end = apex_epsilon(index, config.actors)
    return SCHEDULES[config.exploration_schedule](
        env_step, start=config.epsilon_start, end=end, decay_steps=config.epsilon_decay_steps
    )


@dataclass(frozen=True)
class BatchInfo:
    """What a send says about itself; the learner counts it once the replay acknowledges the data."""

    actor: int
    pid: int  # the actor process's id: a new one means Ray restarted the actor
    env_steps: int  # real env steps taken for this send (its transitions, whatever their n-step lag)
    transitions: int
    episodes: list[tuple[float, int]]  # (return, length) of the episodes that ended in it
    weights_version: int  # learner updates behind the weights that acted (-1: the initial network)
    epsilon: float
    seconds: float  # wall-clock time the actor spent on it
    illegal_actions: int | None = None  # actions taken that the action mask forbade (None: no masks)


# What one send carries to the replay: transitions (ReplayBuffer.add's fields), or sequences.
Items = dict[str, np.ndarray] | list[Sequence]


def item_count(items: Items) -> int:
    return len(items["actions"]) if isinstance(items, dict) else len(items)


@dataclass(frozen=True)
class SendData:
    """The items of one send and their initial priorities (|TD error| or the algo's per-sample loss;
    None when replay is uniform, or for sequences: the replay gives those its largest priority)."""

    items: Items
    priorities: np.ndarray | None
    actor: int = 0  # the sender: its frames are a stream of their own in frame replay


class ActorCore:
    """One actor's envs, network copy, n-step windows or sequences, and episode bookkeeping."""

    def __init__(self, config: Config, index: int, *, env_seed: int) -> None:
        self.config, self.index = config, index
        set_torch_threads(config.torch_threads)
        torch.manual_seed(env_seed)
        masks = action_masks(config.env_id, config.action_mask, EnvOptions.of(config)) is not None
        self.envs = make_vector_env(
            config.env_id, config.num_envs, mode=config.vector_mode, options=EnvOptions.of(config)
        )
        space = self.envs.single_observation_space
        parts = input_parts(space)  # dictionary observations: one input per key
        observation_shape = observation_layout(space)[0] if parts is None else ()
        # The actor only acts and computes priorities: on the CPU, in float32, never compiled.
        acting = dataclasses.replace(config, device="cpu", compile=False, fused_adam=False, precision="fp32")
        agent = make_agent(
            acting,
            observation_shape=observation_shape,
            n_actions=action_count(self.envs.single_action_space),
            device=torch.device("cpu"),
            seed=env_seed,
            observation_states=observation_states(space),
            observation_parts=parts,
        )
        self.agent = agent
        self.send_buffer = SequenceSend() if isinstance(agent, RecurrentAgent) else TransitionSend()
        self.stepper = Stepper(config, self.envs, acting_of(agent), adder_of(config, self.send_buffer), masks=masks)
        self.stepper.reset(env_seed)
        self.weights_version = -1
        self.steps_since_sync = 0

    def close(self) -> None:
        self.envs.close()

    def load_weights(self, weights: Weights) -> None:
        self.agent.q_network.load_state_dict(weights["q_network"])
        self.agent.target_network.load_state_dict(weights["target_network"])
        self.weights_version = int(weights["version"])
        self.steps_since_sync = 0

    def collect(
        self, env_step: int, latest_version: int, fetch_weights: Callable[[], Weights]
    ) -> tuple[BatchInfo, SendData]:
        """Step until ``send_steps`` env steps are taken; ``env_step`` (the run's acknowledged env
        steps) sets epsilon. The latest published weights (``latest_version``) are fetched first
        when ``weight_sync_steps`` have passed since the last fetch, or when none was fetched yet."""
        started = time.perf_counter()
        if latest_version > self.weights_version and (
            self.weights_version < 0 or self.steps_since_sync >= self.config.weight_sync_steps
        ):
            self.load_weights(fetch_weights())
        epsilon = actor_epsilon(self.config, self.index, env_step)
        steps, episodes = 0, []
        while steps < self.config.send_steps:
            taken, ended = self.stepper.step(epsilon)
            steps += taken
            episodes.extend(ended)
        self.steps_since_sync += steps
        items = self.send_buffer.take()
        priorities = None
        if self.config.prioritized and isinstance(self.agent, DQNAgent):
            priorities = self.priorities(items)  # type: ignore[arg-type]
        info = BatchInfo(
            actor=self.index,
            pid=os.getpid(),
            env_steps=steps,
            transitions=item_count(items),
            episodes=episodes,
            weights_version=self.weights_version,
            epsilon=epsilon,
            seconds=time.perf_counter() - started,
            illegal_actions=self.stepper.take_illegal_actions() if self.stepper.masks else None,
        )
        return info, SendData(items, priorities, self.index)

    @torch.no_grad()
    def priorities(self, transitions: dict[str, np.ndarray]) -> np.ndarray:
        """Initial priorities from this actor's network copy: the per-sample priority the learner's
        update would give them (agent.loss_terms), so that sampling treats both alike."""
        count = len(transitions["actions"])
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        batch = Batch(
            observations=as_tensors(transitions["observations"], "cpu"),
            actions=torch.as_tensor(transitions["actions"]),
            rewards=torch.as_tensor(transitions["rewards"]),
            next_observations=as_tensors(transitions["next_observations"], "cpu"),
            terminated=torch.as_tensor(transitions["terminated"], dtype=torch.float32),
            discounts=torch.as_tensor(transitions["discounts"]),
            indices=torch.zeros(count, dtype=torch.int64),
            next_legal=torch.as_tensor(transitions["next_legal"]) if "next_legal" in transitions else None,
        )
        assert isinstance(self.agent, DQNAgent)
        _, priorities_B, _ = self.agent.loss_terms(batch)
        return priorities_B.float().numpy()


class TransitionSend:
    """The transitions of one send, gathered as an adder writes them (ReplayBuffer.add's fields) and
    handed over whole."""

    def __init__(self) -> None:
        self.parts: list[NStepTransitions] = []

    def add(
        self,
        observations: Observations,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Observations,
        terminated: np.ndarray,
        truncated: np.ndarray,
        discounts: np.ndarray | float,
        next_legal: np.ndarray | None = None,
    ) -> None:
        discounts_K = np.broadcast_to(np.asarray(discounts, dtype=np.float32), (len(actions),))
        self.parts.append(
            NStepTransitions(
                observations=map_observations(np.array, observations),  # copies: a vector env may reuse its arrays
                actions=np.array(actions),
                rewards=np.array(rewards, dtype=np.float32),
                next_observations=map_observations(np.array, next_observations),
                terminated=np.array(terminated),
                truncated=np.array(truncated),
                discounts=np.array(discounts_K),
                next_legal=None if next_legal is None else np.array(next_legal, dtype=bool),
            )
        )

    def take(self) -> dict[str, np.ndarray]:
        """Every transition added since the last take, in order (ReplayBuffer.add's keywords; with
        action masks, ``next_legal`` too)."""
        fields = [f.name for f in dataclasses.fields(NStepTransitions)]
        parts, self.parts = self.parts, []
        return {
            name: concatenate([getattr(part, name) for part in parts])
            for name in fields
            if parts and getattr(parts[0], name) is not None
        }


class SequenceSend:
    """The sequences of one send, in the order the sequence adder completed them."""

    def __init__(self) -> None:
        self.sequences: list[Sequence] = []

    def add(self, sequences: list[Sequence]) -> None:
        self.sequences.extend(sequences)

    def take(self) -> list[Sequence]:
        sequences, self.sequences = self.sequences, []
        return sequences
