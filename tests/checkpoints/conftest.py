"""Fixtures for the checkpoint and resume tests: small finished runs with a checkpoint every 200
env steps (all kept), trained once per session, and copies of them to break or resume."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from dqn_family.checkpoints import checkpoint_folder, list_checkpoints
from dqn_family.configs import Config

# Rainbow's parts together: C51 head, prioritized replay (sum tree), n-step, noisy (noise generator), dueling.
RAINBOW = dict(
    algo="rainbow",
    prioritized=True,
    n_step=3,
    noisy=True,
    dueling=True,
    double=True,
    num_atoms=11,
    v_min=0.0,
    v_max=50.0,
    epsilon_start=0.0,
    epsilon_end=0.0,
)
# Self-play against a pool of snapshots (training.games.SelfPlay): by step 200 the pool of 3 has
# dropped its first snapshots, and each episode drew its opponent from it.
SELF_PLAY_POOL = dict(
    env_id="pettingzoo:tictactoe_v3", self_play="pool", self_play_snapshot_steps=60, self_play_pool_size=3
)
VARIANTS = {"dqn": {}, "rainbow": RAINBOW, "self_play_pool": SELF_PLAY_POOL}


def small_config(run_dir: Path, **overrides) -> Config:
    """600 CartPole steps: learning from 100, a 400-transition buffer (so it wraps), logs every 50,
    evaluations at 300 and 600, checkpoints at 200, 400 and 600."""
    values = dict(
        env_id="CartPole-v1",
        seed=4,
        total_steps=600,
        learning_starts=100,
        batch_size=16,
        buffer_size=400,
        train_frequency=2,
        target_update_interval=100,
        epsilon_decay_steps=400,
        hidden_sizes=(16,),
        log_frequency=50,
        eval_frequency=300,
        eval_episodes=2,
        checkpoint_every=200,
        keep_checkpoints=10,
        progress=False,
        device="cpu",
        run_dir=str(run_dir),
    )
    values.update(overrides)
    return Config(**values)


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory) -> dict[str, Path]:
    """Run directory of a finished small run per variant (read only: copy it to change it)."""
    from dqn_family import train

    folder = tmp_path_factory.mktemp("finished")
    return {name: train.train(small_config(folder / name, **options)).run_dir for name, options in VARIANTS.items()}


def copy_run(source: Path, destination: Path, *, latest: int | None = None) -> Path:
    """Copy a run directory; with ``latest``, drop the checkpoints after that env step, as if the
    run had been killed before writing them."""
    shutil.copytree(source, destination)
    if latest is not None:
        for step, manifest in list_checkpoints(destination):
            if step > latest:
                manifest.unlink()
                manifest.with_suffix(".pt").unlink()
    return destination


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder``, by relative path: to show nothing was changed or added."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [step for step, _ in list_checkpoints(run_dir)]


def leftovers(run_dir: Path) -> list[str]:
    """Files in the checkpoint folder that are not a committed checkpoint's two files."""
    committed = {f"step_{step:012d}.{ext}" for step in checkpoint_steps(run_dir) for ext in ("json", "pt")}
    return sorted(p.name for p in checkpoint_folder(run_dir).iterdir() if p.name not in committed)
