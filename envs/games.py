"""Two-player board games (PettingZoo's classic AEC envs) as single-agent Gymnasium envs seen from
the learner's seat, the players that take the other seat, and the evaluation that plays them.

- :class:`TwoPlayerGame`: any AEC env with two agents, Discrete actions and an ``action_mask`` in
  its Dict observations (``tictactoe_v3``, ``connect_four_v3``), from one seat; the other seat is
  played by an opponent that the trainer can swap (self-play snapshots).
- Scripted players for k-in-a-row grid games (:data:`LINE_GAMES`): :func:`random_player`,
  :func:`one_ply_player`, :func:`minimax_player` (tic-tac-toe).
- :func:`play_games`: a policy's wins, draws and losses against an opponent, in each seat.
- :class:`OpponentPool`: earlier snapshots of the learner to sample self-play opponents from.

A *player* is ``(observation, legal_mask) -> action``: the board as PettingZoo gives it to the
player to move (plane 0 its own pieces, plane 1 the other's) and a bool mask of its legal actions.
Seat 0 moves first. PettingZoo is imported only when a game is made from its name.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import gymnasium as gym
import numpy as np

from dqn_family.configs.errors import UserError
from dqn_family.configs.games import LINE_GAMES, LineRules
from dqn_family.fileio import one_line

Player = Callable[[np.ndarray, np.ndarray], int]
GameSource = str | Callable[[], Any]  # a PettingZoo classic name ("tictactoe_v3") or a factory of AEC envs
SEATS = ("random", 0, 1)
BOTH_SEATS = "both"  # the opponent that is the learner itself: TwoPlayerGame alternates seats each step
MINIMAX_MAX_CELLS = 12  # the search is exhaustive: tic-tac-toe has 5,478 positions, connect four 4.5e12
_CLASSIC_NAME = re.compile(r"[a-z][a-z0-9_]*_v[0-9]+")
_INSTALL_HINT = "pip install 'dqn-family[games]'"


class GameError(UserError):
    """A game that cannot be made or played here: the message says what and what is allowed."""


def make_aec_env(game: GameSource) -> Any:
    """An AEC env from a factory, or from the name of a PettingZoo classic game (only such names are
    imported, never an arbitrary module)."""
    if not isinstance(game, str):
        return game()
    if not _CLASSIC_NAME.fullmatch(game):
        raise GameError(
            f"game {game!r} is not a PettingZoo classic name; use one like 'tictactoe_v3' or 'connect_four_v3'"
        )
    try:
        import pettingzoo
    except ImportError:
        raise GameError(f"game {game!r} needs PettingZoo, which is not installed: {_INSTALL_HINT}") from None
    if hasattr(pettingzoo, "make"):  # >= 1.27: a registry; importing the env modules is deprecated there
        from pettingzoo.env_registry.exceptions import FailedToImport, PettingZooRegistryError

        try:
            return pettingzoo.make("aec", f"classic/{game}")
        except FailedToImport as error:
            raise GameError(
                f"game {game!r} needs a package that is not installed: {one_line(error.__cause__ or error)}"
            ) from None
        except PettingZooRegistryError:
            raise GameError(
                f"PettingZoo has no classic game {game!r}; try 'tictactoe_v3' or 'connect_four_v3'"
            ) from None
    try:
        module = importlib.import_module(f"pettingzoo.classic.{game}")
    except ModuleNotFoundError as error:
        if error.name == f"pettingzoo.classic.{game}":
            raise GameError(
                f"PettingZoo has no classic game {game!r}; try 'tictactoe_v3' or 'connect_four_v3'"
            ) from None
        raise GameError(f"game {game!r} needs a package that is not installed: {one_line(error)}") from None
    return module.env()


def _learner_spaces(aec: Any, name: str) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """The (observation, action) spaces one seat sees; GameError unless the game is one this wraps."""
    agents = list(aec.possible_agents)
    if len(agents) != 2:
        raise GameError(
            f"game {name!r} has {len(agents)} agents ({', '.join(map(str, agents))}); "
            "only two-player games are supported"
        )
    for agent in agents:
        actions, observations = aec.action_space(agent), aec.observation_space(agent)
        if not isinstance(actions, gym.spaces.Discrete) or int(actions.start) != 0:
            raise GameError(
                f"game {name!r} gives {agent} actions {actions}; only Discrete(n) actions from 0 are supported"
            )
        if not isinstance(observations, gym.spaces.Dict) or "action_mask" not in observations.spaces:
            raise GameError(
                f"game {name!r} gives {agent} observations {observations} with no 'action_mask'; a Dict with an "
                "'action_mask' and an 'observation' Box is needed, as PettingZoo's classic board games give"
            )
        if not isinstance(observations.spaces.get("observation"), gym.spaces.Box):
            raise GameError(f"game {name!r} gives {agent} no 'observation' Box beside its 'action_mask'; one is needed")
    seen = [(aec.observation_space(agent), aec.action_space(agent)) for agent in agents]
    if seen[0] != seen[1]:
        raise GameError(f"the two seats of game {name!r} see different spaces; both seats must see the same ones")
    observations, actions = seen[0]
    return observations["observation"], actions


class TwoPlayerGame(gym.Env):
    """A two-player AEC game from the learner's seat: ``reset`` and ``step`` play the opponent's moves
    too, so each step is one learner move and the opponent's replies.

    Observation: the board as PettingZoo gives it to the learner (its own perspective). Reward: the
    learner's, summed over its move and the replies (+1 win, -1 loss, 0 draw at the end of
    tic-tac-toe and connect four). ``info["action_mask"]``: bool [n_actions], the learner's legal
    moves; all False once the game has terminated (no move is legal then); ``info["seat"]``: 0 if
    the learner moved first. An illegal move loses the game, as PettingZoo rules, without reaching
    the AEC env (no warning); that step's info has ``illegal_move_by`` ("learner" or "opponent").

    With the opponent :data:`BOTH_SEATS` the learner makes every move (negamax self-play): each step
    is one move, by the player to move, and returns the board, mask and ``seat`` of the next player
    to move, with the reward of the player who moved (+1 for a winning move, else 0).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, game: GameSource, *, seat: str | int = "random", opponent: Player | str | None = None) -> None:
        """``seat``: 0 or 1 for a fixed seat, "random" to draw it at each reset from the env's RNG.
        ``opponent``: plays the other seat; None for uniformly random legal moves from the env's RNG,
        :data:`BOTH_SEATS` for the learner itself (``seat`` is then the first mover's, 0)."""
        if isinstance(seat, bool) or seat not in SEATS:
            raise GameError(f"seat {seat!r} is not one of {', '.join(map(repr, SEATS))}")
        self.aec = make_aec_env(game)
        self.name = str(self.aec.metadata.get("name", game if isinstance(game, str) else "the AEC env"))
        try:
            observation_space, action_space = _learner_spaces(self.aec, self.name)
        except GameError:
            self.aec.close()
            raise
        self.observation_space, self.action_space = observation_space, action_space
        self.n_actions = int(action_space.n)
        first, second = self.aec.possible_agents
        self.agents: tuple[str, str] = (first, second)  # seat 0 moves first
        self.seat_choice = seat
        self.seat = 0
        self._opponent: Player = self._random_move
        self.both_seats = False
        self.set_opponent(opponent)
        self._over = True
        self._terminated = self._truncated = False
        self._last_reward = 0.0

    def set_opponent(self, opponent: Player | str | None) -> None:
        """Who plays the other seat from the next move on (None: uniformly random legal moves;
        :data:`BOTH_SEATS`: the learner itself, from the next reset)."""
        if isinstance(opponent, str) and opponent != BOTH_SEATS:
            raise GameError(f"opponent {opponent!r} is not a player; the only name taken is {BOTH_SEATS!r}")
        self.both_seats = opponent == BOTH_SEATS
        self._opponent = self._random_move if opponent is None or isinstance(opponent, str) else opponent

    @property
    def opponent(self) -> Player | str:
        """Who plays the other seat (:data:`BOTH_SEATS` when the learner plays both); settable (None:
        uniformly random), so that a vector env sets each sub-env's own with its public
        ``set_attr("opponent", [one per sub-env])``."""
        return BOTH_SEATS if self.both_seats else self._opponent

    @opponent.setter
    def opponent(self, opponent: Player | str | None) -> None:
        self.set_opponent(opponent)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.aec.reset(seed=seed)
        if self.both_seats:
            self.seat = 0
        else:
            self.seat = int(self.np_random.integers(2)) if self.seat_choice == "random" else int(self.seat_choice)
        self._over, self._terminated, self._truncated = False, False, False
        # the opponent's first move, if it has seat 0 (none when the learner plays both seats)
        illegal, _ = (None, 0.0) if self.both_seats else self._opponent_turns()
        if illegal:
            raise ValueError(f"the opponent's first move in game {self.name!r} was illegal; it must follow the mask")
        if self._over:
            raise GameError(
                f"game {self.name!r} ended before the learner's first move; it cannot be played from one seat"
            )
        return self._view(self.learner)[0], self._info(None)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._over:
            raise RuntimeError(f"game {self.name!r} is over (or not started): call reset() first")
        illegal = None if self._move(self.learner, int(action)) else "learner"
        reward = self._last_reward
        if self.both_seats:
            if not self._over:
                self.seat = 1 - self.seat  # the next move is the other player's, seen from its side
        elif not self._over:
            illegal, opponent_reward = self._opponent_turns()
            reward += opponent_reward
        return self._view(self.learner)[0], reward, self._terminated, self._truncated, self._info(illegal)

    def close(self) -> None:
        self.aec.close()

    @property
    def learner(self) -> str:
        return self.agents[self.seat]

    def _opponent_turns(self) -> tuple[str | None, float]:
        """Let the opponent move until it is the learner's turn or the game is over; (who moved
        illegally, the learner's reward from those moves)."""
        reward = 0.0
        while not self._over and self.aec.agent_selection != self.learner:
            agent = self.aec.agent_selection
            if not self._move(agent, int(self._opponent(*self._view(agent)))):
                return "opponent", reward + self._last_reward
            reward += self._last_reward
        return None, reward

    def _move(self, agent: str, action: int) -> bool:
        """Play ``agent``'s move; False if it was illegal (then it has lost). Sets ``_last_reward``."""
        if not 0 <= action < self.n_actions:
            raise ValueError(
                f"{agent} chose action {action} in game {self.name!r}; actions are 0..{self.n_actions - 1}"
            )
        if not self._view(agent)[1][action]:
            self._over, self._terminated = True, True
            self._last_reward = -1.0 if agent == self.learner else 1.0
            return False
        self.aec.step(action)
        self._terminated = bool(self.aec.terminations[self.learner])
        self._truncated = bool(self.aec.truncations[self.learner]) and not self._terminated
        self._over = self._terminated or self._truncated
        # PettingZoo's rewards are those of the last step: the learner's share of this move
        self._last_reward = float(self.aec.rewards[self.learner])
        return True

    def _view(self, agent: str) -> tuple[np.ndarray, np.ndarray]:
        """(board from ``agent``'s perspective, its bool legal mask) as PettingZoo gives them."""
        observed = self.aec.observe(agent)
        return np.array(observed["observation"]), np.asarray(observed["action_mask"]).astype(bool)

    def _info(self, illegal_move_by: str | None) -> dict[str, Any]:
        mask = np.zeros(self.n_actions, dtype=np.bool_) if self._terminated else self._view(self.learner)[1]
        info: dict[str, Any] = {"action_mask": mask, "seat": self.seat}
        if illegal_move_by is not None:
            info["illegal_move_by"] = illegal_move_by
        return info

    def _random_move(self, observation: np.ndarray, legal_mask: np.ndarray) -> int:
        return int(self.np_random.choice(legal_actions(legal_mask)))


