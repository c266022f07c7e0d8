"""Which run a resume continues, and with which settings.

A resumed run is the run in its directory: its ``config.yaml`` says what it is. Settings given
again on the command line must either equal the recorded ones or be among ``HARMLESS_ON_RESUME``,
which change how the run executes (device, threads, display, checkpoint cadence) but not what it
computes; anything else (a learning rate, the total steps, the env) would make the resumed run a
different experiment under the old name, so it is refused with a message saying so.

A resume is recorded in the run's ``meta.json``, and its TensorBoard event file is named to sort
after the stopped process's ones (see :func:`wait_for_later_event_file_name`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dqn_family.checkpoints.files import CheckpointError
from dqn_family.configs import Config, ConfigError, config_to_dict, load_config
from dqn_family.configs.config import FIELD_NAMES
from dqn_family.fileio import load_json, short_repr, write_text_atomic

# compile: the compiled update keeps Adam's state where torch.optim.Adam does (tested both ways);
# device_replay: a device copy of replay gathers the same batches; precision: the weights and Adam's state are
# float32 under every precision, and an fp16 gradient scaler missing from the checkpoint starts afresh;
# ray_address: where a distributed run's processes run, not what they compute.
HARMLESS_ON_RESUME = (
    "device",
    "progress",
    "track",
    "torch_threads",
    "numpy_acting",
    "vector_mode",
    "checkpoint_every",
    "keep_checkpoints",
    "compile",
    "device_replay",
    "precision",
    "ray_address",
)
_DEFAULTS = config_to_dict(Config())
_META_MAX_BYTES = 1 << 20  # meta.json gains a short entry per resume


def resume_config(run_dir: Path, overrides: Mapping[str, Any]) -> Config:
    """The run's recorded config with the harmless ``overrides`` applied; ConfigError for any
    override that would change the run's meaning."""
    saved = load_config(run_dir / "config.yaml")
    changed = {name: value for name, value in overrides.items() if getattr(saved, name) != value}
    refused = [name for name in changed if name not in HARMLESS_ON_RESUME]
    if refused:
        name = refused[0]
        flag = "--" + name.replace("_", "-")
        allowed = ", ".join("--" + n.replace("_", "-") for n in HARMLESS_ON_RESUME)
        raise ConfigError(
            f"{flag} cannot change when resuming: the run has {name}={short_repr(getattr(saved, name))}, "
            f"given {short_repr(changed[name])}; only {allowed} may differ (start a new run to change it)"
        )
    return dataclasses.replace(saved, **changed, run_dir=str(run_dir))


def check_same_run(checkpoint_config: Any, config: Config, checkpoint_path: Path) -> None:
    """A checkpoint must have been written by this run: every setting but the harmless ones
    (and the run directory, which may have moved) must match its config.yaml."""
    if not isinstance(checkpoint_config, dict):
        raise CheckpointError(f"checkpoint {checkpoint_path} is damaged: it records no config")
    current = config_to_dict(config)
    for name in FIELD_NAMES:
        if name in HARMLESS_ON_RESUME or name == "run_dir":
            continue
        recorded = checkpoint_config.get(name, _DEFAULTS[name])  # a field added since: its default
        if recorded != current[name]:
            raise CheckpointError(
                f"checkpoint {checkpoint_path} belongs to another run: it was written with "
                f"{name}={short_repr(recorded)}, but {config.run_dir}/config.yaml has "
                f"{name}={short_repr(current[name])}"
            )


def record_resume(run_dir: Path, *, env_step: int, device: str) -> None:
    """Add this resume to the run's meta.json; a meta.json that is not ours is left as it is."""
    path = run_dir / "meta.json"
    try:
        meta = load_json(path, max_bytes=_META_MAX_BYTES, what="meta.json", error=ValueError)
    except ValueError:
        return
    if not isinstance(meta, dict) or not isinstance(meta.get("resumes", []), list):
        return
    entry = {
        "command": sys.argv,
        "from_env_step": env_step,
        "device": device,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta["resumes"] = [*meta.get("resumes", []), entry]
    write_text_atomic(path, json.dumps(meta, indent=2) + "\n")


def wait_for_later_event_file_name(run_dir: Path, *, at_most_s: float = 2.0) -> None:
    """TensorBoard reads a run's event files in name order, and a name starts with the second it
    was made. Wait (up to ``at_most_s``) until the clock has passed every existing file's second,
    so that the resumed run's file sorts last and its purge of the stopped process's later steps
    applies to them."""
    seconds = [
        int(part)
        for path in run_dir.glob("events.out.tfevents.*")
        if len(parts := path.name.split(".")) > 3 and (part := parts[3]).isdigit()
    ]
    wait = max(seconds, default=0) + 1 - time.time()
    if 0 < wait <= at_most_s:
        time.sleep(wait)
