"""Building Gymnasium environments and checking, before any training, that a DQN can drive them.

Vector envs are built with NEXT_STEP autoreset stated explicitly (Gymnasium 1.x's default): the
step after an episode ends returns the reset observation with reward 0 and ignores the action.
That step is not a transition; :func:`autoreset_mask` is how the training loop knows to drop it.
A Dict observation with an ``action_mask`` key is made its other key's (or the Dict of its other
keys), the mask moved into info (envs.masks); :func:`action_masks` tells whether a run acts with
masks. Other Dict observations pass as they are, and a Tuple observation becomes the Dict of its
parts keyed "0", "1", ... (:class:`TupleAsDict`): the multi-input network (agents.multi_input) and
replay take them key by key; vector envs of them are Gymnasium's ``SyncVectorEnv`` (the lean one
batches single arrays). ``pettingzoo:<game>`` is a
PettingZoo classic two-player game seen from one seat, drawn per episode (envs.games.TwoPlayerGame),
checked before any module is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from dqn_family.configs.errors import UserError
from dqn_family.configs.trust import IMPORT_HINT, PROJECT_ENV_MODULES, SpecError, game_of, split_env_spec
from dqn_family.envs.games import TwoPlayerGame
from dqn_family.envs.masks import mask_source, wrap_masks
from dqn_family.envs.pixels import EnvOptions, env_family, make_pixel_env, time_limit_kwargs
from dqn_family.envs.vector import LeanSyncVectorEnv
from dqn_family.fileio import one_line


class EnvError(UserError):
    """An env id that cannot be made, or an env a DQN cannot act in."""


def resolve_env_id(env_spec: str) -> str:
    """Import the module of a ``module:EnvId`` spec (so it can register its envs); return EnvId.
    The project's own env modules (``envs.pomdp``) are imported from this package."""
    try:
        module_name, env_id = split_env_spec(env_spec)
    except SpecError as error:
        raise EnvError(str(error)) from None
    if module_name is None:
        return env_id
    try:
        importlib.import_module(PROJECT_ENV_MODULES.get(module_name, module_name))
    except ModuleNotFoundError as error:
        raise EnvError(f"cannot import module {module_name!r} for env {env_spec!r}: {error}; {IMPORT_HINT}") from None
    except ImportError as error:
        raise EnvError(f"cannot import module {module_name!r} for env {env_spec!r}: {error}") from None
    return env_id


def make_env(env_spec: str, *, render_mode: str | None = None, options: EnvOptions | None = None) -> gym.Env:
    """One env from a registered id (or ``module:EnvId``), with its spaces checked. ``options``
    shape Atari and MinAtar envs (see envs.pixels) and set ``max_episode_steps`` for any env."""
    env = _make_unchecked(env_spec, render_mode, options or EnvOptions())
    try:
        check_spaces(env.observation_space, env.action_space, env_spec)
    except EnvError:
        env.close()
        raise
    return env


def _make_unchecked(env_spec: str, render_mode: str | None, options: EnvOptions) -> gym.Env:
    game = game_of(env_spec)
    if game is not None:  # before resolve_env_id: a game's id names no module to import
        return make_game(game, env_spec, render_mode, options)
    env_id = resolve_env_id(env_spec)
    try:
        if env_family(env_id) is not None:
            return make_pixel_env(env_id, options, render_mode)
        env = gym.make(env_id, render_mode=render_mode, **time_limit_kwargs(options))
        return wrap_masks(TupleAsDict(env) if isinstance(env.observation_space, gym.spaces.Tuple) else env, env_spec)
    except (gym.error.DependencyNotInstalled, ImportError) as error:
        # e.g. Box2D missing for LunarLander: Gymnasium's message names its fix, pip install "gymnasium[box2d]"
        raise EnvError(f"env {env_spec!r} needs a package that is not installed: {one_line(error)}") from None
    except gym.error.Error as error:
        raise EnvError(f"cannot make env {env_spec!r}: {one_line(error)}") from None


def make_game(game: str, env_spec: str, render_mode: str | None, options: EnvOptions) -> gym.Env:
    """A two-player game from the learner's seat (drawn per episode), the opponent uniformly random
    until the trainer sets one (training.games.SelfPlay); its mask in ``info["action_mask"]``."""
    if render_mode is not None:
        raise EnvError(f"env {env_spec!r} is a two-player game, which is not rendered here; drop --video/--render")
    env: gym.Env = TwoPlayerGame(game, seat="random")
    if options.max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=options.max_episode_steps)
    return env


