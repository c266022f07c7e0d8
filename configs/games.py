"""The k-in-a-row board games on a grid that the scripted players (envs.games) and board mirroring
(training.games) know: plain data, so that a Config can check a game name without importing
the envs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LineRules:
    """A k-in-a-row game on a grid: a move places a piece; ``line`` in a row (across, down or
    diagonal) wins; a full board draws."""

    rows: int
    cols: int
    line: int
    gravity: bool
    """True: an action is a column and the piece drops to its lowest empty cell (connect four);
    False: an action is a cell, row-major (tic-tac-toe)."""


LINE_GAMES: dict[str, LineRules] = {
    "tictactoe_v3": LineRules(rows=3, cols=3, line=3, gravity=False),
    "connect_four_v3": LineRules(rows=6, cols=7, line=4, gravity=True),
}
