"""Checkpoint files: the write protocol (manifest as commit record, pruning, leftovers), and
loading that refuses anything damaged, of another version, or carrying a pickle that would run code."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_family.checkpoints import (
    CheckpointError,
    checkpoint_folder,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    lock_run_dir,
    read_manifest,
    save_checkpoint,
)
from dqn_family.configs.errors import UserError

STATE = {
    "weights": torch.arange(6, dtype=torch.float32).reshape(2, 3),
    "flags": torch.tensor([True, False]),
    "count": 7,
    "ratio": 0.25,
    "name": "cartpole",
    "nothing": None,
    "pair": (1, 2),
    "nested": {"list": [1.5]},
}


def saved(run_dir: Path, *steps: int, keep: int = 10) -> Path:
    run_dir.mkdir(exist_ok=True)
    for step in steps:
        manifest = save_checkpoint(run_dir, STATE, env_step=step, keep=keep)
    return manifest


def names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in checkpoint_folder(run_dir).iterdir())


# --- writing ------------------------------------------------------------------------------------


def test_save_checkpoint_load_checkpoint_round_trip_keeps_values_and_types(tmp_path):
    payload = load_checkpoint(saved(tmp_path / "run", 100))
    assert (payload["format"], payload["version"], payload["env_step"]) == ("dqn-family-checkpoint", 1, 100)
    assert torch.equal(payload["weights"], STATE["weights"]) and payload["weights"].dtype == torch.float32
    assert torch.equal(payload["flags"], STATE["flags"])
    assert {k: payload[k] for k in ("count", "ratio", "name", "nothing", "pair", "nested")} == {
        k: STATE[k] for k in ("count", "ratio", "name", "nothing", "pair", "nested")
    }
    assert isinstance(payload["pair"], tuple)


def test_save_checkpoint_manifest_records_state_size_and_sha256(tmp_path):
    manifest_path = saved(tmp_path / "run", 100)
    manifest = json.loads(manifest_path.read_text())
    state = manifest_path.with_name("step_000000000100.pt").read_bytes()
    assert manifest_path.name == "step_000000000100.json"
    assert manifest["state_file"] == "step_000000000100.pt"
    assert (manifest["state_bytes"], manifest["state_sha256"]) == (len(state), hashlib.sha256(state).hexdigest())


def test_save_checkpoint_keeps_the_newest_keep_checkpoints(tmp_path):
    saved(tmp_path / "run", 100, 200, 300, keep=2)
    assert [step for step, _ in list_checkpoints(tmp_path / "run")] == [200, 300]
    assert names(tmp_path / "run") == [
        "step_000000000200.json",
        "step_000000000200.pt",
        "step_000000000300.json",
        "step_000000000300.pt",
    ]


def test_save_checkpoint_removes_what_interrupted_writes_left(tmp_path):
    run_dir = tmp_path / "run"
    saved(run_dir, 100)
    folder = checkpoint_folder(run_dir)
    (folder / ".step_000000000200.pt.abc123.tmp").write_bytes(b"half a fi")  # killed mid-write
    (folder / "step_000000000200.pt").write_bytes(b"whole, uncommitted")  # killed before its manifest
    (folder / "notes.txt").write_text("mine")  # not ours: left alone
    saved(run_dir, 200)
    assert names(run_dir) == [
        "notes.txt",
        "step_000000000100.json",
        "step_000000000100.pt",
        "step_000000000200.json",
        "step_000000000200.pt",
    ]
    assert load_checkpoint(latest_checkpoint(run_dir))["env_step"] == 200


def test_latest_checkpoint_is_the_highest_committed_step_ignoring_uncommitted_state(tmp_path):
    run_dir = tmp_path / "run"
    saved(run_dir, 100, 2000)
    (checkpoint_folder(run_dir) / "step_000000003000.pt").write_bytes(b"no manifest yet")
    assert latest_checkpoint(run_dir).name == "step_000000002000.json"


def test_latest_checkpoint_of_run_without_any_is_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoint to resume from"):
        latest_checkpoint(tmp_path)


# --- damaged files --------------------------------------------------------------------------------


def state_file(manifest: Path) -> Path:
    return manifest.with_suffix(".pt")


def rewrite_manifest(manifest: Path, **changes) -> None:
    fields = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**fields, **changes}))


def matching_manifest(manifest: Path) -> None:
    """Make the manifest describe whatever its state file now holds (a forger would)."""
    data = state_file(manifest).read_bytes()
    rewrite_manifest(manifest, state_bytes=len(data), state_sha256=hashlib.sha256(data).hexdigest())


def truncate(manifest: Path) -> None:
    data = state_file(manifest).read_bytes()
    state_file(manifest).write_bytes(data[: len(data) // 2])


def flip_a_byte(manifest: Path) -> None:
    data = bytearray(state_file(manifest).read_bytes())
    data[len(data) // 2] ^= 0xFF
    state_file(manifest).write_bytes(bytes(data))


def forge_payload(**changes):
    def forge(manifest: Path) -> None:
        payload = torch.load(state_file(manifest), weights_only=True)
        torch.save({**payload, **changes}, state_file(manifest))
        matching_manifest(manifest)

    return forge


@pytest.mark.parametrize(
    "damage, message",
    [
        (truncate, "is damaged: .* bytes, its manifest says"),
        (lambda m: state_file(m).write_bytes(b""), "is damaged: 0 bytes"),
        (flip_a_byte, "is damaged: its SHA-256 does not match"),
        (lambda m: state_file(m).unlink(), "checkpoint .* does not exist"),
        (lambda m: m.write_bytes(b""), "manifest .* is damaged: it is not valid JSON"),
        (lambda m: m.write_bytes(b"\xff\xfe garbage"), "manifest .* is damaged: it is not valid JSON"),
        (lambda m: m.write_text("[1, 2]"), "is not a checkpoint manifest of this project"),
        (
            lambda m: rewrite_manifest(m, version=99),
            "checkpoint format version 99; this version of the code reads version 1",
        ),
        (lambda m: rewrite_manifest(m, state_file="../../etc/passwd"), "fields are missing or malformed"),
        (lambda m: rewrite_manifest(m, env_step=5), "fields are missing or malformed"),
        (lambda m: rewrite_manifest(m, state_sha256="not hex"), "fields are missing or malformed"),
        (lambda m: (truncate(m), matching_manifest(m)), "cannot load checkpoint .* safely"),
        (
            lambda m: (state_file(m).write_bytes(b"garbage" * 100), matching_manifest(m)),
            "cannot load checkpoint .* safely",
        ),
        (forge_payload(version=99), r"step_000000000100.pt has checkpoint format version 99"),
        (forge_payload(format="something-else"), "is not a checkpoint of this project"),
        (forge_payload(env_step=7), "holds env step 7, its manifest says 100"),
    ],
    ids=[
        "truncated",
        "empty",
        "corrupted",
        "state missing",
        "empty manifest",
        "binary manifest",
        "manifest not a dict",
        "manifest version",
        "path in manifest",
        "manifest step",
        "manifest hash",
        "truncated, forged manifest",
        "garbage, forged manifest",
        "state version",
        "state format",
        "state step",
    ],
)
def test_load_checkpoint_refuses_damaged_checkpoint_with_one_line_error(tmp_path, damage, message):
    manifest = saved(tmp_path / "run", 100)
    damage(manifest)
    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(manifest)
    assert "\n" not in str(raised.value)


# --- planted pickles --------------------------------------------------------------------------------


class PlantsMarker:
    """Unpickling this opens (so creates) ``marker``: a stand-in for any code a payload could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(manifest: Path, marker: Path, kind: str) -> None:
    payload = {"format": "dqn-family-checkpoint", "version": 1, "env_step": 100, "agent": PlantsMarker(marker)}
    if kind == "torch zip":
        torch.save(payload, state_file(manifest))
    else:
        state_file(manifest).write_bytes(pickle.dumps(payload, protocol=2))
    matching_manifest(manifest)  # the attacker controls the manifest too: only the safe unpickler stands between