def make_vector_env(
    env_spec: str, num_envs: int, *, mode: str = "sync", options: EnvOptions | None = None
) -> VectorEnv:
    """``num_envs`` copies of an env stepped together, NEXT_STEP autoreset, spaces checked first."""
    options = options or EnvOptions()
    probe = make_env(env_spec, options=options)  # fail fast, in this process, with a clear message
    by_key = isinstance(probe.observation_space, gym.spaces.Dict)
    probe.close()
    # The full 'module:EnvId' spec, so that async workers started by spawn import the module too.
    env_fns: list[Callable[[], gym.Env]] = [lambda: _make_unchecked(env_spec, None, options) for _ in range(num_envs)]
    if mode == "async":
        return AsyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.NEXT_STEP)
    if by_key:  # a dict of arrays by key: Gymnasium's own batching
        return SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.NEXT_STEP)
    return LeanSyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.NEXT_STEP)


def action_masks(env_spec: str, setting: str, options: EnvOptions | None = None) -> int | None:
    """The number of actions when a run with ``--action-mask setting`` acts with this env's masks,
    else None; decided on an env made for the purpose, so that the run's own envs start untouched."""
    if setting == "off":
        return None
    env = make_env(env_spec, options=options)
    try:
        return masks_of(env, setting, env_spec)
    finally:
        env.close()


def masks_of(env: gym.Env, setting: str, env_spec: str) -> int | None:
    """``action_masks`` for an env already made, which this resets (seed 0) when its first reset's
    info decides (envs.masks.mask_source); MaskError when the setting's source is missing."""
    if setting == "off":
        return None
    _, info = env.reset(seed=0)
    return action_count(env.action_space) if mask_source(env, setting, info, env_spec) else None


def check_spaces(observation_space: gym.Space, action_space: gym.Space, env_spec: str) -> None:
    """Raise EnvError unless actions are Discrete (from 0) and observations a numeric Box, Discrete
    (from 0: states the Q-network one-hot encodes), or a Dict or Tuple of parts (each part is
    checked where the network is built: agents.multi_input.observation_parts names a key it cannot
    take)."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(
            f"env {env_spec!r} has action space {action_space}; DQN needs a Discrete action space "
            "(for continuous control use an actor-critic method such as SAC or TD3)"
        )
    if int(action_space.start) != 0:
        raise EnvError(
            f"env {env_spec!r} has actions starting at {action_space.start}; only Discrete(n) "
            "starting at 0 is supported"
        )
    if isinstance(observation_space, gym.spaces.Discrete):
        if int(observation_space.start) != 0:
            raise EnvError(
                f"env {env_spec!r} has observations starting at {observation_space.start}; only "
                "Discrete(n) observations starting at 0 are supported"
            )
        return
    if isinstance(observation_space, (gym.spaces.Dict, gym.spaces.Tuple)):
        return
    if not isinstance(observation_space, gym.spaces.Box) or not (
        np.issubdtype(observation_space.dtype, np.number) or observation_space.dtype == np.bool_
    ):
        raise EnvError(
            f"env {env_spec!r} has observation space {observation_space}; the Q-network takes a "
            "numeric Box, Discrete observations, or a Dict or Tuple of them"
        )


def action_count(action_space: gym.Space) -> int:
    """The number of actions of a Discrete action space, the only kind ``check_spaces`` lets through."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(f"action space {action_space} is not Discrete; DQN needs a Discrete action space")
    return int(action_space.n)


def observation_layout(observation_space: gym.Space) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one observation: fixed for the Box and Discrete spaces ``check_spaces`` lets
    through; a Dict has one per key (agents.multi_input.observation_parts)."""
    shape, dtype = observation_space.shape, observation_space.dtype
    if shape is None or dtype is None:
        raise EnvError(f"observation space {observation_space} has no fixed shape and dtype")
    return shape, dtype


def observation_states(observation_space: gym.Space) -> int | None:
    """The number of states of a Discrete observation space (observations are the state's index,
    shape (), which the Q-network one-hot encodes); None for a Box."""
    return int(observation_space.n) if isinstance(observation_space, gym.spaces.Discrete) else None


class TupleAsDict(gym.ObservationWrapper):
    """A Tuple observation seen as the Dict of its parts keyed "0", "1", ... (the keys
    agents.multi_input gives a Tuple's parts), so that everything downstream takes one form."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Tuple)
        self.observation_space = gym.spaces.Dict({str(i): part for i, part in enumerate(space.spaces)})

    def observation(self, observation: tuple) -> dict[str, object]:
        return {str(i): part for i, part in enumerate(observation)}


class AutoresetTracker:
    """Knows which sub-envs' next step is a NEXT_STEP autoreset step (not a real transition).

    ``all_real`` says, as a plain bool, whether every sub-env's last step was real: the common
    case, in which the loop indexes nothing and counts nothing."""

    def __init__(self, num_envs: int) -> None:
        self.pending = np.zeros(num_envs, dtype=bool)
        self.any_pending = False
        self.all_real = True

    def real_steps(self, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Mask of sub-envs whose step just taken was a real transition; call once per step."""
        real = ~self.pending
        self.all_real = not self.any_pending
        self.pending = np.logical_or(terminated, truncated)
        self.any_pending = bool(self.pending.any())
        return real
