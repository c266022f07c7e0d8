"""Checkpoints: a run's full training state on disk, written so that a kill at any moment leaves a
loadable one, and read without running code; the rules for resuming a run from one; and stopping
on SIGINT/SIGTERM at a moment when a checkpoint can be saved.

Imports ``configs``, numpy and torch only: ``train.py`` decides what goes into a checkpoint.
"""

from dqn_family.checkpoints.files import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    checkpoint_folder,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    lock_run_dir,
    read_manifest,
    save_checkpoint,
)
from dqn_family.checkpoints.resume import (
    HARMLESS_ON_RESUME,
    check_same_run,
    extension,
    record_extension,
    record_resume,
    resume_config,
    wait_for_later_event_file_name,
)
from dqn_family.checkpoints.signals import StopRequest, TrainingInterrupted, stop_on_signals
from dqn_family.checkpoints.state import (
    check_global_rng_state,
    global_rng_state,
    set_global_rng_state,
    set_numpy_generator_state,
    to_arrays,
    to_storable,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "HARMLESS_ON_RESUME",
    "check_global_rng_state",
    "check_same_run",
    "checkpoint_folder",
    "extension",
    "global_rng_state",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "lock_run_dir",
    "read_manifest",
    "record_extension",
    "record_resume",
    "resume_config",
    "save_checkpoint",
    "set_global_rng_state",
    "set_numpy_generator_state",
    "StopRequest",
    "stop_on_signals",
    "to_arrays",
    "to_storable",
    "TrainingInterrupted",
    "wait_for_later_event_file_name",
]
