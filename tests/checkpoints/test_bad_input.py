"""Hostile and mistaken input to ``train.py --resume``: damaged, forged, foreign or unsafe
checkpoints, broken config files, settings that would change the run, a run directory that is not
one. Each is one line on stderr, exit code 2, no traceback, and no file changed or added."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dqn_family import train
from dqn_family.checkpoints import CheckpointError, checkpoint_folder, latest_checkpoint, lock_run_dir
from tests.checkpoints.conftest import copy_run, file_hashes, small_config
from tests.scripted_envs import TERMINATE_SPEC

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def foreign_runs(tmp_path_factory) -> dict[str, Path]:
    """Finished runs whose checkpoints belong elsewhere: another env, another network shape."""
    folder = tmp_path_factory.mktemp("foreign")
    options = {"other env": dict(env_id=TERMINATE_SPEC), "other network": dict(hidden_sizes=(32,))}
    return {
        name: train.train(small_config(folder / name.replace(" ", "_"), **extra)).run_dir
        for name, extra in options.items()
    }


def state_of(run: Path) -> Path:
    return latest_checkpoint(run).with_suffix(".pt")


def match_manifest(run: Path) -> None:
    """Make the latest manifest describe whatever its state file holds (a forger would)."""
    manifest = latest_checkpoint(run)
    data = manifest.with_suffix(".pt").read_bytes()
    fields = json.loads(manifest.read_text())
    fields.update(state_bytes=len(data), state_sha256=hashlib.sha256(data).hexdigest())
    manifest.write_text(json.dumps(fields))


def forge(change):
    """Rewrite the latest checkpoint's state with ``change(payload)`` applied, manifest to match."""

    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        payload = torch.load(state_of(run), weights_only=True)
        change(payload)
        torch.save(payload, state_of(run))
        match_manifest(run)
        return []

    return setup


def write(name: str, text):
    """Overwrite a file of the run with ``text`` (or ``text(run, tmp)``)."""

    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        (run / name).write_text(text(run, tmp) if callable(text) else text)
        return []

    return setup


def foreign_checkpoint(kind: str):
    """Replace the run's checkpoints with those of another run."""

    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        shutil.rmtree(checkpoint_folder(run))
        shutil.copytree(checkpoint_folder(foreign[kind]), checkpoint_folder(run))
        return []

    return setup


class PlantsMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_pickle(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
    payload = torch.load(state_of(run), weights_only=True)
    torch.save({**payload, "agent": PlantsMarker(tmp / "pwned")}, state_of(run))
    match_manifest(run)
    return []


def truncate(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
    data = state_of(run).read_bytes()
    state_of(run).write_bytes(data[: len(data) // 3])
    return []


def flip_a_byte(run: Path, tmp: Path, foreign: dict[str, Path] | None = None) -> list[str]:
    data = bytearray(state_of(run).read_bytes())
    data[len(data) // 2] ^= 0x01
    state_of(run).write_bytes(bytes(data))
    return []


def given(*argv: str):
    """Only command-line arguments; ``{tmp}`` is replaced by the work folder."""

    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        return [arg.replace("{tmp}", str(tmp)) for arg in argv]

    return setup


def make(path: str, kind: str):
    """Make ``tmp/path`` as an empty folder or a small file, and resume from it."""

    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        (tmp / path).mkdir() if kind == "folder" else (tmp / path).write_text("x")
        return ["--resume", str(tmp / path)]

    return setup


def remove_checkpoints(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
    shutil.rmtree(checkpoint_folder(run))
    return []


def empty(which: str):
    def setup(run: Path, tmp: Path, foreign: dict[str, Path]) -> list[str]:
        manifest = latest_checkpoint(run)
        (manifest if which == "manifest" else manifest.with_suffix(".pt")).write_bytes(b"")
        return []

    return setup


def resize_weight(payload: dict) -> None:
    name = next(iter(payload["agent"]["q_network"]))
    payload["agent"]["q_network"][name] = torch.zeros(3, 3)


CASES = [
    ("missing run dir", given("--resume", "{tmp}/nowhere"), "run directory .*nowhere does not exist"),
    ("a file", make("f", "file"), "f is not a run directory"),
    ("folder without config", make("d", "folder"), "d is not a run directory: it has no config.yaml"),
    ("no checkpoints", remove_checkpoints, "has no checkpoint to resume from"),
    ("truncated checkpoint", truncate, "is damaged: .* bytes, its manifest says"),
    ("corrupted checkpoint", flip_a_byte, "is damaged: its SHA-256 does not match its manifest"),
    ("empty checkpoint", empty("state"), "is damaged: 0 bytes"),
    ("empty manifest", empty("manifest"), "is damaged: it is not valid JSON"),
    (
        "wrong version",
        forge(lambda p: p.update(version=2)),
        "has checkpoint format version 2; this version of the code reads version 1",
    ),
    (
        "checkpoint of another env",
        foreign_checkpoint("other env"),
        "belongs to another run: it was written with env_id='tests.scripted_envs:TestOnly/CountingTerminate-v0'",
    ),
    (
        "checkpoint of another network",
        foreign_checkpoint("other network"),
        r"belongs to another run: it was written with hidden_sizes=\[32\], but .*config.yaml has hidden_sizes=\[16\]",
    ),
    (
        "forged network shape",
        forge(resize_weight),
        r"does not fit this run: q_network .* is float32\[3, 3\], this run.s is",
    ),
    (
        "forged replay",
        forge(lambda p: p["replay"].update(observations=torch.zeros(5, 2))),
        r"does not fit this run: replay observations is float32\[5, 2\]",
    ),
    (
        "forged spaces",
        forge(lambda p: p["spaces"].update(n_actions=3)),
        "does not fit this run: it was written for an env with",
    ),
    ("missing part", forge(lambda p: p.pop("rng")), "does not fit this run: it has no 'rng'"),
    (
        "malformed counters",
        forge(lambda p: p["counters"].update(env_steps=-1)),
        "does not fit this run: its counters are malformed",
    ),
    (
        "planted pickle",
        plant_pickle,
        "cannot load checkpoint .* safely: it holds a pickled reference to io.open, which is refused and never run",
    ),
    ("malformed config.yaml", write("config.yaml", "gamma: [0.9\n"), "config.yaml is not valid YAML"),
    (
        "wrong type in config.yaml",
        write("config.yaml", lambda run, tmp: (run / "config.yaml").read_text().replace("gamma: 0.99", "gamma: high")),
        "gamma must be a number, got 'high'",
    ),
    (
        "python tag in config.yaml",
        write("config.yaml", lambda run, tmp: f"seed: !!python/object/apply:os.system ['touch {tmp}/pwned']\n"),
        "config.yaml is not valid YAML",
    ),
    ("config.yaml not a mapping", write("config.yaml", "- 1\n- 2\n"), "must be a mapping of field: value, got list"),
    ("changed setting", given("--learning-rate", "0.5"), "--learning-rate cannot change when resuming"),
    (
        "changed setting in --config",
        lambda run, tmp, foreign: (
            write("c.yaml", "gamma: 0.5\n")(tmp, tmp, foreign) or ["--config", str(tmp / "c.yaml")]
        ),
        "--gamma cannot change when resuming",
    ),
    (
        "smaller total",
        given("--total-steps", "10"),
        "--total-steps 10 is below the run's: it already has total_steps=600",
    ),
    ("invalid harmless setting", given("--keep-checkpoints", "0"), "keep_checkpoints must be >= 1"),
    ("missing --config file", given("--config", "{tmp}/none.yaml"), "none.yaml does not exist"),
]


@pytest.mark.parametrize("setup, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_resume_bad_input_is_one_line_exit_2_and_changes_no_file(
    finished_runs, foreign_runs, tmp_path, capsys, setup, message
):
    work = tmp_path / "work"
    work.mkdir()
    run = copy_run(finished_runs["dqn"], work / "run", latest=400)
    extra = setup(run, work, foreign_runs)
    argv = extra if extra and extra[0] == "--resume" else ["--resume", str(run), *extra]
    before = file_hashes(work)
    code = train.main(argv)
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("train.py: error: "), stderr
    assert re.search(message, stderr), stderr
    assert file_hashes(work) == before  # nothing damaged, nothing added (no planted code ran)


def test_resume_of_run_in_use_is_one_line_exit_2(finished_runs, tmp_path, capsys):
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=400)
    with lock_run_dir(run):
        assert train.main(["--resume", str(run)]) == 2
    assert "is in use by another training process" in capsys.readouterr().err


def test_resume_cli_damaged_checkpoint_exits_2_with_one_line(finished_runs, tmp_path):
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=400)
    flip_a_byte(run, tmp_path)
    completed = subprocess.run(
        [sys.executable, "train.py", "--resume", str(run)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and "SHA-256 does not match" in completed.stderr


def test_resume_debug_flag_raises_the_error_with_its_traceback(finished_runs, tmp_path):
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=400)
    flip_a_byte(run, tmp_path)
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        train.main(["--resume", str(run), "--debug"])
