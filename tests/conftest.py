"""Shared fixtures: a tiny, fast training config (and the test-only envs registered). Every test
runs in its own temporary folder, and the session fails if the checkout gained a file: tests write
only under pytest's temporary folders (a library's default, like MLflow's ./mlruns, included)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

import tests.scripted_envs  # noqa: F401  (registers the TestOnly/ envs)
from dqn_family.configs import Config

CHECKOUT = Path(__file__).resolve().parents[1]
settings.register_profile("no-database", database=None)  # no example database in the checkout
settings.load_profile("no-database")


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis's own files (its constants cache) in a temporary folder, not ./.hypothesis."""
    folder = tempfile.mkdtemp(prefix="hypothesis-")
    set_hypothesis_home_dir(folder)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.fixture(autouse=True)
def _in_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test from its tmp_path: whatever a command writes to the current folder lands there."""
    monkeypatch.chdir(tmp_path)


def _untracked_files() -> set[str] | None:
    """Files in the checkout that git does not track, ignored ones included (None outside a git checkout)."""
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        return None
    return {line[3:] for line in listed.stdout.splitlines() if line[:2] in ("??", "!!")}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _untracked_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks once
        return
    before, after = session.config.stash.get(_BEFORE, None), _untracked_files()
    if before is None or after is None:
        return
    written = sorted(path for path in after - before if "__pycache__" not in path and ".pytest_cache" not in path)
    if written:
        shown = ", ".join(written[:10]) + (f" and {len(written) - 10} more" if len(written) > 10 else "")
        print(f"\nerror: the tests wrote into the checkout (only pytest's temporary folders are allowed): {shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str] | None]()


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., Config]:
    """Config(**overrides) for a run of seconds on the CPU, its run directory under tmp_path."""

    def make(**overrides) -> Config:
        values = dict(
            env_id="CartPole-v1",
            total_steps=300,
            learning_starts=50,
            batch_size=8,
            buffer_size=300,
            train_frequency=4,
            target_update_interval=50,
            epsilon_decay_steps=200,
            hidden_sizes=(16,),
            log_frequency=100,
            eval_frequency=0,
            eval_episodes=2,
            progress=False,
            device="cpu",
            run_dir=str(tmp_path / "run"),
        )
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture(scope="session")
def cartpole_run(tmp_path_factory):
    """One short CartPole run (600 env steps, learning from step 100, evaluated at 300 and 600),
    shared by the tests that only read what a finished run left behind. Returns (config, result)."""
    from dqn_family import train

    config = Config(
        env_id="CartPole-v1",
        seed=3,
        total_steps=600,
        learning_starts=100,
        batch_size=16,
        buffer_size=600,
        train_frequency=4,
        target_update_interval=100,
        epsilon_decay_steps=400,
        hidden_sizes=(16,),
        log_frequency=100,
        eval_frequency=300,
        eval_episodes=2,
        progress=False,
        device="cpu",
        run_dir=str(tmp_path_factory.mktemp("cartpole") / "run"),
    )
    return config, train.train(config)
