"""Two-player games from one seat (envs/games.py) on PettingZoo's tic-tac-toe and connect four:
rewards and masks on scripted move sequences, the scripted players on hand-built boards, their
rules checked against PettingZoo's own, evaluation in each seat, the opponent pool, refusals.

Boards are written as rows of 'x' (the player to move), 'o' (the other player) and '.' (empty).
Tic-tac-toe's action i is the cell at row i // 3, column i % 3 of the observation; connect four's
action is a column."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from dqn_family.envs.games import (
    BOTH_SEATS,
    LINE_GAMES,
    GameError,
    GameRecord,
    OpponentPool,
    Player,
    TwoPlayerGame,
    make_aec_env,
    minimax_player,
    minimax_value,
    mirrored_actions,
    one_ply_player,
    play_games,
    random_player,
    winning_actions,
)

pettingzoo = pytest.importorskip("pettingzoo")

TICTACTOE, CONNECT_FOUR = "tictactoe_v3", "connect_four_v3"
# A drawn tic-tac-toe, seat 0 ('x') and seat 1 ('o') alternating: x o x / x o o / o x x
DRAW_SEAT0, DRAW_SEAT1 = [0, 8, 7, 2, 3], [4, 1, 6, 5]


def scripted(moves: Iterable[int]) -> Player:
    """A player that plays ``moves`` in order, whatever the board."""
    remaining = iter(moves)
    return lambda observation, legal_mask: next(remaining)


def board(*rows: str) -> np.ndarray:
    """Observation planes [rows, cols, 2] from rows like 'x o .' (plane 0: 'x', plane 1: 'o')."""
    cells = np.array([row.split() for row in rows])
    return np.stack([cells == "x", cells == "o"], axis=-1).astype(np.int8)


def legal(observation: np.ndarray, game: str) -> np.ndarray:
    """The legal mask a board implies: empty cells (tic-tac-toe) or columns with room (connect four)."""
    empty = observation.sum(axis=-1) == 0
    return empty[0] if LINE_GAMES[game].gravity else empty.reshape(-1)


def play_through(env: TwoPlayerGame, learner_moves: list[int]) -> list[tuple[float, bool]]:
    """(reward, terminated) of each learner move, from a reset."""
    env.reset(seed=0)
    return [tuple(env.step(action)[1:3]) for action in learner_moves]


# Rewards, seats, masks


@pytest.mark.parametrize(
    ("seat", "learner", "opponent", "final_reward"),
    [
        (0, [0, 1, 2], [3, 4], 1.0),  # x takes the top row
        (0, [0, 1, 8], [3, 4, 5], -1.0),  # o takes the middle row
        (1, [3, 4, 5], [0, 1, 8], 1.0),
        (1, [3, 4], [0, 1, 2], -1.0),  # x takes the top row
        (0, DRAW_SEAT0, DRAW_SEAT1, 0.0),
        (1, DRAW_SEAT1, DRAW_SEAT0, 0.0),
    ],
)
def test_two_player_game_rewards_the_learner_at_the_end_from_each_seat(seat, learner, opponent, final_reward):
    env = TwoPlayerGame(TICTACTOE, seat=seat, opponent=scripted(opponent))
    steps = play_through(env, learner)
    assert steps[-1] == (final_reward, True)
    assert all(step == (0.0, False) for step in steps[:-1])


def test_two_player_game_second_seat_sees_the_opponents_first_move():
    env = TwoPlayerGame(TICTACTOE, seat=1, opponent=scripted([4]))
    observation, info = env.reset(seed=0)
    assert info["seat"] == 1 and env.learner == "player_2"
    np.testing.assert_array_equal(observation, board(". . .", ". o .", ". . ."))  # its own pieces in plane 0
    np.testing.assert_array_equal(info["action_mask"], [True] * 4 + [False] + [True] * 4)
    assert info["action_mask"].dtype == np.bool_


def test_two_player_game_observation_is_from_the_learners_perspective_after_each_step():
    env = TwoPlayerGame(TICTACTOE, seat=0, opponent=scripted([4]))
    env.reset(seed=0)
    observation, *_ = env.step(0)
    np.testing.assert_array_equal(observation, board("x . .", ". o .", ". . ."))


@pytest.mark.parametrize("game", [TICTACTOE, CONNECT_FOUR])
@pytest.mark.parametrize("seat", [0, 1])
def test_two_player_game_masks_are_the_legal_moves_and_empty_at_the_end(game, seat):
    env = TwoPlayerGame(game, seat=seat)  # a random opponent from the env's RNG
    rng = np.random.default_rng(seat)
    for episode in range(10):
        observation, info = env.reset(seed=episode)
        terminated = False
        while not terminated:
            np.testing.assert_array_equal(info["action_mask"], legal(observation, game))
            observation, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            assert not truncated
        assert not info["action_mask"].any()


def test_two_player_game_random_seat_draws_both_seats_reproducibly():
    def seats(seed: int) -> list[int]:
        env = TwoPlayerGame(TICTACTOE, seat="random")
        return [env.reset(seed=seed)[1]["seat"]] + [env.reset()[1]["seat"] for _ in range(19)]

    assert seats(3) == seats(3)
    assert set(seats(3)) == {0, 1}


def test_two_player_game_illegal_learner_move_loses():
    env = TwoPlayerGame(TICTACTOE, seat=1, opponent=scripted([4]))
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(4)  # the opponent's cell
    assert (reward, terminated, truncated, info["illegal_move_by"]) == (-1.0, True, False, "learner")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_two_player_game_illegal_opponent_move_wins_for_the_learner():
    env = TwoPlayerGame(TICTACTOE, seat=0, opponent=scripted([0]))
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(0)
    assert (reward, terminated, info["illegal_move_by"]) == (1.0, True, "opponent")


def test_two_player_game_set_opponent_takes_over_from_the_next_move():
    env = TwoPlayerGame(TICTACTOE, seat=0, opponent=scripted([8]))
    env.reset(seed=0)
    env.step(0)
    env.set_opponent(scripted([6]))
    observation, *_ = env.step(1)
    np.testing.assert_array_equal(observation, board("x x .", ". . .", "o . o"))


def test_two_player_game_both_seats_alternates_the_mover_and_rewards_the_winning_move():
    env = TwoPlayerGame(TICTACTOE, opponent=BOTH_SEATS)
    _, info = env.reset(seed=0)
    assert info["seat"] == 0
    observation, reward, terminated, _, info = env.step(0)
    # the next mover, seat 1, sees seat 0's piece as the other player's
    np.testing.assert_array_equal(observation, board("o . .", ". . .", ". . ."))
    assert (reward, terminated, info["seat"]) == (0.0, False, 1)
    steps = [env.step(action) for action in (3, 1, 4)]
    assert [(s[1], s[2], s[4]["seat"]) for s in steps] == [(0.0, False, 0), (0.0, False, 1), (0.0, False, 0)]
    observation, reward, terminated, _, info = env.step(2)  # seat 0 completes the top row
    assert (reward, terminated) == (1.0, True) and not info["action_mask"].any()
    np.testing.assert_array_equal(observation, board("x x x", "o o .", ". . ."))  # the winner's view


def test_two_player_game_reports_both_seats_as_its_opponent_and_refuses_other_names():
    env = TwoPlayerGame(TICTACTOE)
    env.opponent = BOTH_SEATS
    assert env.opponent == BOTH_SEATS
    with pytest.raises(GameError, match="opponent 'self' is not a player; the only name taken is 'both'"):
        env.set_opponent("self")


def test_two_player_game_both_seats_draws_with_no_reward():
    env = TwoPlayerGame(TICTACTOE, opponent=BOTH_SEATS)
    env.reset(seed=0)
    moves = [move for pair in zip(DRAW_SEAT0, DRAW_SEAT1 + [None]) for move in pair if move is not None]
    steps = [env.step(action)[1:3] for action in moves]
    assert steps == [(0.0, False)] * 8 + [(0.0, True)]


def test_two_player_game_passes_gymnasiums_env_checker():
    check_env(TwoPlayerGame(CONNECT_FOUR, seat="random"), skip_render_check=True)


def test_two_player_game_takes_a_factory_of_aec_envs():
    env = TwoPlayerGame(lambda: pettingzoo.make("aec", "classic/tictactoe_v3"), seat=0)
    assert env.name == TICTACTOE and env.observation_space.shape == (3, 3, 2) and env.action_space.n == 9


def test_make_aec_env_imports_the_module_without_the_registry(monkeypatch):
    monkeypatch.delattr(pettingzoo, "make")  # PettingZoo < 1.27 has no registry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # >= 1.27 deprecates this way
        assert make_aec_env(CONNECT_FOUR).metadata["name"] == CONNECT_FOUR


# The scripted players' rules against PettingZoo's


def after_moves(game: str, moves: list[int]) -> object:
    """A fresh AEC env with ``moves`` played (copy.deepcopy of a PettingZoo env is not a copy of its
    state: EzPickle rebuilds it from its constructor's arguments)."""
    aec = make_aec_env(game)
    aec.reset(seed=0)
    for move in moves:
        aec.step(move)
    return aec


@pytest.mark.parametrize(("game", "games"), [(TICTACTOE, 8), (CONNECT_FOUR, 3)])
def test_winning_actions_agree_with_pettingzoo_on_random_games(game, games):
    rng = np.random.default_rng(0)
    rules = LINE_GAMES[game]
    wins_seen = 0
    for _ in range(games):
        moves: list[int] = []
        aec = after_moves(game, moves)
        while not any(aec.terminations.values()):
            agent = aec.agent_selection
            observed = aec.observe(agent)
            own, other = observed["observation"][..., 0] == 1, observed["observation"][..., 1] == 1
            predicted = winning_actions(rules, own, own | other, observed["action_mask"])
            for action in np.flatnonzero(observed["action_mask"]):
                after = after_moves(game, [*moves, int(action)])
                assert (int(action) in predicted) == (after.rewards[agent] == 1), (game, moves, action)
            wins_seen += len(predicted)
            moves.append(int(rng.choice(np.flatnonzero(observed["action_mask"]))))
            aec.step(moves[-1])
    assert wins_seen > 0


# One-ply


@pytest.mark.parametrize(
    ("game", "mirrored"), [(TICTACTOE, [2, 1, 0, 5, 4, 3, 8, 7, 6]), (CONNECT_FOUR, [6, 5, 4, 3, 2, 1, 0])]
)
def test_mirrored_actions_reverse_the_columns(game, mirrored):
    assert mirrored_actions(LINE_GAMES[game]).tolist() == mirrored


@pytest.mark.parametrize(("game", "moves"), [(TICTACTOE, [0, 4, 5, 7]), (CONNECT_FOUR, [0, 3, 3, 6, 1, 2, 5, 5, 5])])
def test_mirrored_moves_make_the_mirrored_board_and_legal_moves_in_pettingzoo(game, moves):
    """Playing each move's mirror image gives PettingZoo's board with its columns reversed, and its
    legal moves mapped: what MirrorBoards assumes of a stored transition."""
    mirror = mirrored_actions(LINE_GAMES[game])
    seen = []
    for sequence in (moves, [int(mirror[action]) for action in moves]):
        aec = make_aec_env(game)
        aec.reset(seed=0)
        for action in sequence:
            aec.step(action)
        seen.append(aec.observe(aec.agent_selection))
    board, mirrored_board = seen[0]["observation"], seen[1]["observation"]
    assert board.any() and not np.array_equal(board, board[:, ::-1])  # the mirror image is another board
    np.testing.assert_array_equal(mirrored_board, board[:, ::-1])
    np.testing.assert_array_equal(seen[1]["action_mask"], seen[0]["action_mask"][mirror])


def test_one_ply_takes_an_immediate_win_before_blocking():
    player = one_ply_player(TICTACTOE, np.random.default_rng(0))
    position = board("x x .", "o o .", ". . .")
    assert player(position, legal(position, TICTACTOE)) == 2


def test_one_ply_blocks_an_immediate_threat():
    player = one_ply_player(TICTACTOE, np.random.default_rng(0))
    position = board("x . .", "o o .", "x . .")
    assert player(position, legal(position, TICTACTOE)) == 5


def test_one_ply_blocks_a_vertical_threat_in_connect_four():
    player = one_ply_player(CONNECT_FOUR, np.random.default_rng(0))
    position = board(*[". . . . . . ."] * 3, ". . . o . . .", ". . . o . . .", "x x . o . . x")
    assert player(position, legal(position, CONNECT_FOUR)) == 3


def test_one_ply_wins_where_the_piece_lands_in_connect_four():
    player = one_ply_player(CONNECT_FOUR, np.random.default_rng(0))
    position = board(*[". . . . . . ."] * 4, "o o . . . . .", "x x x . . . o")
    assert player(position, legal(position, CONNECT_FOUR)) == 3


def test_winning_actions_count_the_cell_a_piece_drops_to():
    # x x x on row 4 and column 3 empty: a piece there lands on row 5, which wins nothing
    position = board(*[". . . . . . ."] * 4, "x x x . . . .", "o o o . . . x")
    own, other = position[..., 0] == 1, position[..., 1] == 1
    assert winning_actions(LINE_GAMES[CONNECT_FOUR], own, own | other, legal(position, CONNECT_FOUR)) == []
    assert winning_actions(LINE_GAMES[CONNECT_FOUR], other, own | other, legal(position, CONNECT_FOUR)) == [3]


def test_one_ply_plays_a_legal_move_when_nothing_is_at_stake():
    player = one_ply_player(TICTACTOE, np.random.default_rng(0))
    position = board("x . .", ". o .", ". . .")
    moves = {player(position, legal(position, TICTACTOE)) for _ in range(50)}
    assert moves == {1, 2, 3, 5, 6, 7, 8}


# Minimax


def test_minimax_values_the_empty_board_as_a_draw():
    assert minimax_value(TICTACTOE, board(". . .", ". . .", ". . .")) == 0


def test_minimax_prefers_the_sooner_win():
    # x wins now at 2 (score 1 + 4 empty cells left) rather than later
    position = board("x x .", "o o .", ". . .")
    assert minimax_player(TICTACTOE)(position, legal(position, TICTACTOE)) == 2
    assert minimax_value(TICTACTOE, position) == 5


def test_minimax_blocks_a_threat():
    position = board("x . .", "o o .", "x . .")
    assert minimax_player(TICTACTOE)(position, legal(position, TICTACTOE)) == 5


def test_minimax_answers_a_corner_opening_in_the_centre():
    # every other reply to a corner opening loses to perfect play
    position = board("o . .", ". . .", ". . .")
    assert minimax_player(TICTACTOE)(position, legal(position, TICTACTOE)) == 4


@pytest.mark.parametrize("seed", [0, 1])
def test_minimax_never_loses_to_random_in_either_seat(seed):
    records = play_games(
        TICTACTOE,
        minimax_player(rng=np.random.default_rng(seed)),
        random_player(np.random.default_rng(seed + 10)),
        games=200,
        seed=seed,
    )
    assert [record.losses for record in records] == [0, 0]
    assert all(record.wins > 100 for record in records)


@pytest.mark.parametrize("rng", [None, np.random.default_rng(0)])
def test_minimax_draws_against_itself(rng):
    records = play_games(
        TICTACTOE, minimax_player(rng=rng), minimax_player(rng=np.random.default_rng(1)), games=20, seed=0
    )
    assert records == (GameRecord(wins=0, draws=20, losses=0), GameRecord(wins=0, draws=20, losses=0))


def test_minimax_never_loses_to_one_ply():
    one_ply = one_ply_player(TICTACTOE, np.random.default_rng(0))
    records = play_games(TICTACTOE, minimax_player(rng=np.random.default_rng(1)), one_ply, games=50, seed=0)
    assert [record.losses for record in records] == [0, 0]


# Evaluation


def test_play_games_is_deterministic_given_seeded_players():
    def run() -> tuple[GameRecord, GameRecord]:
        policy = one_ply_player(CONNECT_FOUR, np.random.default_rng(0))
        return play_games(CONNECT_FOUR, policy, random_player(np.random.default_rng(1)), games=20, seed=5)

    first = run()
    assert first == run()
    assert [record.games for record in first] == [20, 20]


def test_play_games_counts_by_seat():
    def first_free(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        return int(np.flatnonzero(legal_mask)[0])

    # first-free against itself: x (seat 0) takes 0, 2, 4, 6 and wins on the 2-4-6 diagonal
    records = play_games(TICTACTOE, first_free, first_free, games=3, seed=0)
    assert records == (GameRecord(wins=3, draws=0, losses=0), GameRecord(wins=0, draws=0, losses=3))
    assert records[0].win_rate == 1.0 and records[1].loss_rate == 1.0


def test_game_record_rates():
    record = GameRecord(wins=2, draws=1, losses=1)
    assert (record.games, record.win_rate, record.draw_rate, record.loss_rate) == (4, 0.5, 0.25, 0.25)


# Opponent pool


def test_opponent_pool_keeps_the_last_snapshots():
    pool: OpponentPool[str] = OpponentPool(2, np.random.default_rng(0))
    for name in ("a", "b", "c"):
        pool.add(name)
    assert pool.snapshots == ("b", "c") and len(pool) == 2


def test_opponent_pool_samples_the_newest_with_probability_one():
    pool: OpponentPool[str] = OpponentPool(3, np.random.default_rng(0), newest_probability=1.0)
    for name in ("a", "b", "c"):
        pool.add(name)
    assert {pool.sample() for _ in range(20)} == {"c"}


def test_opponent_pool_samples_uniformly_with_probability_zero():
    pool: OpponentPool[str] = OpponentPool(3, np.random.default_rng(0), newest_probability=0.0)
    for name in ("a", "b", "c"):
        pool.add(name)
    draws = [pool.sample() for _ in range(3000)]
    assert all(abs(draws.count(name) / 3000 - 1 / 3) < 0.05 for name in ("a", "b", "c"))


def test_opponent_pool_newest_share_is_p_plus_the_uniform_share():
    pool: OpponentPool[str] = OpponentPool(4, np.random.default_rng(0), newest_probability=0.5)
    for name in ("a", "b", "c", "d"):
        pool.add(name)
    draws = [pool.sample() for _ in range(4000)]
    assert abs(draws.count("d") / 4000 - (0.5 + 0.5 / 4)) < 0.03


# Refusals


class FakeAEC:
    """Just enough of an AEC env for the constructor's checks."""

    metadata = {"name": "fake_v0"}

    def __init__(self, agents: list[str], actions: gym.Space, observations: gym.Space) -> None:
        self.possible_agents = agents
        self._actions, self._observations = actions, observations
        self.closed = False

    def action_space(self, agent: str) -> gym.Space:
        return self._actions

    def observation_space(self, agent: str) -> gym.Space:
        return self._observations

    def close(self) -> None:
        self.closed = True


BOARD = gym.spaces.Box(0, 1, (3, 3, 2), np.int8)
MASKED = gym.spaces.Dict({"observation": BOARD, "action_mask": gym.spaces.Box(0, 1, (9,), np.int8)})


@pytest.mark.parametrize(
    ("aec", "message"),
    [
        (FakeAEC(["a", "b", "c"], gym.spaces.Discrete(9), MASKED), "has 3 agents .*only two-player games"),
        (FakeAEC(["a", "b"], gym.spaces.Box(-1, 1, (2,)), MASKED), "actions Box.*only Discrete"),
        (FakeAEC(["a", "b"], gym.spaces.Discrete(9, start=1), MASKED), "only Discrete\\(n\\) actions from 0"),
        (FakeAEC(["a", "b"], gym.spaces.Discrete(9), BOARD), "no 'action_mask'.*is needed"),
    ],
)
def test_two_player_game_refuses_games_it_cannot_play(aec, message):
    with pytest.raises(GameError, match=message) as error:
        TwoPlayerGame(lambda: aec)
    assert "\n" not in str(error.value) and aec.closed


def test_two_player_game_refuses_a_real_game_without_masks():
    with pytest.raises(GameError, match="rps_v2.*no 'action_mask'"):
        TwoPlayerGame("rps_v2")


@pytest.mark.parametrize("seat", ["left", 2, True])
def test_two_player_game_refuses_a_seat_it_does_not_know(seat):
    with pytest.raises(GameError, match="seat .* is not one of 'random', 0, 1"):
        TwoPlayerGame(TICTACTOE, seat=seat)


@pytest.mark.parametrize(("name", "message"), [("nope_v1", "no classic game"), ("os.path", "not a PettingZoo classic")])
def test_make_aec_env_refuses_names_it_does_not_know(name, message):
    with pytest.raises(GameError, match=message):
        make_aec_env(name)


def test_scripted_players_refuse_games_they_do_not_know():
    with pytest.raises(GameError, match="no scripted players for game 'chess_v6'"):
        one_ply_player("chess_v6", np.random.default_rng(0))
    with pytest.raises(GameError, match="minimax searches exhaustively"):
        minimax_player(CONNECT_FOUR)


@pytest.mark.parametrize(("capacity", "newest"), [(0, 0.5), (2, 1.5)])
def test_opponent_pool_refuses_bad_settings(capacity, newest):
    with pytest.raises(GameError):
        OpponentPool(capacity, np.random.default_rng(0), newest_probability=newest)


def test_opponent_pool_refuses_to_sample_when_empty():
    with pytest.raises(ValueError, match="empty"):
        OpponentPool(2, np.random.default_rng(0)).sample()
