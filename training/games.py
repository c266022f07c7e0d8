"""Two-player games (``pettingzoo:<game>``, envs.games) in training and evaluation: a Q-network as a
player, self-play as a part of the one loop, and the win/draw/loss report against scripted players.

- :class:`GreedyPlayer`: a Q-network's masked greedy move (agents.acting.greedy_step, the step every
  acting path takes), or with probability epsilon a uniformly random legal one.
- :class:`SelfPlay`: the part training.loop.Stepper calls before sub-envs reset (``before_resets``).
  It keeps an :class:`envs.games.OpponentPool` of CPU snapshots of the online network: one at the
  start, then one every ``self_play_snapshot_steps`` env steps, the last ``self_play_pool_size``
  kept; each sub-env's opponent is drawn from the pool at the start of each of its episodes (the
  newest snapshot with probability 0.5, else any held, uniformly) and set through the vector env's
  public ``set_attr("opponent", [one per sub-env])``. Checkpoints keep the pool (each snapshot's
  weights), its and the players' generators and the step the next snapshot counts from, so a
  resumed run draws from the same pool; its episodes in progress restart, as every resumed run's do.
- :class:`BothSeats` (``self_play: negamax``): the learner makes every move, each sub-env alternating
  seats (envs.games.BOTH_SEATS), and :func:`transition_discount` makes each 1-step (or n-step)
  transition bootstrap with -gamma from the other player's position: in a zero-sum game a
  position's value to the player to move is the negative of the best value its opponent gets after
  the move, so the targets learn perfect-play values (minimax Q-learning, Littman 1994), whoever
  the opponents were in the games replayed.
- :class:`MirrorBoards` (``mirror_boards``): the learner's part that turns every other sampled
  transition of a board game into its left-right mirror image (a move as good, by the rules'
  symmetry), so each stored position teaches its mirror image too.
- :func:`game_report`: games in each seat against the uniformly random player, the one-ply player
  and (tic-tac-toe) the minimax player (envs.games.play_games), and what evaluate.py and the
  periodic evaluation make of it: the mean return against the random player (``eval/mean_return``,
  +1 win, 0 draw, -1 loss) and ``eval/vs_<player>/seat<s>/{win,draw,loss}_rate`` scalars.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Protocol, cast

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import nn

from dqn_family.agents import numpy_greedy_policy
from dqn_family.agents.acting import explore_action, greedy_step
from dqn_family.agents.state_checks import check_module_state
from dqn_family.checkpoints.state import set_numpy_generator_state
from dqn_family.configs import Config
from dqn_family.configs.config import is_count
from dqn_family.configs.schedules import crossed
from dqn_family.configs.trust import game_of
from dqn_family.envs.games import (
    BOTH_SEATS,
    LINE_GAMES,
    MINIMAX_MAX_CELLS,
    GameRecord,
    OpponentPool,
    Player,
    minimax_player,
    mirrored_actions,
    one_ply_player,
    play_games,
    random_player,
)
from dqn_family.fileio import short_repr
from dqn_family.replay.buffer import Batch
from dqn_family.training.state import EvalResult

NEWEST_PROBABILITY = 0.5  # the self-play pool's chance of drawing its newest snapshot
GameReport = dict[str, tuple[GameRecord, GameRecord]]  # scripted player -> (seat 0's record, seat 1's)


class GreedyPlayer:
    """A Q-network as an envs.games Player: the argmax of Q over the legal moves, or with probability
    ``epsilon`` a uniformly random legal move drawn from ``rng``. Picklable (an async vector env's
    sub-envs get copies): the numpy fast path is rebuilt after unpickling."""

    def __init__(
        self, q_network: nn.Module, *, device: torch.device | str = "cpu", epsilon: float = 0.0, rng: Any = None
    ) -> None:
        self.q_network, self.device, self.epsilon = q_network, device, epsilon
        self.rng: np.random.Generator = rng if rng is not None else np.random.default_rng(0)
        self.numpy_greedy = numpy_greedy_policy(q_network)

    def __call__(self, observation: np.ndarray, legal_mask: np.ndarray) -> int:
        if self.epsilon and self.rng.random() < self.epsilon:
            return explore_action(self.rng, len(legal_mask), legal_mask)
        actions, _ = greedy_step(
            self.q_network,
            np.asarray(observation)[None],
            None,
            np.asarray(legal_mask, dtype=bool)[None],
            device=self.device,
            numpy_greedy=self.numpy_greedy,
        )
        return int(actions[0])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "numpy_greedy": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.numpy_greedy = numpy_greedy_policy(self.q_network)


def snapshot(q_network: nn.Module) -> nn.Module:
    """A frozen CPU copy of a Q-network in evaluation mode (noisy layers at their mean weights)."""
    return copy.deepcopy(q_network).to("cpu").eval().requires_grad_(False)


class OpponentSeats(Protocol):
    """What self-play needs of a vector env: the public attribute setter of Gymnasium's Sync and
    AsyncVectorEnv and of envs.LeanSyncVectorEnv (VectorEnv itself declares none)."""

    num_envs: int

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None: ...


class SelfPlay:
    """Self-play opponents for a vector env of two-player games (see the module docstring)."""

    def __init__(
        self,
        *,
        q_network: nn.Module,
        envs: OpponentSeats,
        snapshot_steps: int,
        pool_size: int,
        epsilon: float,
        seed: int,
    ) -> None:
        if snapshot_steps < 1:
            raise ValueError(f"snapshot_steps={snapshot_steps}; self-play needs snapshots at least every step")
        self.q_network, self.envs, self.snapshot_steps, self.epsilon = q_network, envs, snapshot_steps, epsilon
        pool_rng, self.player_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 23]).spawn(2))
        self.pool: OpponentPool[GreedyPlayer] = OpponentPool(pool_size, pool_rng, newest_probability=NEWEST_PROBABILITY)
        self.opponents: list[Player | None] = [None] * envs.num_envs
        self.last_step: int | None = None
        self.swaps = 0  # opponents set so far (one per episode started)

    def before_resets(self, starting: np.ndarray, env_steps: int) -> None:
        """Snapshot the online network when due; give the sub-envs ``starting`` an episode their next
        opponents (called every vector step, and with all sub-envs before the first reset)."""
        if self.last_step is None or crossed(self.last_step, env_steps, self.snapshot_steps):
            self.pool.add(GreedyPlayer(snapshot(self.q_network), epsilon=self.epsilon, rng=self.player_rng))
        self.last_step = env_steps
        if not starting.any():
            return
        for index in np.flatnonzero(starting):
            self.opponents[index] = self.pool.sample()
        self.swaps += int(np.count_nonzero(starting))
        self.envs.set_attr("opponent", list(self.opponents))

    def state_dict(self) -> dict[str, Any]:
        """The pool's snapshots (their weights, oldest first), both generators, the env step it was
        last told of (the next snapshot is due when a multiple of snapshot_steps is passed after it)
        and the opponents set so far."""
        return {
            "snapshots": [
                {name: tensor.detach().clone() for name, tensor in player.q_network.state_dict().items()}
                for player in self.pool.snapshots
            ],
            "pool_rng": self.pool.rng.bit_generator.state,
            "player_rng": self.player_rng.bit_generator.state,
            "last_step": self.last_step,
            "swaps": self.swaps,
        }

    def load_state_dict(self, state: Any, *, env_steps: int) -> None:
        """Restore a ``state_dict()`` of a run at ``env_steps``, checked first (ValueError naming what
        does not fit). None (a checkpoint from before the pool was kept) leaves the pool empty: the
        first reset snapshots the restored network."""
        if state is None:
            return
        keys = {"snapshots", "pool_rng", "player_rng", "last_step", "swaps"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"its self-play state must be a dict of {', '.join(sorted(keys))}")
        snapshots, last_step, swaps = state["snapshots"], state["last_step"], state["swaps"]
        if not isinstance(snapshots, list) or len(snapshots) > self.pool.capacity:
            raise ValueError(f"its self-play pool must be a list of at most {self.pool.capacity} snapshots")
        if not (
            (last_step is None and not snapshots) or (snapshots and is_count(last_step) and last_step <= env_steps)
        ):
            raise ValueError(
                f"its self-play pool's last env step {short_repr(last_step)} does not fit "
                f"{len(snapshots)} snapshots at env step {env_steps:,}"
            )
        if not is_count(swaps):
            raise ValueError(f"its self-play opponent count {short_repr(swaps)} must be an integer >= 0")
        for index, weights in enumerate(snapshots):
            check_module_state(self.q_network, weights, f"its self-play snapshot {index}")
        set_numpy_generator_state(self.pool.rng, state["pool_rng"])
        set_numpy_generator_state(self.player_rng, state["player_rng"])
        players = []
        for weights in snapshots:
            network = snapshot(self.q_network)
            network.load_state_dict(weights)
            players.append(GreedyPlayer(network, epsilon=self.epsilon, rng=self.player_rng))
        self.pool.clear()
        for player in players:
            self.pool.add(player)
        self.last_step, self.swaps = last_step, swaps


class BothSeats:
    """Negamax self-play: every sub-env's opponent is the learner itself (envs.games.BOTH_SEATS), set
    once before the first reset; the targets' sign comes from :func:`transition_discount`."""

    def __init__(self, envs: OpponentSeats) -> None:
        self.envs, self.applied = envs, False

    def before_resets(self, starting: np.ndarray, env_steps: int) -> None:
        if not self.applied:
            self.envs.set_attr("opponent", [BOTH_SEATS] * self.envs.num_envs)
            self.applied = True

    def state_dict(self) -> None:
        """Nothing to keep: the opponent is the learner."""
        return None

    def load_state_dict(self, state: Any, *, env_steps: int) -> None:
        if state is not None:
            raise ValueError("it holds a self-play pool, but this run is trained by negamax self-play")


