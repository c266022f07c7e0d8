"""QR-DQN (Dabney et al. 2018, "Distributional Reinforcement Learning with Quantile Regression").

The network outputs N quantiles theta_i of the return per action, at midpoints
tau_i = (2i + 1) / (2N); Q is their mean. Shapes: B = batch, A = actions, N = quantiles.
"""

from __future__ import annotations

import torch

from dqn_family.agents.dqn import DQNAgent
from dqn_family.agents.masks import bootstrap_legal, masked_argmax
from dqn_family.agents.networks import QNetwork
from dqn_family.replay import Batch


def quantile_midpoints(num_quantiles: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """tau_i = (2i + 1) / (2N) for i = 0 .. N-1."""
    return (2 * torch.arange(num_quantiles, device=device, dtype=torch.float32) + 1) / (2 * num_quantiles)


# Quantile Huber loss (eq. 10 of the paper), for pairwise errors u_ij = target_j - theta_i:
#   L_kappa(u) = u^2 / 2 if |u| <= kappa else kappa (|u| - kappa / 2)
#   rho_tau(u) = |tau - 1{u < 0}| * L_kappa(u) / kappa
#   loss = sum_i mean_j rho_{tau_i}(u_ij)
def quantile_huber_loss(
    quantiles_BN: torch.Tensor, targets_BM: torch.Tensor, taus_N: torch.Tensor, kappa: float = 1.0
) -> torch.Tensor:
    errors_BNM = targets_BM.unsqueeze(1) - quantiles_BN.unsqueeze(2)
    abs_errors = errors_BNM.abs()
    huber_BNM = torch.where(abs_errors <= kappa, 0.5 * errors_BNM.pow(2), kappa * (abs_errors - 0.5 * kappa))
    weight_BNM = (taus_N.view(1, -1, 1) - (errors_BNM.detach() < 0).to(errors_BNM.dtype)).abs()
    return (weight_BNM * huber_BNM / kappa).mean(dim=2).sum(dim=1)  # [B]


class QRAgent(DQNAgent):
    """Distributional DQN over quantiles."""

    # The built-in network with a distributional head: build_network refuses a custom one for this algo.
    q_network: QNetwork
    target_network: QNetwork

    @staticmethod
    def head_options(config) -> dict:
        return {**DQNAgent.head_options(config), "output": "qr", "num_outputs": config.num_quantiles}

    uses_head_outputs = True

    def loss_terms(self, batch: Batch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quantiles_BAN = self.q_network.head_outputs(batch.observations).float()  # float32 under mixed precision
        with torch.no_grad():
            next_quantiles_BAN = self.target_network.head_outputs(batch.next_observations).float()
            next_q_online_BA = self.q_network(batch.next_observations).float() if self.double else None
        return self.td_terms(
            quantiles_BAN,
            batch.actions,
            batch.rewards,
            batch.discounts,
            batch.terminated,
            next_quantiles_BAN,
            next_q_online_BA,
            batch.next_legal,
        )

    def td_terms(
        self,
        out_BAN: torch.Tensor,
        actions_B: torch.Tensor,
        rewards_B: torch.Tensor,
        discounts_B: torch.Tensor,
        terminated_B: torch.Tensor,
        next_target_BAN: torch.Tensor,
        next_online_q_BA: torch.Tensor | None,
        next_legal_BA: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The quantile Huber loss (also the priority) and the mean quantile of the taken action,
        from quantiles already computed (see DQNAgent.td_terms)."""
        batch_range = torch.arange(len(actions_B), device=actions_B.device)
        quantiles_BN = out_BAN[batch_range, actions_B]
        with torch.no_grad():
            next_q_BA = next_online_q_BA if next_online_q_BA is not None else next_target_BAN.mean(dim=2)
            next_quantiles_BN = next_target_BAN[batch_range, masked_argmax(next_q_BA, bootstrap_legal(next_legal_BA))]
            bootstrap_B1 = (discounts_B * (1.0 - terminated_B)).unsqueeze(1)
            targets_BN = rewards_B.unsqueeze(1) + bootstrap_B1 * next_quantiles_BN
        taus_N = quantile_midpoints(quantiles_BN.shape[1], device=quantiles_BN.device)
        loss_B = quantile_huber_loss(quantiles_BN, targets_BN, taus_N)
        # Replay priority: the quantile Huber loss itself. QR-DQN (Dabney et al. 2018) has no
        # prioritized replay to follow. Like C51's cross-entropy, the loss has a floor that grows
        # with the spread of the target quantiles, but unlike there no closed form (an entropy)
        # removes it: its minimum over the predicted quantiles would take a per-sample
        # optimisation. |target mean - Q| would be 0 for a prediction with the right mean and the
        # wrong shape, which the update still changes; the loss ranks by what the update reduces.
        return loss_B, loss_B.detach(), quantiles_BN.detach().mean(dim=1)