@pytest.mark.parametrize("kind", ["torch zip", "raw pickle"])
def test_load_checkpoint_refuses_planted_pickle_and_never_runs_it(tmp_path, kind):
    manifest, marker = saved(tmp_path / "run", 100), tmp_path / "pwned"
    plant(manifest, marker, kind)
    with pytest.raises(
        CheckpointError,
        match="cannot load checkpoint .* safely: it holds a pickled reference to "
        "io.open, which is refused and never run",
    ) as raised:
        load_checkpoint(manifest)
    assert not marker.exists()
    assert "weights_only" not in str(raised.value)  # no advice to load it unsafely


def test_planted_pickle_would_run_code_if_loaded_unsafely(tmp_path):
    # Shows that the test above tests something: an unrestricted load does create the marker.
    manifest, marker = saved(tmp_path / "run", 100), tmp_path / "pwned"
    plant(manifest, marker, "torch zip")
    torch.load(state_file(manifest), weights_only=False)
    assert marker.exists()


# --- manifests from arbitrary bytes -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=300)
    | st.text(max_size=200).map(str.encode)
    | st.dictionaries(
        st.sampled_from(["format", "version", "env_step", "state_file", "state_bytes", "state_sha256"]),
        st.none() | st.integers() | st.text(max_size=70) | st.floats(),
    ).map(lambda d: json.dumps(d).encode())
)
def test_read_manifest_any_bytes_give_manifest_or_checkpoint_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("manifest") / "step_000000000100.json"
    path.write_bytes(data)
    try:
        manifest = read_manifest(path)
    except CheckpointError:
        return
    assert manifest["env_step"] == 100 and manifest["state_file"] == "step_000000000100.pt"


# --- locking ---------------------------------------------------------------------------------------


def test_lock_run_dir_refuses_a_second_holder(tmp_path):
    with lock_run_dir(tmp_path):
        with pytest.raises(UserError, match="is in use by another training process"):
            with lock_run_dir(tmp_path):
                pass
    with lock_run_dir(tmp_path):  # released on exit
        pass
