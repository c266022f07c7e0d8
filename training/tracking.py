"""Experiment tracking (``--track wandb|mlflow``): what TensorBoard gets, also sent to Weights & Biases
or MLflow.

The loop writes through one ``SummaryWriter``; with tracking on it is a :class:`TrackingWriter`, which
passes every ``add_scalar`` and ``add_text`` on to the tracker as well, so the two records hold the same
scalars at the same env steps. The config goes to the tracker as its run config (W&B) or parameters
(MLflow), and the run directory's TensorBoard text as a text file.

- W&B runs offline unless ``WANDB_MODE`` says otherwise (no account or network needed; ``wandb sync
  RUN_DIR/wandb/offline-run-*`` uploads later); its files live in ``RUN_DIR/wandb/``; the project is
  ``WANDB_PROJECT`` or ``dqn-family``, the run named after the run directory and grouped by its parent
  (``runs``, or a tuning study's folder). Scalars are plotted against the ``env_step`` metric.
- MLflow logs to ``MLFLOW_TRACKING_URI`` if set, else to an SQLite file ``mlruns/mlflow.db`` under the
  current directory, artifacts beside it (MLflow 3 refuses its plain-folder store unless
  ``MLFLOW_ALLOW_FILE_STORE=true``); the experiment is the env id.

The tracker's run id is kept in ``RUN_DIR/tracking.json`` with a random key, so ``--resume`` continues
the same tracked run, and only one that is verifiably this run's: a run directory from someone else
must not make a resume append to, or change, another experiment's record. The W&B run id is derived
from the key (a SHA-256 prefix); the MLflow run carries the key's SHA-256 as a tag. A recorded run
that does not match is not continued: a new one starts, and one line says so.
If a new run's tracker cannot start, the run directory just made is removed again (all or nothing).
An MLflow server that does not answer fails the start in seconds, not after minutes of retries.
Tracking never stops training: if the tracker fails mid-run, one warning says so and TensorBoard goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torch.utils.tensorboard import SummaryWriter

from dqn_family.configs import Config, ConfigError, config_to_dict
from dqn_family.fileio import load_json, one_line, require_real_folder, short_repr, write_text_atomic
from dqn_family.training.run_dir import discard_new_run_dir

TRACKING_FILE = "tracking.json"
_TRACKING_FILE_MAX_BYTES = 4096
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # W&B's and MLflow's run ids both fit
_KEY = re.compile(r"^[0-9a-f]{32}$")
_KEY_TAG = "dqn_family.key_sha256"  # an MLflow run's tag: the SHA-256 of its run directory's key
_START_TIMEOUT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}  # unless the user set them
_METRICS_PER_BATCH = 500  # MLflow's log_batch takes at most 1,000 metrics


def check_available(track: str) -> None:
    """ConfigError naming the extra to install when the tracker's package is missing (checked before
    the run directory is created, so a missing package leaves nothing behind)."""
    if track != "none" and track not in sys.modules and importlib.util.find_spec(track) is None:
        raise ConfigError(
            f"--track {track} needs the {track} package, which is not installed: "
            f"pip install 'dqn-family[track]' (or pip install {track})"
        )


@dataclass(frozen=True)
class Recorded:
    """What tracking.json holds: the tracked run's id and this run directory's key."""

    run_id: str
    key: str


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def new_key() -> str:
    return secrets.token_hex(16)


class Tracker(Protocol):
    run_id: str
    key: str  # this run directory's key, recorded beside run_id

    def scalar(self, tag: str, value: float, step: int) -> None: ...

    def text(self, tag: str, text: str) -> None: ...

    def close(self, status: str) -> None:
        """``status``: finished, failed or killed."""


class WandbTracker:
    """One W&B run; scalars logged at the same env step are sent as one row."""

    def __init__(self, config: dict[str, Any], run_dir: Path, recorded: Recorded | None) -> None:
        import wandb

        # The run id is derived from the key: a recorded id is continued only if its key gives it.
        verified = recorded is not None and recorded.run_id == key_digest(recorded.key)[:32]
        self.key = recorded.key if recorded is not None and verified else new_key()
        self.run_id = key_digest(self.key)[:32]
        self.run = wandb.init(
            mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
            project=os.environ.get("WANDB_PROJECT", "dqn-family"),
            dir=str(require_real_folder(run_dir / "wandb").parent),  # W&B writes in RUN_DIR/wandb: a real folder
            name=run_dir.name,
            group=run_dir.resolve().parent.name,
            id=self.run_id,
            resume="allow",
            config=config,
            settings=wandb.Settings(silent=True, console="off", disable_git=True),
        )
        self.run.define_metric("env_step")
        self.run.define_metric("*", step_metric="env_step")
        self._row: dict[str, Any] = {}

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._row and self._row["env_step"] != step:
            self._send()
        self._row.setdefault("env_step", step)
        self._row[tag] = value

    def text(self, tag: str, text: str) -> None:
        self.run.summary[tag] = text

    def close(self, status: str) -> None:
        self._send()
        self.run.finish(exit_code=0 if status == "finished" else 1)

    def _send(self) -> None:
        if self._row:
            self.run.log(self._row)
            self._row = {}


class MlflowTracker:
    """One MLflow run, through MlflowClient (no global active run); metrics sent in batches."""

    def __init__(self, config: dict[str, Any], run_dir: Path, recorded: Recorded | None) -> None:
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()
        self.client = MlflowClient(tracking_uri=mlflow_uri())
        if recorded is not None and self._tagged(recorded.run_id, key_digest(recorded.key)):
            self.run_id, self.key = recorded.run_id, recorded.key
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.key = new_key()
            experiment = str(config["env_id"])
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            tags = {"run_dir": str(run_dir.resolve()), "group": run_dir.resolve().parent.name}
            self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name, tags=tags).info.run_id
            params = [Param(name, str(value)) for name, value in config.items()]
            for start in range(0, len(params), 100):  # log_batch takes at most 100 parameters
                self.client.log_batch(self.run_id, params=params[start : start + 100])
            self.client.log_batch(self.run_id, tags=[RunTag(_KEY_TAG, key_digest(self.key))])
        self._metrics: list[Any] = []

    def _tagged(self, run_id: str, digest: str) -> bool:
        """Whether run ``run_id`` exists and carries this run directory's key digest."""
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_run(run_id).data.tags
        except MlflowException:
            return False
        return secrets.compare_digest(str(tags.get(_KEY_TAG, "")), digest)

    def scalar(self, tag: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        self._metrics.append(Metric(tag, float(value), int(time.time() * 1000), step))
        if len(self._metrics) >= _METRICS_PER_BATCH:
            self._send()

    def text(self, tag: str, text: str) -> None:
        self.client.log_text(self.run_id, text, f"{tag}.md")

    def close(self, status: str) -> None:
        self._send()
        self.client.set_terminated(
            self.run_id, status={"finished": "FINISHED", "killed": "KILLED"}.get(status, "FAILED")
        )

    def _send(self) -> None:
        if self._metrics:
            self.client.log_batch(self.run_id, metrics=self._metrics)
            self._metrics = []


def mlflow_uri() -> str:
    """MLFLOW_TRACKING_URI, or the SQLite file mlruns/mlflow.db under the current directory."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    folder = require_real_folder(Path.cwd() / "mlruns")  # MLflow writes its database and artifacts there
    return f"sqlite:///{folder / 'mlflow.db'}"


def prepare_store(track: str) -> None:
    """Create MLflow's default SQLite store now, so that processes started next (tune.py's workers)
    find its tables made instead of racing to make them."""
    if track == "mlflow":
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()
        MlflowClient(tracking_uri=mlflow_uri()).search_experiments(max_results=1)


def _quiet_mlflow() -> None:
    """MLflow's INFO lines (creating and updating its database tables) off; warnings stay."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)


