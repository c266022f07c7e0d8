"""benchmarks/games_tactics.py: the three one-move rules it scores, and its scripted players."""

from collections import Counter

import numpy as np

from benchmarks.games_tactics import gives_win, profile, scored, tactical_player
from dqn_family.envs.games import one_ply_player


def board(own_cells=(), other_cells=()):
    """A connect-four observation (6x7x2, row 0 the top) with the given (row, col) pieces."""
    observation = np.zeros((6, 7, 2), np.int8)
    for row, col in own_cells:
        observation[row, col, 0] = 1
    for row, col in other_cells:
        observation[row, col, 1] = 1
    return observation


LEGAL = np.ones(7, bool)


def test_gives_win_is_filling_the_cell_under_the_others_winning_cell():
    # the other has row 4, columns 0-2 on pieces of its own in row 5; (4, 3) wins for it once (5, 3) is filled
    observation = board(
        own_cells=[(5, 4), (5, 5), (5, 6)], other_cells=[(4, 0), (4, 1), (4, 2), (5, 0), (5, 1), (5, 2)]
    )
    own, other = observation[..., 0].astype(bool), observation[..., 1].astype(bool)
    assert gives_win(own | other, other, 3)  # lands on (5, 3), under (4, 3)
    assert not gives_win(own | other, other, 4)  # lands on (4, 4): nothing above it wins
    assert not gives_win(own | other, other, 6)


def test_scored_counts_wins_taken_and_blocks_made():
    counts = Counter()
    play = scored(lambda observation, legal: 6, counts)  # always the last column
    play(board(own_cells=[(5, 0), (5, 1), (5, 2)]), LEGAL)  # win at column 3: not taken
    play(board(own_cells=[(5, 4), (5, 5)], other_cells=[(3, 6), (4, 6), (5, 6)]), LEGAL)  # block at 6: made
    assert counts == Counter(moves=2, win_available=1, forced_block=1, blocked=1, gave_win=0)


def test_scripted_players_take_wins_block_and_the_centre():
    tactical = tactical_player(np.random.default_rng(0), center=True)
    assert tactical(board(), LEGAL) == 3  # an empty board: the centre column
    assert tactical(board(own_cells=[(5, 0), (5, 1), (5, 2)], other_cells=[(4, 0), (4, 1)]), LEGAL) == 3  # the win
    assert tactical(board(other_cells=[(5, 4), (5, 5), (5, 6)], own_cells=[(4, 4), (4, 5)]), LEGAL) == 3  # the block


def test_the_one_ply_player_takes_every_win_and_makes_every_block():
    result = profile(one_ply_player("connect_four_v3", np.random.default_rng(0)), games=5)
    assert result["win_taken"] == result["win_available"] and result["blocked"] == result["forced_block"]
    assert result["win_taken_share"] == 1.0 and result["blocked_share"] == 1.0