def negamax(config: Config) -> bool:
    """Whether the run is a game trained by negamax self-play (config.self_play; a Config refuses
    negamax on an env that is not a two-player game)."""
    return config.self_play == "negamax"


def transition_discount(config: Config) -> float:
    """The discount a 1-step transition bootstraps with: gamma, or -gamma under negamax self-play,
    whose next position is the other player's (its best value is the mover's loss)."""
    return -config.gamma if negamax(config) else config.gamma


class MirrorBoards:
    """A board game's batches with every other transition mirrored left to right: its two boards'
    columns reversed, its action and its next position's legal moves mapped to the mirrored columns
    (envs.games.mirrored_actions). Reward, discount and termination stay: the mirrored move wins,
    draws or goes on exactly as the move did. Which transitions: those whose buffer position plus
    the update's count is odd, so every stored transition is learnt both ways round over the run
    with no generator of its own (a resumed run mirrors the same ones)."""

    def __init__(self, game: str, device: torch.device | str = "cpu") -> None:
        self.rules = LINE_GAMES[game]
        self.actions = torch.from_numpy(mirrored_actions(self.rules)).to(device)  # the batches' device

    def __call__(self, batch: Batch[torch.Tensor], update: int) -> Batch[torch.Tensor]:
        board = (self.rules.rows, self.rules.cols, 2)
        observations, next_observations = batch.observations, batch.next_observations
        if not isinstance(observations, torch.Tensor) or tuple(observations.shape[1:]) != board:
            raise ValueError(f"mirror_boards takes boards of shape {board} (rows, columns, planes)")
        assert isinstance(next_observations, torch.Tensor)
        actions = self.actions
        mirror_B = (torch.as_tensor(batch.indices, device=actions.device) + update) % 2 == 1
        mirror_B111 = mirror_B.view(-1, 1, 1, 1)
        next_legal = batch.next_legal
        if next_legal is not None:
            next_legal = torch.where(mirror_B.unsqueeze(1), next_legal[:, actions], next_legal)
        return dataclasses.replace(
            batch,
            observations=torch.where(mirror_B111, observations.flip(2), observations),
            next_observations=torch.where(mirror_B111, next_observations.flip(2), next_observations),
            actions=torch.where(mirror_B, actions[batch.actions], batch.actions),
            next_legal=next_legal,
        )