_TRACKER_CLASSES: dict[str, Callable[[dict[str, Any], Path, Recorded | None], Tracker]] = {
    "wandb": WandbTracker,
    "mlflow": MlflowTracker,
}


class TrackingWriter(SummaryWriter):
    """A SummaryWriter that also sends its scalars and texts to a tracker. Leaving its ``with`` block
    closes the tracked run as finished, killed (KeyboardInterrupt, or a signal's exception) or failed."""

    def __init__(self, tracker: Tracker, **summary_writer_args: Any) -> None:
        super().__init__(**summary_writer_args)
        self.tracker: Tracker | None = tracker

    def add_scalar(self, tag: str, scalar_value: Any, global_step: Any = None, *args: Any, **kwargs: Any) -> None:
        super().add_scalar(tag, scalar_value, global_step, *args, **kwargs)
        self._forward(lambda tracker: tracker.scalar(tag, float(scalar_value), int(global_step or 0)))

    def add_text(self, tag: str, text_string: str, global_step: Any = None, *args: Any, **kwargs: Any) -> None:
        super().add_text(tag, text_string, global_step, *args, **kwargs)
        self._forward(lambda tracker: tracker.text(tag, text_string))

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            status = "finished"
        else:
            status = "killed" if issubclass(kind, KeyboardInterrupt) or hasattr(error, "exit_code") else "failed"
        self._forward(lambda tracker: tracker.close(status))
        self.tracker = None
        super().__exit__(kind, error, traceback)

    def _forward(self, call: Any) -> None:
        if self.tracker is None:
            return
        try:
            call(self.tracker)
        except Exception as error:  # a tracker's failure (network, database) must not end training
            print(f"warning: experiment tracking stopped ({one_line(error)}); TensorBoard goes on", file=sys.stderr)
            self.tracker = None