# Scripted players for k-in-a-row games on a grid, read from the board planes the player is given.


def line_rules(game: str | LineRules) -> LineRules:
    if isinstance(game, LineRules):
        return game
    if game not in LINE_GAMES:
        raise GameError(f"no scripted players for game {game!r}; they know {', '.join(LINE_GAMES)}")
    return LINE_GAMES[game]


def legal_actions(legal_mask: np.ndarray) -> np.ndarray:
    actions = np.flatnonzero(legal_mask)
    if actions.size == 0:
        raise ValueError("no legal action: the mask is all False")
    return actions


def board_planes(rules: LineRules, observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(own pieces, other's pieces) as bool [rows, cols], from PettingZoo's two board planes."""
    if observation.shape != (rules.rows, rules.cols, 2):
        raise ValueError(f"board of shape {observation.shape}; these rules need ({rules.rows}, {rules.cols}, 2)")
    return observation[..., 0].astype(bool), observation[..., 1].astype(bool)


def landing_cell(rules: LineRules, occupied: np.ndarray, action: int) -> tuple[int, int]:
    """The (row, col) a legal ``action`` puts a piece on."""
    if not rules.gravity:
        row, col = divmod(action, rules.cols)
        return row, col
    return int(np.flatnonzero(~occupied[:, action])[-1]), action


def mirrored_actions(rules: LineRules) -> np.ndarray:
    """int64 [A]: the action at position a is a's left-right mirror image (the board's columns
    reversed); the map is its own inverse."""
    if rules.gravity:
        return np.arange(rules.cols - 1, -1, -1, dtype=np.int64)
    rows, cols = np.divmod(np.arange(rules.rows * rules.cols, dtype=np.int64), rules.cols)
    return rows * rules.cols + (rules.cols - 1 - cols)


def completes_line(rules: LineRules, pieces: np.ndarray, row: int, col: int) -> bool:
    """Whether a piece on the empty cell (row, col) would make ``rules.line`` of ``pieces`` in a row."""
    for d_row, d_col in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * d_row, col + sign * d_col
            while 0 <= r < rules.rows and 0 <= c < rules.cols and pieces[r, c]:
                count, r, c = count + 1, r + sign * d_row, c + sign * d_col
        if count >= rules.line:
            return True
    return False


def winning_actions(rules: LineRules, pieces: np.ndarray, occupied: np.ndarray, legal_mask: np.ndarray) -> list[int]:
    """The legal actions that would complete a line of ``pieces`` (if their owner moved now)."""
    return [
        int(a)
        for a in np.flatnonzero(legal_mask)
        if completes_line(rules, pieces, *landing_cell(rules, occupied, int(a)))
    ]


def random_player(rng: np.random.Generator) -> Player:
    """Uniformly random among legal actions."""

    def play(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        return int(rng.choice(legal_actions(legal_mask)))

    return play


def one_ply_move(
    rules: LineRules, observation: np.ndarray, legal_mask: np.ndarray, rng: np.random.Generator
) -> int | None:
    """A winning move if there is one, else a move that blocks one of the other player's winning
    moves, else None (each choice uniform among the moves that qualify)."""
    own, other = board_planes(rules, observation)
    for pieces in (own, other):
        moves = winning_actions(rules, pieces, own | other, legal_mask)
        if moves:
            return int(rng.choice(moves))
    return None


def one_ply_player(game: str | LineRules, rng: np.random.Generator) -> Player:
    """Wins when it can, else blocks a move that would win for the other player, else plays randomly
    (each choice uniform among the moves that qualify)."""
    rules = line_rules(game)

    def play(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        move = one_ply_move(rules, observation, legal_mask, rng)
        return int(rng.choice(legal_actions(legal_mask))) if move is None else move

    return play


def minimax_player(game: str | LineRules = "tictactoe_v3", rng: np.random.Generator | None = None) -> Player:
    """Perfect play by exhaustive negamax (memoised over positions), preferring sooner wins and later
    losses; ties among the best moves broken by ``rng``, or to the lowest action without one.
    Boards without gravity of at most MINIMAX_MAX_CELLS cells only (tic-tac-toe)."""
    rules = line_rules(game)
    if rules.gravity or rules.rows * rules.cols > MINIMAX_MAX_CELLS:
        raise GameError(
            f"minimax searches exhaustively: only boards without gravity of <= {MINIMAX_MAX_CELLS} cells (tictactoe_v3)"
        )

    def play(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        own, other = (_bits(plane) for plane in board_planes(rules, observation))
        actions = legal_actions(legal_mask)
        scores = np.array([_move_score(rules, own, other, int(a)) for a in actions])
        best = actions[scores == scores.max()]
        return int(best[0] if rng is None else rng.choice(best))

    return play


def minimax_value(game: str | LineRules, observation: np.ndarray) -> int:
    """The position's negamax score for the player to move: > 0 a win (1 + the empty cells left
    after it), 0 a draw, < 0 a loss."""
    rules = line_rules(game)
    own, other = (_bits(plane) for plane in board_planes(rules, observation))
    return _value(rules, own, other)


def _bits(plane: np.ndarray) -> int:
    return sum(1 << int(i) for i in np.flatnonzero(plane))


@functools.cache
def _lines(rules: LineRules) -> tuple[int, ...]:
    """Every ``line``-long run of cells as a bit mask (bit r * cols + c)."""
    runs = []
    for row in range(rules.rows):
        for col in range(rules.cols):
            for d_row, d_col in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(row + k * d_row, col + k * d_col) for k in range(rules.line)]
                if all(0 <= r < rules.rows and 0 <= c < rules.cols for r, c in cells):
                    runs.append(sum(1 << (r * rules.cols + c) for r, c in cells))
    return tuple(runs)


@functools.cache
def _value(rules: LineRules, own: int, other: int) -> int:
    cells = rules.rows * rules.cols
    return max(_move_score(rules, own, other, cell) for cell in range(cells) if not (own | other) >> cell & 1)


def _move_score(rules: LineRules, own: int, other: int, cell: int) -> int:
    mine = own | 1 << cell
    empty = rules.rows * rules.cols - bin(mine | other).count("1")
    if any(line & mine == line for line in _lines(rules) if line >> cell & 1):
        return 1 + empty
    return 0 if empty == 0 else -_value(rules, other, mine)


# Evaluation and self-play


@dataclass(frozen=True)
class GameRecord:
    """One seat's results: counts, and rates over the games played."""

    wins: int
    draws: int
    losses: int
    lengths: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """The policy's moves in each game, in the order played (play_games fills it)."""

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def win_rate(self) -> float:
        return self.wins / max(self.games, 1)

    @property
    def draw_rate(self) -> float:
        return self.draws / max(self.games, 1)

    @property
    def loss_rate(self) -> float:
        return self.losses / max(self.games, 1)


