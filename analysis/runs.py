"""Finding run directories and reading what they hold: which env, algo and seed a run is (from its
``config.yaml``), its final evaluation score and its TensorBoard scalars.

A run directory is any folder with a ``config.yaml`` written by ``train.py``. The config is read
as plain YAML (not validated as a Config), so runs written by an older or newer version, with
fields this version does not know, can still be compared.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from configs.errors import UserError

EVAL_TAG = "eval/mean_return"


@dataclass(frozen=True)
class Run:
    run_dir: Path
    env_id: str
    algo: str
    seed: int


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run directory given, or found anywhere below a given folder, in path order."""
    runs: dict[Path, Run] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path} does not exist")
        if (path / "config.yaml").is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(config.parent for config in path.rglob("config.yaml"))
            if not found:
                raise UserError(f"no run directories (folders with a config.yaml) under {path}")
        else:
            raise UserError(f"{path} is not a run directory or a folder of them")
        for run_dir in found:
            runs.setdefault(run_dir.resolve(), read_run(run_dir))
    return list(runs.values())


def read_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"cannot read {config_path}: {' '.join(str(error).split())[:200]}") from None
    if not isinstance(config, dict) or "env_id" not in config:
        raise UserError(f"{config_path} is not a config written by train.py (it has no env_id)")
    return Run(run_dir=run_dir, env_id=str(config["env_id"]), algo=str(config.get("algo", "dqn")),
               seed=int(config.get("seed", 0)))


def final_score(run: Run) -> float | None:
    """The run's last evaluation: ``final_eval_mean_return`` from summary.json when the run
    finished, else the last ``eval/mean_return`` it logged; None when it never evaluated."""
    summary_path = run.run_dir / "summary.json"
    if summary_path.is_file():
        try:
            score = json.loads(summary_path.read_text(encoding="utf-8")).get("final_eval_mean_return")
        except (OSError, ValueError):
            score = None
        if isinstance(score, (int, float)) and math.isfinite(score):
            return float(score)
    evaluations = read_scalars(run.run_dir, EVAL_TAG)
    return evaluations[-1][1] if evaluations else None


def read_scalars(run_dir: str | Path, tag: str) -> list[tuple[int, float]]:
    """(env step, value) pairs of one scalar tag from a run directory's event files, by step."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return []
    return sorted((event.step, event.value) for event in accumulator.Scalars(tag))
