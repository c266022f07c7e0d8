"""How well a trained connect-four agent plays the one-move tactics, and what tactics alone score.

Against the one-ply player (wins when it can, blocks when it must, else random), a game is mostly
decided by one-move tactics: taking a win that is there, blocking the other's only winning move,
and not filling the cell under the other's winning cell. This script plays --games games per seat
against the one-ply player and, at each of the player's moves, checks the move against those three
rules (envs.games.winning_actions on the board it was given):

- win available: the mover had a winning move; taken: it played one;
- forced block: the other player had exactly one winning move and the mover none; blocked: it played there;
- gave a win: no win or threat was on the board, and the move filled the cell right under one of
  the other player's winning cells (the other then wins by playing on top).

It does so for each run directory given (its final network, model_latest.pt, acting greedily, as
evaluate.py does) and for three scripted reference players, to show what the one-ply target asks:

- one_ply: the one-ply player itself;
- tactical: takes a win, else blocks, else plays a move that gives no win, uniformly at random;
- tactical_center: the same, but among the moves that give no win it takes the one nearest the
  centre column (ties at random), the oldest piece of connect-four strategy.

    python benchmarks/games_tactics.py                       # the scripted players only
    python benchmarks/games_tactics.py runs/bench/games_connect_four_v3__s1__*  # and trained agents

Prints a table, writes benchmarks/results/games_tactics_connect_four_v3.json (or --out).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, print_table, write_json  # noqa: E402
from dqn_family.envs.games import (  # noqa: E402
    Player,
    board_planes,
    landing_cell,
    legal_actions,
    line_rules,
    one_ply_move,
    one_ply_player,
    play_games,
    winning_actions,
)

GAME = "connect_four_v3"
RULES = line_rules(GAME)
SEED = 2_024  # the games' seed (the one-ply opponent's and the scripted players' generators too)


def board_of(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(own pieces, other's pieces, occupied) as bool [rows, cols]."""
    own, other = board_planes(RULES, observation)
    return own, other, own | other


def gives_win(occupied: np.ndarray, other: np.ndarray, action: int) -> bool:
    """Whether playing ``action`` fills the cell right under a winning cell of ``other``."""
    row, col = landing_cell(RULES, occupied, action)
    if row == 0:
        return False
    above = occupied.copy()
    above[row, col] = True
    return col in winning_actions(RULES, other, above, ~above[0])


def tactical_player(rng: np.random.Generator, *, center: bool) -> Player:
    """The one-ply player's win or block, else a move that gives no win (nearest the centre, or uniform)."""

    def play(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        move = one_ply_move(RULES, observation, legal_mask, rng)
        if move is not None:
            return move
        _, other, occupied = board_of(observation)
        legal = [int(a) for a in legal_actions(legal_mask)]
        safe = [a for a in legal if not gives_win(occupied, other, a)] or legal
        if center:
            return min(safe, key=lambda a: (abs(a - RULES.cols // 2), rng.random()))
        return int(rng.choice(safe))

    return play


def scored(player: Player, counts: Counter) -> Player:
    """``player``, counting each of its moves against the three rules into ``counts``."""

    def play(observation: np.ndarray, legal_mask: np.ndarray) -> int:
        action = player(observation, legal_mask)
        own, other, occupied = board_of(observation)
        wins = winning_actions(RULES, own, occupied, legal_mask)
        threats = set(winning_actions(RULES, other, occupied, legal_mask))
        counts["moves"] += 1
        if wins:
            counts["win_available"] += 1
            counts["win_taken"] += action in wins
        elif len(threats) == 1:
            counts["forced_block"] += 1
            counts["blocked"] += action in threats
        elif not threats:
            counts["gave_win"] += gives_win(occupied, other, action)
        return action

    return play


def profile(player: Player, games: int) -> dict:
    counts: Counter = Counter()
    first, second = play_games(
        GAME, scored(player, counts), one_ply_player(RULES, np.random.default_rng(SEED)), games=games, seed=SEED
    )
    return {
        "win_rate_seat0": first.wins / games,
        "win_rate_seat1": second.wins / games,
        "loss_rate_seat0": first.losses / games,
        "loss_rate_seat1": second.losses / games,
        **{name: int(value) for name, value in counts.items()},
        "win_taken_share": counts["win_taken"] / max(counts["win_available"], 1),
        "blocked_share": counts["blocked"] / max(counts["forced_block"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", help="Connect-four run directories (their model_latest.pt).")
    parser.add_argument("--games", type=int, default=500, help="Games per seat against one-ply (default 500).")
    parser.add_argument("--out", default=f"benchmarks/results/games_tactics_{GAME}.json", help="JSON path.")
    args = parser.parse_args()
    if args.games < 1:
        parser.error("--games must be >= 1")

    players: dict[str, Player] = {
        "one_ply": one_ply_player(RULES, np.random.default_rng(SEED + 1)),
        "tactical": tactical_player(np.random.default_rng(SEED + 1), center=False),
        "tactical_center": tactical_player(np.random.default_rng(SEED + 1), center=True),
    }
    if args.run_dirs:
        import torch

        from dqn_family.evaluate import load_run
        from dqn_family.training.games import GreedyPlayer

        for run_dir in args.run_dirs:
            _, q_network = load_run(run_dir, device=torch.device("cpu"))
            players[run_dir] = GreedyPlayer(q_network.eval())

    results = {name: profile(player, args.games) for name, player in players.items()}
    print(f"\n{GAME}: {args.games:,} games per seat against the one-ply player")
    print_table(
        ["player", "wins first", "wins second", "wins taken", "blocks made", "gave a win (moves)"],
        [
            [
                name,
                f"{r['win_rate_seat0']:.1%}",
                f"{r['win_rate_seat1']:.1%}",
                f"{r['win_taken_share']:.0%} of {r['win_available']}",
                f"{r['blocked_share']:.0%} of {r['forced_block']}",
                f"{r['gave_win']} of {r['moves']}",
            ]
            for name, r in results.items()
        ],
    )
    write_json(
        args.out,
        {"game": GAME, "games_per_seat": args.games, "seed": SEED, "players": results, "machine": machine_info()},
    )


if __name__ == "__main__":
    main()
