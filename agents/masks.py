"""Action masks: the maths every acting path and every learner shares, written once.

A mask ``legal_BA`` is bool [B, A], True where the action is legal; ``None`` means every action is
legal, and each function here then returns exactly what the unmasked code computed (no copy, no
extra work). Acting (``DQNAgent.act``, ``RecurrentAgent.act``, the numpy fast path) takes the
argmax over legal actions and explores uniformly among them; a state with no legal action is an
error there. The bootstrap targets (DQN's max, Double DQN's online argmax, C51's and QR-DQN's
greedy next action) take the mask of the next state; a terminal next state may have no legal
action at all, and its row is read as all-legal (``bootstrap_legal``), because -inf * 0 is NaN
and the (1 - terminated) factor throws that row's value away anyway.
Shapes: B = batch, A = actions.
"""

from __future__ import annotations

import numpy as np
import torch


def check_legal(legal_BA: np.ndarray, count: int, n_actions: int) -> None:
    """ValueError unless ``legal_BA`` is a bool array [count, n_actions] with a legal action in each row."""
    if not isinstance(legal_BA, np.ndarray) or legal_BA.dtype != np.bool_ or legal_BA.shape != (count, n_actions):
        if isinstance(legal_BA, np.ndarray):
            found = f"{legal_BA.dtype}{list(legal_BA.shape)}"
        else:
            found = type(legal_BA).__name__
        raise ValueError(f"an action mask must be a bool numpy array [{count}, {n_actions}], got {found}")
    if not legal_BA.any(axis=1).all():
        row = int(np.flatnonzero(~legal_BA.any(axis=1))[0])
        raise ValueError(f"action mask row {row} has no legal action (every one of its {n_actions} is False)")


def uniform_actions(uniforms_B: np.ndarray, n_actions: int, legal_BA: np.ndarray | None = None) -> np.ndarray:
    """Uniformly random actions [B] int64 from uniforms [B] in [0, 1): over all ``n_actions``, or
    over each row's legal actions (the floor(u * count)-th legal one, in action order).

    One uniform per row either way, so a mask changes which action is drawn, never what the
    generator draws next; an all-True mask gives the unmasked actions exactly."""
    if legal_BA is None:
        return (uniforms_B * n_actions).astype(np.int64)
    counts_B = legal_BA.sum(axis=1)
    ranks_B = np.minimum((uniforms_B * counts_B).astype(np.int64), counts_B - 1)
    # The action of rank r is the first with r + 1 legal actions up to it: as many come before it
    # as have at most r.
    return (legal_BA.cumsum(axis=1) <= ranks_B[:, None]).sum(axis=1).astype(np.int64)


def masked_argmax_numpy(q_BA: np.ndarray, legal_BA: np.ndarray | None) -> np.ndarray:
    """argmax_a Q(s, a) [B] over the legal actions (all of them for None); numpy's first-max rule for ties."""
    if legal_BA is None:
        return q_BA.argmax(axis=1)
    return np.where(legal_BA, q_BA, -np.inf).argmax(axis=1)


def masked_q(q_BA: torch.Tensor, legal_BA: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """Q [B, A] with illegal actions at -inf (every float dtype, bf16 and fp16 included, has it);
    ``q_BA`` itself for None. A numpy mask moves to Q's device."""
    if legal_BA is None:
        return q_BA
    legal_BA = torch.as_tensor(legal_BA, device=q_BA.device)
    return q_BA.masked_fill(~legal_BA, float("-inf"))


def masked_argmax(q_BA: torch.Tensor, legal_BA: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """argmax_a Q(s, a) [B] int64 over the legal actions (all of them for None)."""
    return masked_q(q_BA, legal_BA).argmax(dim=1)


def bootstrap_legal(next_legal_BA: torch.Tensor | None) -> torch.Tensor | None:
    """The mask a bootstrap target maximises over: rows with no legal action (terminal next states,
    padding) read as all-legal, so that their max stays finite; None stays None."""
    if next_legal_BA is None:
        return None
    return next_legal_BA | ~next_legal_BA.any(dim=1, keepdim=True)