def open_writer(config: Config, run_dir: Path, purge_step: int | None = None) -> SummaryWriter:
    """The run's TensorBoard writer, tracking to ``config.track`` as well when it is set (the caller
    checked the package with ``check_available`` before making the run directory). ``purge_step``
    None is a new run: if its tracker cannot start, the run directory is removed again."""
    if config.track == "none":
        return SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
    try:
        tracker = _start_tracker(config, run_dir)
    except Exception as error:  # the tracker's own setup (a bad URI, an unwritable store): one line, not a traceback
        if purge_step is None:
            discard_new_run_dir(run_dir, TRACKING_FILE, "wandb")  # and what the tracker wrote
        raise ConfigError(f"--track {config.track} could not start: {one_line(error)}") from None
    return TrackingWriter(tracker, log_dir=str(run_dir), purge_step=purge_step)


def _start_tracker(config: Config, run_dir: Path) -> Tracker:
    """The tracked run: the recorded one if it is verifiably this run's, else a new one (said in one line)."""
    recorded = _recorded(run_dir, config.track)
    values = config_to_dict(config) | {"run_dir": str(run_dir)}
    with _fail_fast():
        tracker = _TRACKER_CLASSES[config.track](values, run_dir, recorded)
    if recorded is not None and tracker.run_id != recorded.run_id:
        print(
            f"note: {run_dir / TRACKING_FILE} names {config.track} run {recorded.run_id}, which is not verifiably this "
            f"run's (its key does not match); tracking to a new run {tracker.run_id}",
            file=sys.stderr,
        )
    if recorded is None or tracker.run_id != recorded.run_id:
        record = {"track": config.track, "run_id": tracker.run_id, "key": tracker.key}
        write_text_atomic(run_dir / TRACKING_FILE, json.dumps(record) + "\n")
    return tracker


@contextlib.contextmanager
def _fail_fast() -> Iterator[None]:
    """MLflow's HTTP client retries an unreachable server for minutes; starting a run, give up in seconds."""
    added = {name: value for name, value in _START_TIMEOUT.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _recorded(run_dir: Path, track: str) -> Recorded | None:
    """The tracked run this run directory logged to before (a resume), if it was the same tracker and
    tracking.json holds a well-formed id and key. A file that is no such record (malformed, or without
    a key: older runs) is not verifiable: None, and one line says a new tracked run starts."""
    path = run_dir / TRACKING_FILE
    if not path.exists() and not path.is_symlink():
        return None
    recorded = load_json(path, max_bytes=_TRACKING_FILE_MAX_BYTES, what="tracking file", error=ConfigError)
    if isinstance(recorded, dict) and recorded.get("track") in _TRACKER_CLASSES and recorded["track"] != track:
        return None  # the run was tracked with the other tracker: this one starts its own run
    run_id, key = (recorded.get("run_id"), recorded.get("key")) if isinstance(recorded, dict) else (None, None)
    if isinstance(run_id, str) and _RUN_ID.match(run_id) and isinstance(key, str) and _KEY.match(key):
        return Recorded(run_id, key)
    print(
        f"note: {path} is not a verifiable record of a {track} run (it needs track, run_id and key); "
        f"tracking to a new run (got {short_repr(recorded, 80)})",
        file=sys.stderr,
    )
    return None
