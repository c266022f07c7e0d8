"""Run directories made by hand: a config.yaml naming env, algo and seed, TensorBoard scalars
written with SummaryWriter, and optionally a summary.json, as train.py would leave them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from torch.utils.tensorboard import SummaryWriter


def write_run(
    root: Path, *, env_id: str, algo: str, seed: int, evals: list[tuple[int, float]], final: float | None = None
) -> Path:
    """A run directory ROOT/<env>__<algo>__s<seed> with ``evals`` as its eval/mean_return scalars
    and, if ``final`` is given, a summary.json whose final_eval_mean_return is ``final``."""
    run_dir = root / f"{env_id}__{algo}__s{seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env_id": env_id, "algo": algo, "seed": seed}))
    with SummaryWriter(log_dir=str(run_dir)) as writer:
        for step, value in evals:
            writer.add_scalar("eval/mean_return", value, step)
    if final is not None:
        (run_dir / "summary.json").write_text(json.dumps({"final_eval_mean_return": final}))
    return run_dir


def linear_evals(slope: float, offset: float, last_step: int = 1000, every: int = 100) -> list[tuple[int, float]]:
    """(step, offset + slope * step) at steps 0, every, ..., last_step."""
    return [(step, offset + slope * step) for step in range(0, last_step + 1, every)]
