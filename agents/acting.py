"""Acting written once: the greedy step of a Q-network that every acting path takes (the training
agents' ``act``, the Ray actors through them, ``evaluate.py`` and ``export.py --verify``), and the
single-env exploration draw of evaluation and export verification.

Feed-forward is the recurrent case with no state: ``greedy_step`` runs ``q_network(observations)``
(or the numpy fast path, agents.numpy_actor) when ``state_BS`` is None, else the recurrent
interface's ``step`` (agents.recurrent). Either way the greedy action is the argmax over the legal
actions when a mask is given (agents.masks). The network runs in whatever mode the caller set
(evaluation mode, or train mode for noisy exploration). Dictionary observations come as a dict of
arrays by key (replay.observations) and reach the network as a dict of tensors; the numpy fast path
takes plain MLPs only, so they never meet it. Shapes: B = batch, A = actions, S = state.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

from dqn_family.agents.masks import check_legal, masked_argmax
from dqn_family.agents.numpy_actor import GreedyPolicy
from dqn_family.replay.observations import as_tensors, observation_count


@torch.no_grad()
def greedy_step(
    q_network: nn.Module,
    observations: np.ndarray,
    state_BS: torch.Tensor | None = None,
    legal_BA: np.ndarray | None = None,
    *,
    device: torch.device | str,
    numpy_greedy: GreedyPolicy | None = None,
) -> tuple[np.ndarray, torch.Tensor | None]:
    """(greedy actions [B] int64, next state [B, S] or None): argmax_a Q(s, a) over each row's legal
    actions (all without ``legal_BA``, bool [B, A]); ValueError for a row with none."""
    if state_BS is None and numpy_greedy is not None:  # it checks the mask itself
        return numpy_greedy(observations, legal_BA), None
    observations_t = as_tensors(observations, device)
    next_BS = None
    if state_BS is None:
        q_BA = q_network(observations_t)
    else:
        q_BA, next_BS = cast(Any, q_network).step(observations_t, state_BS)
    if legal_BA is not None:
        check_legal(legal_BA, observation_count(observations), q_BA.shape[1])
    return masked_argmax(q_BA, legal_BA).cpu().numpy(), next_BS


def explore_action(rng: np.random.Generator, n_actions: int, legal_A: np.ndarray | None = None) -> int:
    """A uniformly random action of one env, among its legal ones (bool [A]) when a mask is given:
    one ``rng.integers`` draw either way, so that a mask changes which action, never the draws after.
    An all-True mask gives exactly the unmasked action."""
    if legal_A is None:
        return int(rng.integers(n_actions))
    legal_actions = np.flatnonzero(legal_A)
    return int(legal_actions[rng.integers(len(legal_actions))])
