"""Which run a resume continues, and with which settings.

A resumed run is the run in its directory: its ``config.yaml`` says what it is. Settings given
again on the command line must either equal the recorded ones or be among ``HARMLESS_ON_RESUME``,
which change how the run executes (device, threads, display, checkpoint cadence) but not what it
computes; anything else (a learning rate, the env) would make the resumed run a different
experiment under the old name, so it is refused with a message saying so. One exception: a larger
``total_steps`` extends the run, as Stable-Baselines3's ``learn()`` continues one. Its schedules
keep their meaning: epsilon's is in env steps (``epsilon_decay_steps``) and goes on as it was; the
learning rate's and the importance-sampling exponent's end at ``anneal_steps``, which the extension
sets to the earlier total (``configs.schedules.anneal_end``), so the steps already taken had the
same values and the added ones run at the final values. A smaller total is refused.

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
from dqn_family.configs import Config, ConfigError, config_to_dict, load_config, save_config
from dqn_family.configs.config import FIELD_NAMES, HARMLESS_ON_RESUME, is_count, is_int
from dqn_family.configs.schedules import anneal_end
from dqn_family.fileio import load_json, short_repr, write_text_atomic

_EXTENSION_FIELDS = ("total_steps", "anneal_steps")  # what extending a run changes (see extension)
_DEFAULTS = config_to_dict(Config())
_META_MAX_BYTES = 1 << 20  # meta.json gains a short entry per resume


def resume_config(run_dir: Path, overrides: Mapping[str, Any]) -> Config:
    """The run's recorded config with the harmless ``overrides`` applied, and a larger total_steps
    (:func:`extension`); ConfigError for any override that would change the run's meaning. The
    recorded ``ray_address`` is dropped: a distributed resume joins only the cluster ``overrides``
    name, else runs on a local Ray (a note on stderr says so when the run had recorded one)."""
    saved = load_config(run_dir / "config.yaml")
    changed = {name: value for name, value in overrides.items() if getattr(saved, name) != value}
    refused = [name for name in changed if name not in HARMLESS_ON_RESUME and name != "total_steps"]
    if refused:
        name = refused[0]
        flag = "--" + name.replace("_", "-")
        allowed = ", ".join("--" + n.replace("_", "-") for n in HARMLESS_ON_RESUME)
        raise ConfigError(
            f"{flag} cannot change when resuming: the run has {name}={short_repr(getattr(saved, name))}, "
            f"given {short_repr(changed[name])}; only {allowed} may differ, and --total-steps grow (start a new "
            "run to change it)"
        )
    if "total_steps" in changed:
        changed.update(extension(saved, changed["total_steps"]))
    address = overrides.get("ray_address")
    if saved.ray_address is not None and address is None and saved.actors:
        print(
            f"note: this run was recorded with --ray-address {short_repr(saved.ray_address)}, which a resume does "
            "not join; it resumes on a local Ray instance (pass --ray-address again to join that cluster)",
            file=sys.stderr,
        )
    changed["ray_address"] = address
    return dataclasses.replace(saved, **changed, run_dir=str(run_dir))


def extension(saved: Config, total_steps: Any) -> dict[str, Any]:
    """The fields that change when a resume raises the run's total_steps: the new total, and
    anneal_steps at the schedules' end so far (the earlier total, unless anneal_steps was set).
    ConfigError for a smaller total; a value that is no total is left for Config to refuse."""
    if is_int(total_steps) and total_steps < saved.total_steps:
        raise ConfigError(
            f"--total-steps {total_steps:,} is below the run's: it already has total_steps={saved.total_steps:,}; a "
            "resume can extend a run with a larger total, not shorten it (start a new run for fewer steps)"
        )
    return {"total_steps": total_steps, "anneal_steps": anneal_end(saved)}


def record_extension(run_dir: Path, config: Config) -> None:
    """Once a resume that extends the run has passed its checks: config.yaml gets the new
    total_steps and anneal_steps (its other settings stay as recorded: harmless overrides apply to
    this resume only), so that a later resume goes on to the new total; one line says so."""
    saved = load_config(run_dir / "config.yaml")
    if (saved.total_steps, saved.anneal_steps) == (config.total_steps, config.anneal_steps):
        return
    save_config(
        dataclasses.replace(saved, total_steps=config.total_steps, anneal_steps=config.anneal_steps),
        run_dir / "config.yaml",
    )
    print(
        f"note: extending {run_dir} from {saved.total_steps:,} to {config.total_steps:,} env steps: epsilon "
        f"follows its schedule as before (epsilon_decay_steps {config.epsilon_decay_steps:,}); the learning-rate "
        f"decay and the importance-sampling anneal still end at env step {anneal_end(config):,} (anneal_steps)",
        file=sys.stderr,
    )


def check_same_run(checkpoint_config: Any, config: Config, checkpoint_path: Path) -> None:
    """A checkpoint must have been written by this run: every setting but the harmless ones
    (and the run directory, which may have moved) must match its config.yaml, except that the run
    may have been extended since (a larger total_steps, the schedules' end unchanged)."""
    if not isinstance(checkpoint_config, dict):
        raise CheckpointError(f"checkpoint {checkpoint_path} is damaged: it records no config")
    current = config_to_dict(config)
    _check_extended_run(checkpoint_config, config, checkpoint_path)
    for name in FIELD_NAMES:
        if name in HARMLESS_ON_RESUME or name in _EXTENSION_FIELDS or name == "run_dir":
            continue
        recorded = checkpoint_config.get(name, _DEFAULTS[name])  # a field added since: its default
        if recorded != current[name]:
            raise CheckpointError(
                f"checkpoint {checkpoint_path} belongs to another run: it was written with "
                f"{name}={short_repr(recorded)}, but {config.run_dir}/config.yaml has "
                f"{name}={short_repr(current[name])}"
            )


def _check_extended_run(recorded: dict[str, Any], config: Config, checkpoint_path: Path) -> None:
    """A checkpoint's total_steps is at most the run's (an extension only raises it), and its
    schedules end where the run's do (an extension keeps that end in anneal_steps)."""
    total = recorded.get("total_steps", _DEFAULTS["total_steps"])
    anneal = recorded.get("anneal_steps", _DEFAULTS["anneal_steps"])  # absent before anneal_steps existed
    if not (is_count(total) and total <= config.total_steps):
        raise CheckpointError(
            f"checkpoint {checkpoint_path} belongs to another run: it was written with "
            f"total_steps={short_repr(total)}, but {config.run_dir}/config.yaml has "
            f"total_steps={config.total_steps:,} (a run's total only grows)"
        )
    end = total if anneal is None else anneal
    if end != anneal_end(config):
        raise CheckpointError(
            f"checkpoint {checkpoint_path} belongs to another run: its learning-rate and importance-sampling "
            f"schedules end at env step {short_repr(end)}, but {config.run_dir}/config.yaml ends them at "
            f"{anneal_end(config):,} (anneal_steps={short_repr(config.anneal_steps)}, "
            f"total_steps={config.total_steps:,})"
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
