"""Finding run directories and reading what they hold: which env, algo and seed a run is (from its
``config.yaml``), its final evaluation score and its TensorBoard scalars.

A benchmark results file (``benchmarks/presets.py``'s JSON) stands for the runs it records: each
seed's periodic evaluations and final evaluation are kept in the file, so figures and aggregates
can be rebuilt from a committed results file after the run directories are gone.

A run directory is any folder with a ``config.yaml`` written by ``train.py``. The config is read
as plain YAML (not validated as a Config), so runs written by an older or newer version, with
fields this version does not know, can still be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dqn_family.configs.config import MAX_ENV_ID
from dqn_family.configs.errors import UserError
from dqn_family.configs.loading import MAX_CONFIG_BYTES
from dqn_family.fileio import load_json, load_yaml, one_line, require_regular_file, short_repr

EVAL_TAG = "eval/mean_return"
_SUMMARY_MAX_BYTES = 1 << 20
_RESULTS_MAX_BYTES = 64 << 20  # a results file holds every seed's evaluations


@dataclass(frozen=True)
class Run:
    run_dir: Path
    env_id: str
    algo: str
    seed: int
    # Set for runs read from a results file: (env step, value) of its evaluations, and its final one.
    evaluations: tuple[tuple[int, float], ...] | None = None
    final: float | None = None


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run directory given, or found anywhere below a given folder, in path order."""
    runs: dict[Path, Run] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path} does not exist")
        if path.is_file() and path.suffix == ".json":
            for run in read_results_file(path):
                runs.setdefault(run.run_dir, run)
            continue
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
    """The env, algo and seed a run directory's config.yaml records; a UserError naming the file
    if one is missing or of the wrong kind (env_id and algo non-empty strings, seed an integer >= 0;
    a missing algo or seed is 'dqn' or 0, as runs of early versions recorded neither)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    config = load_yaml(config_path, max_bytes=MAX_CONFIG_BYTES, what="run config", error=UserError)
    if not isinstance(config, dict) or "env_id" not in config:
        raise UserError(f"{config_path} is not a config written by train.py (it has no env_id)")
    env_id, algo, seed = config["env_id"], config.get("algo", "dqn"), config.get("seed", 0)
    for name, value in (("env_id", env_id), ("algo", algo)):
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ENV_ID or not value.isprintable():
            raise UserError(
                f"{config_path}: {name} must be a non-empty printable string of at most {MAX_ENV_ID} characters, "
                f"got {short_repr(value)}"
            )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"{config_path}: seed must be an integer >= 0, got {short_repr(seed)}")
    return Run(run_dir=run_dir, env_id=env_id, algo=algo, seed=seed)


def read_results_file(path: Path) -> list[Run]:
    """The runs a ``benchmarks/presets.py`` results file records, one per seed."""
    data = load_json(path, max_bytes=_RESULTS_MAX_BYTES, what="results file", error=UserError)
    try:
        runs = [
            Run(
                run_dir=path / f"seed{int(result['seed'])}",
                env_id=str(data["env"]),
                algo=str(data["algo"]),
                seed=int(result["seed"]),
                evaluations=tuple((int(step), float(value)) for step, value in result["evals"]),
                final=None if result["final_eval"] is None else float(result["final_eval"]),
            )
            for result in data["results"]
        ]
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise UserError(
            f"{path} is not a results file of benchmarks/presets.py ({type(error).__name__}: {one_line(error, 120)})"
        ) from None
    if not runs:
        raise UserError(f"{path} records no runs")
    return runs


def run_scalars(run: Run, tag: str) -> list[tuple[int, float]]:
    """(env step, value) pairs of ``tag`` for a run; a results file's run has only its evaluations."""
    if run.evaluations is not None:
        return list(run.evaluations) if tag == EVAL_TAG else []
    return read_scalars(run.run_dir, tag)


def final_score(run: Run) -> float | None:
    """The run's last evaluation: ``final_eval_mean_return`` from summary.json when the run
    finished, else the last ``eval/mean_return`` it logged; None when it never evaluated. For a
    results file's run: its recorded final evaluation."""
    if run.evaluations is not None:
        return run.final if run.final is not None and math.isfinite(run.final) else None
    score = read_summary(run.run_dir / "summary.json").get("final_eval_mean_return")
    if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
        return float(score)
    evaluations = read_scalars(run.run_dir, EVAL_TAG)
    return evaluations[-1][1] if evaluations else None


def read_summary(path: Path) -> dict:
    """A run's summary.json as a dict; {} when it is missing, unreadable, too large (over 1 MB:
    train.py writes a few hundred bytes) or not a JSON object, so the score falls back to the
    logged evaluations, as for a run still going."""
    try:
        summary = load_json(path, max_bytes=_SUMMARY_MAX_BYTES, what="summary", error=ValueError)
    except ValueError:
        return {}
    return summary if isinstance(summary, dict) else {}


def read_scalars(run_dir: str | Path, tag: str) -> list[tuple[int, float]]:
    """(env step, value) pairs of one scalar tag from a run directory's event files, by step. An
    event file that is not a regular file (a planted FIFO or device) is refused before reading."""
    for path in Path(run_dir).glob("*tfevents*"):
        require_regular_file(path, what="event file", error=UserError)
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return []
    return sorted((event.step, event.value) for event in accumulator.Scalars(tag))
