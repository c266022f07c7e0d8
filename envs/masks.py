"""Action masks from the env: where a run reads them (``--action-mask auto|obs|info|off``), and the
checks a mask passes before anything acts on it.

Masks reach the rest of the project from one source, ``info["action_mask"]``: Gymnasium's Taxi puts
them there (int8 [A]), and :class:`MaskInInfo` moves them there from a ``Dict`` observation with an
``action_mask`` key (PettingZoo's convention), leaving the Dict's one other key as the observation
(or, with several other keys, a Dict of them: a multi-input observation, agents.multi_input).
Gymnasium has no wrapper that moves an observation key into info (``FilterObservation`` drops keys),
so this one is a plain ``gymnasium.Wrapper`` on the public API. An env whose observation carries a
mask is always wrapped, whatever the setting: with ``off`` the mask is dropped, never an input.

A mask is 0/1 or bool [A]; a state with no legal action is an error unless the episode ended there
(a board game's last position may have none).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dqn_family.configs.errors import UserError

MASK_KEY = "action_mask"


class MaskError(UserError):
    """An env whose action masks cannot be used: missing where asked for, malformed, or all-illegal."""


def has_mask_key(space: gym.Space) -> bool:
    """Whether observations are a Dict with an ``action_mask`` key."""
    return isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces


class MaskInInfo(gym.Wrapper):
    """A Dict observation {action_mask, <key>} seen as its <key> part, or {action_mask, <k1>, <k2>,
    ...} as the Dict {<k1>, <k2>, ...}; the mask moved to ``info["action_mask"]`` (at reset and at
    every step)."""

    def __init__(self, env: gym.Env, env_spec: str) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Dict)  # has_mask_key decides when to wrap
        self.others = [key for key in space.spaces if key != MASK_KEY]
        if not self.others:
            raise MaskError(
                f"env {env_spec!r} has a Dict observation with only an '{MASK_KEY}' key; give the observation "
                "beside it (one other key, or several: a multi-input observation)"
            )
        check_mask_space(space[MASK_KEY], env.action_space, env_spec)
        self.single = len(self.others) == 1
        self.observation_space = (
            space[self.others[0]] if self.single else gym.spaces.Dict({key: space[key] for key in self.others})
        )

    def observed(self, observation: dict[str, Any]) -> Any:
        """The observation without its mask: the one other key's value, or a dict of the others."""
        return observation[self.others[0]] if self.single else {key: observation[key] for key in self.others}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        return self.observed(observation), {**info, MASK_KEY: observation[MASK_KEY]}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self.observed(observation), reward, terminated, truncated, {**info, MASK_KEY: observation[MASK_KEY]}


def check_mask_space(space: gym.Space, action_space: gym.Space, env_spec: str) -> None:
    """MaskError unless an observation's mask is MultiBinary(n) or a 0/1 Box of shape (n,), n the actions."""
    n = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else None
    ok = isinstance(space, gym.spaces.MultiBinary) or (
        isinstance(space, gym.spaces.Box) and bool(np.all(space.low >= 0)) and bool(np.all(space.high <= 1))
    )
    if not ok or space.shape != (n,):
        raise MaskError(
            f"env {env_spec!r} has an '{MASK_KEY}' of {space}; a mask must be MultiBinary({n}) or a 0/1 Box of "
            f"shape ({n},), one entry per action"
        )


def wrap_masks(env: gym.Env, env_spec: str) -> gym.Env:
    """``env``, its Dict observation's mask moved into info when it has one (:class:`MaskInInfo`)."""
    if not has_mask_key(env.observation_space):
        return env
    try:
        return MaskInInfo(env, env_spec)
    except MaskError:
        env.close()
        raise


def from_observation(env: gym.Env) -> bool:
    """Whether ``env`` (or an env it wraps) reads its masks from a Dict observation (MaskInInfo)."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, MaskInInfo):
            return True
        env = env.env
    return False


def mask_source(env: gym.Env, setting: str, first_info: dict[str, Any], env_spec: str) -> bool:
    """Whether a run with ``--action-mask setting`` acts with ``env``'s masks, given the info of its
    first reset: 'obs' needs a Dict observation's mask, 'info' an ``action_mask`` in that info, 'auto'
    takes either, 'off' neither. MaskError when the asked-for source is missing or its mask malformed."""
    if setting == "off":
        return False
    n_actions = int(env.action_space.n) if isinstance(env.action_space, gym.spaces.Discrete) else 0
    in_observation = from_observation(env)
    if setting == "obs" and not in_observation:
        raise MaskError(
            f"--action-mask obs needs a Dict observation with an '{MASK_KEY}' key; env {env_spec!r} gives "
            f"{type(env.observation_space).__name__} observations of shape {env.observation_space.shape} "
            f"(use --action-mask info or auto for info['{MASK_KEY}'], or off)"
        )
    if MASK_KEY in first_info:
        legal_rows(np.asarray(first_info[MASK_KEY])[None], n_actions, env_spec)
        return True
    if setting == "info":
        raise MaskError(
            f"--action-mask info needs info['{MASK_KEY}'] from the env; env {env_spec!r} gave none at its first "
            f"reset (its info keys: {sorted(first_info)[:10]}); use --action-mask auto or off"
        )
    return False


def legal_rows(mask: Any, n_actions: int, env_spec: str) -> np.ndarray:
    """``mask`` as bool [E, A]: MaskError unless it is bool or 0/1 integers of that shape."""
    array = np.asarray(mask)
    integral = array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)
    shape_ok = array.ndim == 2 and array.shape[1] == n_actions
    if not integral or not shape_ok or (array.dtype != np.bool_ and not ((array == 0) | (array == 1)).all()):
        found = f"{array.dtype}{list(array.shape[1:])}" if array.ndim else array.dtype.name
        raise MaskError(
            f"env {env_spec!r} gave an {MASK_KEY} of {found}; a mask must be bool or 0/1 integers "
            f"[{n_actions}], one entry per action"
        )
    return array if array.dtype == np.bool_ else array.astype(bool)


def vector_legal(infos: dict[str, Any], num_envs: int, n_actions: int, env_spec: str) -> np.ndarray:
    """The masks of a vector step's (or reset's) observations, bool [E, A], from its infos (each
    sub-env's ``action_mask`` stacked, ``_action_mask`` saying which reported one): every sub-env must."""
    reported = infos.get("_" + MASK_KEY)
    if MASK_KEY not in infos or reported is None or not np.all(reported):
        missing = num_envs if reported is None else int(num_envs - np.count_nonzero(reported))
        raise MaskError(
            f"env {env_spec!r} gave no info['{MASK_KEY}'] for {missing} of its {num_envs} sub-envs; with action "
            "masks on, every reset and step must give one (or use --action-mask off)"
        )
    return legal_rows(infos[MASK_KEY], n_actions, env_spec)


def check_some_legal(legal_EA: np.ndarray, ended_E: np.ndarray, env_spec: str, env_step: int) -> None:
    """MaskError naming the env and the step when a sub-env whose episode goes on has no legal action."""
    stuck = ~legal_EA.any(axis=1) & ~ended_E
    if stuck.any():
        raise MaskError(
            f"env {env_spec!r} allows no action in a non-terminal state (sub-env {int(np.argmax(stuck))}, "
            f"env step {env_step:,}): its action mask is all False while the episode goes on"
        )