def play_games(
    game: GameSource, policy: Player, opponent: Player, *, games: int, seed: int
) -> tuple[GameRecord, GameRecord]:
    """``games`` games of ``policy`` against ``opponent`` in each seat; (seat 0's record, seat 1's).
    A game is won, drawn or lost by the sign of the policy's total reward (an illegal move loses).
    Game i in seat s is reset with seed ``seed + s * games + i``, so the results are the same on
    every call whose players are deterministic or seeded alike (scripted players: a fresh
    ``np.random.default_rng(seed)`` each time)."""
    if games < 1:
        raise GameError(f"games={games}; at least 1 game per seat is needed")
    records = []
    for seat in (0, 1):
        env = TwoPlayerGame(game, seat=seat, opponent=opponent)
        outcomes, lengths = {1: 0, 0: 0, -1: 0}, []
        for i in range(games):
            observation, info = env.reset(seed=seed + seat * games + i)
            total, over, moves = 0.0, False, 0
            while not over:
                observation, reward, terminated, truncated, info = env.step(policy(observation, info["action_mask"]))
                total, over, moves = total + float(reward), terminated or truncated, moves + 1
            outcomes[int(np.sign(total))] += 1
            lengths.append(moves)
        env.close()
        records.append(GameRecord(wins=outcomes[1], draws=outcomes[0], losses=outcomes[-1], lengths=tuple(lengths)))
    return records[0], records[1]