@functools.cache
def _mirror_boards(game: str, device: torch.device) -> MirrorBoards:
    return MirrorBoards(game, device)


def mirror_boards_of(config: Config, device: torch.device) -> MirrorBoards | None:
    """The run's MirrorBoards for batches on ``device``, made once (config.mirror_boards; a Config
    refuses it on an env that is not one of configs.games' board games), else None."""
    game = game_of(config.env_id)
    return _mirror_boards(game, device) if config.mirror_boards and game is not None else None


def self_play_of(config: Config, q_network: nn.Module, envs: VectorEnv) -> SelfPlay | BothSeats | None:
    """The run's self-play part, for a ``pettingzoo:<game>`` env: negamax, or the snapshot pool
    when self_play_snapshot_steps > 0."""
    if game_of(config.env_id) is None or not (negamax(config) or config.self_play_snapshot_steps):
        return None
    if not callable(getattr(envs, "set_attr", None)):
        raise TypeError(f"{type(envs).__name__} has no set_attr: self-play cannot set its sub-envs' opponents")
    if negamax(config):
        return BothSeats(cast(OpponentSeats, envs))
    return SelfPlay(
        q_network=q_network,
        envs=cast(OpponentSeats, envs),
        snapshot_steps=config.self_play_snapshot_steps,
        pool_size=config.self_play_pool_size,
        epsilon=config.self_play_epsilon,
        seed=config.seed,
    )


