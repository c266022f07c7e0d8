"""POPGym tasks (Morad et al. 2023, "POPGym: Benchmarking Partially Observable Reinforcement
Learning", ICLR) under ids this project can train on, registered when this module is imported:

- ``POPGym-StatelessCartPole{Easy,Medium,Hard}-v0``: POPGym's PositionOnlyCartPole (the paper's
  "Stateless CartPole": cart position and pole angle only);
- ``POPGym-RepeatPrevious{Easy,Medium,Hard}-v0``: output the card seen k steps ago (Discrete
  observations, one-hot in the network);
- ``POPGym-Autoencode{Easy,Medium,Hard}-v0``: watch a sequence of cards, then play it back in
  reverse; its Tuple observation is flattened to one-hot entries (gymnasium's FlattenObservation).

Give them as ``envs.popgym_tasks:POPGym-RepeatPreviousEasy-v0``. Needs the ``popgym`` package
(``pip install "popgym>=1.0"``, the project's ``popgym`` extra). POPGym's own ids
cannot be made through this project: their constructors refuse the ``render_mode`` argument
every env here is made with.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import FlattenObservation

from dqn_family.envs.packages import missing_package

try:
    import popgym  # noqa: F401  (registers POPGym's own ids)
except ImportError:
    raise missing_package("the POPGym envs (envs.popgym_tasks)", "popgym", "popgym") from None

# Our task name -> POPGym's, and whether its observations need flattening.
TASKS: dict[str, tuple[str, bool]] = {
    "StatelessCartPole": ("PositionOnlyCartPole", False),
    "RepeatPrevious": ("RepeatPrevious", False),
    "Autoencode": ("Autoencode", True),
}
DIFFICULTIES = ("Easy", "Medium", "Hard")


def make_popgym(popgym_id: str, flatten: bool, render_mode: str | None = None) -> gym.Env:
    """POPGym's env (its constructors take no render_mode unless one is asked for), flattened if need be."""
    env = gym.make(popgym_id) if render_mode is None else gym.make(popgym_id, render_mode=render_mode)
    return FlattenObservation(env) if flatten else env


def register_envs() -> None:
    for task, (popgym_task, flatten) in TASKS.items():
        for difficulty in DIFFICULTIES:
            env_id = f"POPGym-{task}{difficulty}-v0"
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point="dqn_family.envs.popgym_tasks:make_popgym",
                    kwargs={"popgym_id": f"popgym-{popgym_task}{difficulty}-v0", "flatten": flatten},
                )


register_envs()
