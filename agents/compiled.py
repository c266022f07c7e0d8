"""One gradient step compiled as a single graph (config ``compile``).

Eager PyTorch runs an update as ~60 small ops, each with ~10 us of dispatch overhead on a CPU, and
autograd and the optimizer add their own Python on top. Here the whole step (forward, TD target,
loss, gradients through ``torch.func``, gradient clipping and Adam's arithmetic) is one function
that ``torch.compile`` turns into one graph: on this project's 2-core CPU an update of CleanRL's
120-84 network on a batch of 128 drops from ~970 us to ~480 us (benchmarks/speed.py). The agent's
own ``loss_terms`` is traced, so every learner (DQN, C51, QR-DQN, double, dueling, noisy) gets it
unchanged.

Adam's state lives where ``torch.optim.Adam`` keeps it (``optimizer.state[p]``: ``step``,
``exp_avg``, ``exp_avg_sq``), so checkpoints are the same with and without compiling and a run can
resume either way. The maths is Adam's (Kingma & Ba 2015) as torch implements it; the compiled
kernels round differently in the last bits, so results match eager to ~1e-6, not bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from dqn_family.agents.precision import autocast
from dqn_family.replay import Batch

if TYPE_CHECKING:
    from dqn_family.agents.dqn import DQNAgent


class _LossOf(nn.Module):
    """The agent's loss as a module whose only submodule is the online network, so that
    ``functional_call`` can swap in the parameters ``torch.func`` differentiates."""

    agent: DQNAgent

    def __init__(self, agent: DQNAgent) -> None:
        super().__init__()
        self.q_network = agent.q_network
        self.__dict__["agent"] = agent  # a plain reference: the target network is not differentiated

    def forward(self, batch: Batch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.agent.loss_terms(batch)


class CompiledUpdate:
    """``agent.update``'s arithmetic as one compiled graph; call it with a batch of tensors."""

    def __init__(self, agent: DQNAgent) -> None:
        optimizer = agent.optimizer
        if not isinstance(optimizer, torch.optim.Adam) or len(optimizer.param_groups) != 1:
            raise ValueError("the compiled update implements Adam with one parameter group")
        group = optimizer.param_groups[0]
        if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
            raise ValueError("the compiled update implements plain Adam (no amsgrad, weight decay or maximize)")
        self.agent = agent
        self.loss_of = _LossOf(agent)
        self.names = [f"q_network.{name}" for name, _ in agent.q_network.named_parameters()]
        self.parameters: list[torch.Tensor] = list(agent.q_network.parameters())
        # On CUDA, "reduce-overhead" also replays the graph as a CUDA graph.
        mode = "reduce-overhead" if agent.device.type == "cuda" else None
        # Every CompiledUpdate compiles the same code object (_step), and torch counts recompiles per
        # code object (recompile_limit, 8): agents made one after another in one process (in-process
        # tuning trials, a test session) would exceed it. A new update starts from empty caches.
        torch.compiler.reset()
        self.step = torch.compile(self._step, fullgraph=True, mode=mode)

    def __call__(self, batch: Batch[torch.Tensor]) -> dict[str, torch.Tensor]:
        optimizer = self.agent.optimizer
        group = optimizer.param_groups[0]
        states = [self._adam_state(parameter) for parameter in self.parameters]
        # Hyperparameters go in as tensors, so that a learning-rate schedule does not recompile.
        hyper = torch.tensor(
            [group["lr"], group["betas"][0], group["betas"][1], group["eps"]],
            dtype=torch.float64,
            device=self.agent.device,
        )
        if self.agent.device.type == "cuda":  # each call is a new step: earlier outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        loss, q_mean, priorities_B = self.step(
            self.parameters,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
            hyper,
            batch,
        )
        return {"td_loss": loss, "q_values": q_mean, "priorities": priorities_B}

    def _adam_state(self, parameter: torch.Tensor) -> dict[str, torch.Tensor]:
        """Adam's per-parameter state, created the way torch.optim.Adam creates it on its first step."""
        state = self.agent.optimizer.state[parameter]
        if not state:
            # On the parameter's device (torch keeps ``step`` on the CPU unless capturable), so that
            # a CUDA graph holds the whole step.
            state["step"] = torch.tensor(0.0, dtype=torch.float32, device=parameter.device)
            state["exp_avg"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        if parameter.is_cuda:  # CUDA graphs may update inputs in place only at fixed addresses
            for tensor in state.values():
                torch._dynamo.mark_static_address(tensor)
        return state

    def _step(
        self,
        parameters: list[torch.Tensor],
        exp_avgs: list[torch.Tensor],
        exp_avg_sqs: list[torch.Tensor],
        steps: list[torch.Tensor],
        hyper: torch.Tensor,
        batch: Batch[torch.Tensor],
    ):
        def loss_fn(named: dict[str, torch.Tensor]):
            with autocast(
                self.agent.device, self.agent.precision
            ):  # bf16 traces into the graph; fp16 is refused by Config
                loss_B, priorities_B, q_B = functional_call(self.loss_of, named, (batch,))
                return self.agent.batch_loss(loss_B, batch), (priorities_B, q_B)

        named_grads, (loss, (priorities_B, q_B)) = grad_and_value(loss_fn, has_aux=True)(
            dict(zip(self.names, parameters))
        )
        grads = [named_grads[name] for name in self.names]
        max_norm = self.agent.max_grad_norm
        if max_norm is not None:  # nn.utils.clip_grad_norm_'s arithmetic
            total_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            clip_coefficient = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
            grads = [g * clip_coefficient for g in grads]
        with torch.no_grad():
            _adam(parameters, grads, exp_avgs, exp_avg_sqs, steps, hyper)
        return loss.detach(), q_B.detach().mean(), priorities_B.detach()


def _adam(
    parameters: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[torch.Tensor],
    hyper: torch.Tensor,
) -> None:
    """In place, torch.optim.Adam's update:
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    lr, beta1, beta2, eps = hyper.to(parameters[0].dtype).unbind()
    for parameter, grad, exp_avg, exp_avg_sq, step in zip(parameters, grads, exp_avgs, exp_avg_sqs, steps):
        step.add_(1.0)
        exp_avg.lerp_(grad, 1.0 - beta1)
        # A 0-dim tensor as ``value`` works (torch's stub says a Python number); it keeps the
        # hyperparameters tensors, so that a learning-rate schedule does not recompile.
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)  # type: ignore[arg-type]
        bias_correction1 = 1.0 - beta1**step
        bias_correction2_sqrt = (1.0 - beta2**step).sqrt()
        denominator = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
        parameter.sub_(lr / bias_correction1 * exp_avg / denominator)
