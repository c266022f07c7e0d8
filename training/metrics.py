"""The training metric log: per-update losses summed as tensors (no device sync per update), episode
returns and lengths (each at the env step its episode ended), throughput, all written to
TensorBoard every ``log_frequency`` env steps and at checkpoints; and the error raised when a
logged mean is not finite."""

from __future__ import annotations

import collections
import math
import time
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from dqn_family.configs import UserError
from dqn_family.configs.config import is_count


class NonFiniteError(UserError):
    """A loss, Q-value or weight became NaN or infinite: training stops without saving it."""


def checked_priorities(metrics: dict[str, torch.Tensor], env_step: int) -> np.ndarray:
    """An update's new replay priorities as float32 numpy (one device sync, needed anyway);
    NonFiniteError if any is NaN or infinite."""
    priorities = metrics["priorities"].float().cpu().numpy()
    if not np.isfinite(priorities).all():
        raise NonFiniteError(f"TD errors are NaN or infinite at env step {env_step:,}")
    return priorities


RECENT_RETURNS = 20  # episodes in the progress bar's mean return


class MetricLog:
    """Accumulates per-update metrics as tensors (no device sync per update) and writes their
    means, with episode statistics and throughput, to TensorBoard every ``log_frequency`` steps."""

    TAGS = ("losses/td_loss", "losses/q_values")

    def __init__(self, writer: SummaryWriter, device: torch.device) -> None:
        self.writer = writer
        self.sums = {tag: torch.zeros((), device=device) for tag in self.TAGS}
        self.pending_updates = 0
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=RECENT_RETURNS)
        self.episodes: list[tuple[float, int, int]] = []  # (return, length, env step) not yet written
        self.last_time, self.last_step = time.perf_counter(), 0
        # Illegal actions taken over the run (it must stay 0): None unless the run acts with action masks.
        self.illegal_actions: int | None = None

    def add_illegal_actions(self, count: int) -> None:
        """Count illegal actions taken (a run with action masks calls this, with 0, at every step)."""
        self.illegal_actions = (self.illegal_actions or 0) + count

    def add_update(self, metrics: dict[str, torch.Tensor]) -> None:
        self.sums["losses/td_loss"] += metrics["td_loss"]
        self.sums["losses/q_values"] += metrics["q_values"]
        self.pending_updates += 1

    def add_episode(self, episode_return: float, length: int, step: int) -> None:
        """An episode's return and length, logged at its last step; written at the next flush."""
        self.episodes.append((episode_return, length, step))
        self.recent_returns.append(episode_return)

    def write_episodes(self) -> None:
        """Hand the episodes logged since the last call to the TensorBoard writer."""
        for episode_return, length, step in self.episodes:
            self.writer.add_scalar("charts/episodic_return", episode_return, step)
            self.writer.add_scalar("charts/episodic_length", length, step)
        self.episodes.clear()

    def flush(self, step: int, epsilon: float) -> dict[str, str]:
        """Write the accumulated means; return a short summary for the progress bar. A mean that
        is NaN or infinite raises NonFiniteError (this is where the loop finds out, one sync per log)."""
        means = (
            {tag: (total / self.pending_updates).item() for tag, total in self.sums.items()}
            if self.pending_updates
            else {}
        )
        for tag, mean in means.items():
            if not math.isfinite(mean):
                raise NonFiniteError(f"{tag} is {mean} at env step {step:,}")
        self.write_episodes()
        now = time.perf_counter()
        sps = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.writer.add_scalar("charts/epsilon", epsilon, step)
        self.writer.add_scalar("charts/sps", sps, step)
        if self.illegal_actions is not None:
            self.writer.add_scalar("charts/illegal_actions", self.illegal_actions, step)
        for tag, mean in means.items():
            self.writer.add_scalar(tag, mean, step)
            self.sums[tag].zero_()
        self.pending_updates = 0
        self.last_time, self.last_step = now, step
        # Wait while TensorBoard's writer thread takes this burst of events to the disk. Events
        # handed over one at a time, as episodes end, made that thread and the loop pass the GIL
        # back and forth between cores for each one: ~40% of the loop's time with short episodes.
        self.writer.flush()
        summary = {"ret": f"{np.mean(self.recent_returns):.1f}" if self.recent_returns else "-"}
        if "losses/td_loss" in means:
            summary["loss"] = f"{means['losses/td_loss']:.3g}"
        return {**summary, "eps": f"{epsilon:.2f}"}

    def state_dict(self) -> dict[str, Any]:
        """The sums not yet logged (so a resumed run logs the same means) and the recent returns."""
        state = {
            "sums": {tag: total.detach().cpu() for tag, total in self.sums.items()},
            "pending_updates": self.pending_updates,
            "recent_returns": list(self.recent_returns),
        }
        if self.illegal_actions is not None:  # a run with action masks; absent otherwise
            state["illegal_actions"] = self.illegal_actions
        return state

    @classmethod
    def check_state(cls, state: Any) -> dict[str, Any]:
        """``state`` if it is a state_dict() of a MetricLog (finite sums, at most 20 finite
        returns), else ValueError."""
        if not isinstance(state, dict) or not {"sums", "pending_updates", "recent_returns"} <= state.keys():
            raise ValueError("its metric state must be a dict with sums, pending_updates and recent_returns")
        sums, returns = state["sums"], state["recent_returns"]
        if (
            not isinstance(sums, dict)
            or set(sums) != set(cls.TAGS)
            or not all(
                isinstance(t, torch.Tensor) and t.shape == () and t.is_floating_point() and bool(t.isfinite())
                for t in sums.values()
            )
            or not is_count(state["pending_updates"])
            or not isinstance(returns, list)
            or len(returns) > RECENT_RETURNS
            or not all(isinstance(r, float) and math.isfinite(r) for r in returns)
            or not is_count(state.get("illegal_actions", 0))
        ):
            raise ValueError("its metric sums are malformed")
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for tag, total in self.sums.items():
            total.copy_(state["sums"][tag])
        self.pending_updates = state["pending_updates"]
        self.recent_returns.extend(state["recent_returns"])
        if "illegal_actions" in state:
            self.illegal_actions = state["illegal_actions"]


class EpisodeTracker:
    """Each sub-env's return and length so far; ``step`` returns the episodes that just ended."""

    def __init__(self, num_envs: int) -> None:
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)

    def step(self, rewards: np.ndarray, real: np.ndarray, autoreset: Any) -> list[tuple[float, int]]:
        """Count one vector step (``real``: the sub-envs whose step was a transition; ``autoreset``:
        the loop's envs.AutoresetTracker); (return, length) of each episode that ended on it."""
        if autoreset.all_real:  # the common step: no indexing
            self.returns += rewards
            self.lengths += 1
        else:
            self.returns[real] += rewards[real]
            self.lengths[real] += 1
        if not autoreset.any_pending:  # no episode ended (the autoreset step itself reports no end)
            return []
        ended = []
        for i in np.flatnonzero(real & autoreset.pending):
            ended.append((float(self.returns[i]), int(self.lengths[i])))
            self.returns[i], self.lengths[i] = 0.0, 0
        return ended
