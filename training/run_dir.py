"""A run directory's files besides checkpoints: created with the resolved config and version
info before step 0 (all or nothing), found again by evaluate.py and --resume, and closed with a
summary; and the config as a table for TensorBoard's text tab."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dqn_family.agents import save_model
from dqn_family.checkpoints import TrainingInterrupted
from dqn_family.configs import Config, ConfigError, UserError, config_to_dict, env_file_name, save_config
from dqn_family.configs.errors import os_errors_in
from dqn_family.fileio import redact_credentials, write_text_atomic
from dqn_family.training.state import CheckpointedRun, Counters, EvalResult, TrainResult

RUN_START_FILES = ("meta.json", "config.yaml")  # what create_run_dir writes before step 0


def find_run_dir(path: str | Path) -> Path:
    """The run directory ``path`` names: an existing folder holding a config.yaml."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise UserError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir} is not a run directory: it has no config.yaml (written by train.py)")
    return run_dir


def create_run_dir(config: Config, device: torch.device) -> Path:
    """Make the run directory and write the resolved config and version info before step 0.

    All or nothing: if writing them fails (a full disk, a signal's SystemExit), what was made here
    is removed again, so the same --run-dir can be used once the cause is gone. A run directory
    that exists must be an empty folder (a folder the user made for it)."""
    if config.run_dir is not None:
        run_dir = Path(config.run_dir)
        if run_dir.is_symlink() and not run_dir.exists():
            raise ConfigError(
                f"run directory {run_dir} is a symbolic link to {os.readlink(run_dir)}, which does not "
                "exist; choose another --run-dir"
            )
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise ConfigError(
                f"run directory {run_dir} already exists and is not empty; choose another --run-dir "
                "(or continue that run with --resume)"
            )
    else:
        name = f"{env_file_name(config.env_id)}__{config.algo}__s{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
        stem = Path("runs") / name
        run_dir, suffix = stem, 1
        while run_dir.exists():
            suffix += 1
            run_dir = stem.with_name(f"{stem.name}-{suffix}")
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with os_errors_in(run_dir):
            save_config(dataclasses.replace(config, run_dir=str(run_dir)), run_dir / "config.yaml")
            meta = {
                "command": [redact_credentials(word) for word in sys.argv],  # no password in a run directory
                "device": str(device),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "gymnasium": gym.__version__,
                "numpy": np.__version__,
                "platform": platform.platform(),
            }
            write_text_atomic(run_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    except BaseException:
        for name in RUN_START_FILES:
            (run_dir / name).unlink(missing_ok=True)
        if made:
            run_dir.rmdir()
        raise
    return run_dir


def discard_new_run_dir(run_dir: Path, *written_since: str) -> None:
    """Remove what create_run_dir wrote in ``run_dir``, and the files or folders ``written_since``
    (a tracker's), then the folder if that empties it: a new run that could not start leaves nothing
    behind (a folder of the user's with files of theirs in it stays)."""
    for name in (*RUN_START_FILES, *written_since):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # only if empty


def write_summary(result: TrainResult) -> None:
    """summary.json: what a finished run reached (aggregate.py and plot.py read it); ``stopped_early``
    says why a run ended before its total_steps (e.g. a tuner pruned it), null when it did not."""
    final_eval = result.final_eval
    summary = {
        "env_steps": result.env_steps,
        "updates": result.updates,
        "episodes": result.episodes,
        "seconds": round(result.seconds, 3),
        "steps_per_second": round(result.env_steps / max(result.seconds, 1e-9), 1),
        "final_eval_mean_return": final_eval.mean if final_eval else None,
        "final_eval_std_return": final_eval.std if final_eval else None,
        "best_eval_mean_return": result.best_eval_mean,
        "stopped_early": result.stopped_early,
    }
    write_text_atomic(result.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def config_table(config: Config) -> str:
    """The config as a markdown table, for TensorBoard's text tab."""
    values = config_to_dict(config)
    rows = "\n".join(f"|{key}|{value}|" for key, value in values.items())
    return f"|param|value|\n|-|-|\n{rows}"


def finish_run(
    run: CheckpointedRun,
    count: Counters,
    final_eval: EvalResult | None,
    *,
    resumed_from: int | None,
    stopped_early: str | None,
    stop_signal: int | None,
) -> TrainResult:
    """The end of a training loop (training.loop's, the distributed learner's): the model
    file of a run without periodic evaluations; TrainingInterrupted when a signal stopped it before
    total_steps; otherwise summary.json, and the result."""
    if not run.config.eval_frequency:
        save_model(run.run_dir / "model_latest.pt", run.agent.q_network.state_dict(), env_step=count.env_steps)
    if stop_signal is not None and count.env_steps < run.config.total_steps:
        raise TrainingInterrupted(stop_signal, run.run_dir, count.env_steps)
    result = TrainResult(
        run_dir=run.run_dir,
        env_steps=count.env_steps,
        updates=count.updates,
        episodes=count.episodes,
        seconds=count.seconds,
        final_eval=final_eval,
        best_eval_mean=count.best_eval_mean,
        resumed_from=resumed_from,
        stopped_early=stopped_early,
    )
    write_summary(result)
    return result
