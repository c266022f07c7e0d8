"""C51 (Bellemare et al. 2017, "A Distributional Perspective on Reinforcement Learning").

The network outputs, per action, logits over K atoms z_k spread evenly on [v_min, v_max]. The
loss is the cross-entropy between the projected target distribution and the predicted one; with
``dueling``, ``noisy``, ``prioritized``, ``double`` and ``n_step`` this is Rainbow
(Hessel et al. 2018), whose prioritized replay uses the KL divergence (see ``kl_divergence``).
Shapes: B = batch, A = actions, K = atoms.
"""

from __future__ import annotations

import torch

from dqn_family.agents.dqn import DQNAgent
from dqn_family.agents.masks import bootstrap_legal, masked_argmax
from dqn_family.agents.networks import QNetwork
from dqn_family.replay import Batch


# Categorical projection of the Bellman update onto the fixed support (Algorithm 1 of the paper):
#   Tz_j = clamp(r + discount * (1 - terminated) * z_j, v_min, v_max)
#   b_j  = (Tz_j - v_min) / dz,   l = floor(b_j),   u = ceil(b_j),   dz = (v_max - v_min) / (K - 1)
#   m_l += p_j * (u - b_j),   m_u += p_j * (b_j - l)     (when b_j is an atom, l = u gets all of p_j)
def categorical_projection(
    rewards_B: torch.Tensor,
    discounts_B: torch.Tensor,
    terminated_B: torch.Tensor,
    next_probs_BK: torch.Tensor,
    support_K: torch.Tensor,
) -> torch.Tensor:
    num_atoms = support_K.shape[0]
    v_min, v_max = support_K[0], support_K[-1]
    delta_z = (v_max - v_min) / (num_atoms - 1)
    bootstrap_B1 = (discounts_B * (1.0 - terminated_B)).unsqueeze(1)
    target_z_BK = (rewards_B.unsqueeze(1) + bootstrap_B1 * support_K).clamp(v_min, v_max)
    b_BK = ((target_z_BK - v_min) / delta_z).clamp(0, num_atoms - 1)
    lower_BK, upper_BK = b_BK.floor().long(), b_BK.ceil().long()
    lower_weight_BK = (upper_BK - b_BK) + (upper_BK == lower_BK).to(b_BK.dtype)
    upper_weight_BK = b_BK - lower_BK
    projected_BK = torch.zeros_like(next_probs_BK)
    projected_BK.scatter_add_(1, lower_BK, next_probs_BK * lower_weight_BK)
    projected_BK.scatter_add_(1, upper_BK, next_probs_BK * upper_weight_BK)
    return projected_BK


# Replay priority (Hessel et al. 2018, section "Prioritized replay"): the KL divergence from the
# projected target m to the prediction p,
#   KL(m || p) = sum_k m_k ln m_k - sum_k m_k ln p_k = cross-entropy(m, p) - entropy(m)    (0 ln 0 = 0).
# The loss stays the cross-entropy: its gradient in p is the KL's (m does not depend on the online
# network's weights). As a priority the two differ: the entropy of m varies from sample to sample
# (a reward landing between two atoms splits the mass, one on an atom does not), so cross-entropy
# would favour transitions whose targets are spread out however well they are already predicted;
# KL is 0 exactly when the prediction matches the target.
def kl_divergence(target_BK: torch.Tensor, log_probs_BK: torch.Tensor) -> torch.Tensor:
    return (torch.special.xlogy(target_BK, target_BK) - target_BK * log_probs_BK).sum(dim=1).clamp(min=0.0)


class C51Agent(DQNAgent):
    """Distributional DQN over a categorical support."""

    # The built-in network with a distributional head: build_network refuses a custom one for this algo.
    q_network: QNetwork
    target_network: QNetwork

    @staticmethod
    def head_options(config) -> dict:
        support = torch.linspace(config.v_min, config.v_max, config.num_atoms)
        return {**DQNAgent.head_options(config), "output": "c51", "num_outputs": config.num_atoms, "support": support}

    uses_head_outputs = True

    def loss_terms(self, batch: Batch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits_BAK = self.q_network.head_outputs(batch.observations).float()  # float32 under mixed precision
        with torch.no_grad():
            next_logits_BAK = self.target_network.head_outputs(batch.next_observations).float()
            next_q_online_BA = self.q_network(batch.next_observations).float() if self.double else None
        return self.td_terms(
            logits_BAK,
            batch.actions,
            batch.rewards,
            batch.discounts,
            batch.terminated,
            next_logits_BAK,
            next_q_online_BA,
            batch.next_legal,
        )

    def td_terms(
        self,
        out_BAK: torch.Tensor,
        actions_B: torch.Tensor,
        rewards_B: torch.Tensor,
        discounts_B: torch.Tensor,
        terminated_B: torch.Tensor,
        next_target_BAK: torch.Tensor,
        next_online_q_BA: torch.Tensor | None,
        next_legal_BA: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The cross-entropy to the projected target (loss), its KL divergence (priority) and the
        expected value of the taken action, from logits already computed (see DQNAgent.td_terms)."""
        support_K = self.q_network.support
        batch_range = torch.arange(len(actions_B), device=support_K.device)
        log_probs_BK = out_BAK[batch_range, actions_B].log_softmax(dim=1)
        with torch.no_grad():
            next_probs_BAK = next_target_BAK.softmax(dim=2)
            next_q_BA = next_online_q_BA if next_online_q_BA is not None else (next_probs_BAK * support_K).sum(dim=2)
            next_probs_BK = next_probs_BAK[batch_range, masked_argmax(next_q_BA, bootstrap_legal(next_legal_BA))]
            target_BK = categorical_projection(rewards_B, discounts_B, terminated_B, next_probs_BK, support_K)
        loss_B = -(target_BK * log_probs_BK).sum(dim=1)
        q_B = (log_probs_BK.detach().exp() * support_K).sum(dim=1)
        return loss_B, kl_divergence(target_BK, log_probs_BK.detach()), q_B