# --- evaluation against scripted players ---------------------------------------------------------
def scripted_players(game: str) -> dict[str, Callable[[np.random.Generator], Player]]:
    """The scripted players a game is evaluated against, by name: random always, one-ply for the
    k-in-a-row games envs.games knows, minimax where its exhaustive search fits (tic-tac-toe)."""
    players: dict[str, Callable[[np.random.Generator], Player]] = {"random": random_player}
    rules = LINE_GAMES.get(game)
    if rules is not None:
        players["one_ply"] = lambda rng: one_ply_player(rules, rng)
        if not rules.gravity and rules.rows * rules.cols <= MINIMAX_MAX_CELLS:
            players["minimax"] = lambda rng: minimax_player(rules, rng)  # ties broken at random: varied games
    return players


def game_report(
    q_network: nn.Module, game: str, *, games: int, seed: int, epsilon: float = 0.0, device: torch.device | str
) -> GameReport:
    """``games`` games in each seat against each scripted player; every player (the network's epsilon
    draws included) starts from a generator seeded ``seed``, so a report is reproducible."""
    was_training = q_network.training
    q_network.eval()
    try:
        report = {}
        for name, make_player in scripted_players(game).items():
            policy = GreedyPlayer(q_network, device=device, epsilon=epsilon, rng=np.random.default_rng(seed))
            report[name] = play_games(game, policy, make_player(np.random.default_rng(seed)), games=games, seed=seed)
        return report
    finally:
        q_network.train(was_training)


def report_eval_result(report: GameReport) -> EvalResult:
    """The games against the random player, both seats, as an evaluation: returns +1/0/-1, lengths in moves."""
    returns: list[float] = []
    lengths: list[int] = []
    for record in report["random"]:
        returns += [1.0] * record.wins + [0.0] * record.draws + [-1.0] * record.losses
        lengths += list(record.lengths)
    return EvalResult(returns=returns, lengths=lengths)


def report_scalars(report: GameReport) -> dict[str, float]:
    """``eval/vs_<player>/seat<s>/<rate>`` for TensorBoard."""
    return {
        f"eval/vs_{name}/seat{seat}/{rate}": getattr(record, rate)
        for name, records in report.items()
        for seat, record in enumerate(records)
        for rate in ("win_rate", "draw_rate", "loss_rate")
    }


def report_json(report: GameReport) -> dict[str, dict[str, dict[str, float | int]]]:
    """The report as plain data: player -> seat0/seat1 -> games, wins, draws, losses and their rates."""
    return {
        name: {
            f"seat{seat}": {
                "games": record.games,
                "wins": record.wins,
                "draws": record.draws,
                "losses": record.losses,
                "win_rate": record.win_rate,
                "draw_rate": record.draw_rate,
                "loss_rate": record.loss_rate,
            }
            for seat, record in enumerate(records)
        }
        for name, records in report.items()
    }


def report_lines(report: GameReport) -> list[str]:
    """One human line per scripted player: wins/draws/losses in each seat."""
    return [
        f"vs {name}: "
        + "; ".join(
            f"seat {seat} W/D/L {record.wins}/{record.draws}/{record.losses} (win {record.win_rate:.1%}, "
            f"loss {record.loss_rate:.1%})"
            for seat, record in enumerate(records)
        )
        for name, records in report.items()
    ]
