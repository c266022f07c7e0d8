"""Which run a resume continues and with which settings: the recorded config wins, harmless
settings may change, anything that changes the run's meaning is refused."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_family.checkpoints import HARMLESS_ON_RESUME, CheckpointError, check_same_run, resume_config
from dqn_family.configs import Config, ConfigError, config_to_dict, save_config
from dqn_family.configs.config import FIELD_NAMES
from dqn_family.configs.errors import UserError
from dqn_family.configs.schedules import anneal_end
from dqn_family.training.run_dir import find_run_dir


def run_dir_with(tmp_path: Path, **fields) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    save_config(Config(run_dir=str(run_dir), **fields), run_dir / "config.yaml")
    return run_dir


def test_find_run_dir_accepts_folder_with_config(tmp_path):
    assert find_run_dir(run_dir_with(tmp_path)) == tmp_path / "run"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "file").write_text("x") and p / "file", "is not a run directory: it has no config.yaml"),
        (lambda p: p, "is not a run directory: it has no config.yaml"),
    ],
)
def test_find_run_dir_refuses_what_is_not_a_run(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        find_run_dir(make(tmp_path))


def test_resume_config_without_overrides_is_the_recorded_config(tmp_path):
    run_dir = run_dir_with(tmp_path, learning_rate=0.003, hidden_sizes=(32, 32))
    assert resume_config(run_dir, {}) == Config(run_dir=str(run_dir), learning_rate=0.003, hidden_sizes=(32, 32))


def test_resume_config_accepts_equal_values_and_harmless_changes(tmp_path):
    run_dir = run_dir_with(tmp_path, learning_rate=0.003)
    config = resume_config(
        run_dir,
        {
            "learning_rate": 0.003,
            "device": "cpu",
            "torch_threads": 2,
            "progress": False,
            "checkpoint_every": 7,
            "keep_checkpoints": 3,
            "compile": True,
            "device_replay": False,
        },
    )
    assert (config.learning_rate, config.device, config.torch_threads, config.progress) == (0.003, "cpu", 2, False)
    assert (config.checkpoint_every, config.keep_checkpoints, config.compile, config.device_replay) == (
        7,
        3,
        True,
        False,
    )


def test_resume_config_takes_the_run_dir_it_was_found_in(tmp_path):
    run_dir = run_dir_with(tmp_path)
    moved = run_dir.rename(tmp_path / "moved")
    assert resume_config(moved, {}).run_dir == str(moved)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"learning_rate": 0.5},
            "--learning-rate cannot change when resuming: the run has learning_rate=0.0001, given 0.5",
        ),
        ({"env_id": "Acrobot-v1"}, "--env-id cannot change when resuming"),
        ({"hidden_sizes": (8,)}, "--hidden-sizes cannot change"),
        ({"seed": 2}, "--seed cannot change"),
    ],
)
def test_resume_config_refuses_changes_of_meaning(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as raised:
        resume_config(run_dir_with(tmp_path), overrides)
    assert "--device" in str(raised.value)  # says what may differ


def test_resume_config_larger_total_steps_extends_the_run_keeping_its_schedules_end(tmp_path):
    config = resume_config(run_dir_with(tmp_path, total_steps=400), {"total_steps": 600, "device": "cpu"})
    assert (config.total_steps, config.anneal_steps, config.device) == (600, 400, "cpu")


def test_resume_config_extension_keeps_an_anneal_steps_already_set(tmp_path):
    config = resume_config(run_dir_with(tmp_path, total_steps=600, anneal_steps=400), {"total_steps": 800})
    assert (config.total_steps, config.anneal_steps) == (800, 400)


def test_resume_config_smaller_total_steps_is_refused_naming_the_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"--total-steps 300 is below the run's: it already has total_steps=400;"):
        resume_config(run_dir_with(tmp_path, total_steps=400), {"total_steps": 300})


def test_resume_config_anneal_steps_cannot_change_apart_from_an_extension(tmp_path):
    with pytest.raises(ConfigError, match="--anneal-steps cannot change when resuming"):
        resume_config(run_dir_with(tmp_path, total_steps=400), {"total_steps": 600, "anneal_steps": 500})


def test_resume_config_invalid_harmless_value_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="keep_checkpoints must be >= 1"):
        resume_config(run_dir_with(tmp_path), {"keep_checkpoints": 0})


def test_check_same_run_accepts_the_runs_own_config(tmp_path):
    config = Config(run_dir=str(tmp_path))
    check_same_run(
        config_to_dict(dataclasses.replace(config, device="cpu", run_dir="/elsewhere")), config, tmp_path / "c.json"
    )


def test_check_same_run_refuses_checkpoint_of_another_env(tmp_path):
    config = Config(run_dir=str(tmp_path))
    other = config_to_dict(dataclasses.replace(config, env_id="Acrobot-v1"))
    with pytest.raises(
        CheckpointError,
        match="belongs to another run: it was written with env_id='Acrobot-v1', "
        "but .*config.yaml has env_id='CartPole-v1'",
    ):
        check_same_run(other, config, tmp_path / "c.json")


def test_check_same_run_accepts_a_checkpoint_from_before_the_run_was_extended(tmp_path):
    before = Config(run_dir=str(tmp_path), total_steps=400)
    extended = dataclasses.replace(before, total_steps=600, anneal_steps=400)
    check_same_run(config_to_dict(before), extended, tmp_path / "c.json")


@pytest.mark.parametrize(
    "recorded, message",
    [
        ({"total_steps": 800}, "written with total_steps=800, but .* has total_steps=600 \\(a run's total only grows"),
        ({"total_steps": 500}, "schedules end at env step 500, but .* ends them at 400"),
        ({"total_steps": 400, "anneal_steps": 300}, "schedules end at env step 300, but .* ends them at 400"),
    ],
)
def test_check_same_run_refuses_a_checkpoint_whose_total_or_schedule_end_differ(tmp_path, recorded, message):
    config = Config(run_dir=str(tmp_path), total_steps=600, anneal_steps=400)
    with pytest.raises(CheckpointError, match=message):
        check_same_run({**config_to_dict(config), "anneal_steps": None, **recorded}, config, tmp_path / "c.json")


def test_check_same_run_reads_a_field_missing_from_an_older_checkpoint_as_its_default(tmp_path):
    config = Config(run_dir=str(tmp_path))
    recorded = config_to_dict(config)
    del recorded["n_step"]
    check_same_run(recorded, config, tmp_path / "c.json")


# --- any overrides: a Config that keeps the run's meaning, or a ConfigError --------------------------

values = (
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.tuples(st.integers(-2, 64))
)
overrides_strategy = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=4)


@settings(max_examples=150, deadline=None)
@given(overrides=overrides_strategy)
def test_resume_config_any_overrides_keep_meaning_or_raise_config_error(overrides):
    with tempfile.TemporaryDirectory() as folder:
        run_dir = run_dir_with(Path(folder))
        saved = Config(run_dir=str(run_dir))
        try:
            config = resume_config(run_dir, overrides)
        except ConfigError:
            return
    assert isinstance(config, Config)
    for name in FIELD_NAMES:
        if name not in HARMLESS_ON_RESUME and name not in ("total_steps", "anneal_steps"):
            assert getattr(config, name) == getattr(saved, name), name
    assert config.total_steps >= saved.total_steps  # an extension, whose schedules end where they did
    assert anneal_end(config) == anneal_end(saved)