Snapshot = TypeVar("Snapshot")


class OpponentPool(Generic[Snapshot]):
    """The last ``capacity`` snapshots of the learner (callables, state_dicts: anything), for self-play.

    ``sample()`` returns the newest snapshot with probability ``newest_probability``, else one of
    all held (the newest included) uniformly: mostly the current strength, sometimes an older style
    of play, so the learner does not forget how to beat it. Snapshots are kept as given: add a copy
    (e.g. a state_dict of cloned tensors), not the live network."""

    def __init__(self, capacity: int, rng: np.random.Generator, *, newest_probability: float = 0.5) -> None:
        if capacity < 1:
            raise GameError(f"opponent pool capacity {capacity}; it must hold at least 1 snapshot")
        if not 0.0 <= newest_probability <= 1.0:
            raise GameError(f"newest_probability {newest_probability}; it must be in [0, 1]")
        self._snapshots: deque[Snapshot] = deque(maxlen=capacity)
        self.rng = rng
        self.newest_probability = newest_probability

    def add(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the newest; the oldest goes once ``capacity`` are held."""
        self._snapshots.append(snapshot)

    def clear(self) -> None:
        """Hold no snapshot (before re-adding a saved pool)."""
        self._snapshots.clear()

    def sample(self) -> Snapshot:
        if not self._snapshots:
            raise ValueError("the opponent pool is empty: add() a snapshot first")
        if self.rng.random() < self.newest_probability:
            return self._snapshots[-1]
        return self._snapshots[int(self.rng.integers(len(self._snapshots)))]

    @property
    def capacity(self) -> int:
        """The most snapshots held."""
        return int(self._snapshots.maxlen or 0)

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        """Held snapshots, oldest first (to save; re-add them in this order to restore)."""
        return tuple(self._snapshots)

    def __len__(self) -> int:
        return len(self._snapshots)
