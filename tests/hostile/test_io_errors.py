"""A bad path or a machine problem (full disk, read-only media) is one line naming the path and the
cause, exit code 2 for the user's path and 1 for the machine, with no traceback; what was saved
before stays intact (a full disk mid-checkpoint leaves the previous checkpoint, which resumes)."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from dqn_family import aggregate, evaluate, multirun, plot, train
from dqn_family.checkpoints import files as checkpoint_files
from dqn_family.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
from dqn_family.checkpoints import resume as checkpoint_resume
from dqn_family.configs.errors import os_error_line
from dqn_family.training import run_dir as run_dir_module
from dqn_family.training import state as training_state
from tests.checkpoints.conftest import file_hashes
from tests.hostile.conftest import TINY_FLAGS, error_line, remount_read_only


def run_train(capsys, *flags: str) -> tuple[int, str]:
    code = train.main([*TINY_FLAGS, *flags])
    return code, capsys.readouterr().err


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write names no path


def stopped_run(tmp_path, monkeypatch):
    """A run of 300 env steps stopped by SIGINT just after its checkpoint of step 100."""
    real_save = training_state.save_checkpoint

    def save_then_interrupt(run_dir, state, *, env_step, keep):
        real_save(run_dir, state, env_step=env_step, keep=keep)
        if env_step == 100:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(training_state, "save_checkpoint", save_then_interrupt)
    run_dir = tmp_path / "run"
    assert train.main([*TINY_FLAGS, "--run-dir", str(run_dir)]) == 130
    monkeypatch.setattr(training_state, "save_checkpoint", real_save)
    return run_dir


def test_os_error_line_exit_code_is_1_for_the_machine_and_2_for_a_path():
    assert os_error_line(OSError(errno.ENOSPC, "x", "/runs/a"))[1] == 1
    assert os_error_line(OSError(errno.EROFS, "x", "/runs/a"))[1] == 1
    assert os_error_line(OSError(errno.EIO, "x"))[1] == 1
    assert os_error_line(OSError(errno.ENOTDIR, "x", "/f/sub"))[1] == 2
    assert os_error_line(OSError(errno.ENAMETOOLONG, "x", "a" * 5000))[1] == 2


def test_os_error_line_names_path_and_cause_in_bounded_length():
    line, _ = os_error_line(OSError(errno.ENAMETOOLONG, "x", "/tmp/" + "a" * 5000))
    assert line.startswith("/tmp/aaa") and "File name too long" in line and len(line) < 300


def test_train_run_dir_through_a_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "somefile").write_text("keep me")
    code, err = run_train(capsys, "--run-dir", str(tmp_path / "somefile" / "sub"))
    assert code == 2
    assert "somefile/sub: Not a directory" in error_line(err, "train.py")
    assert (tmp_path / "somefile").read_text() == "keep me"


def test_train_run_dir_name_too_long_is_one_line_exit_2(tmp_path, capsys):
    code, err = run_train(capsys, "--run-dir", str(tmp_path / ("a" * 300)))
    assert code == 2 and "File name too long" in error_line(err, "train.py")


def test_train_run_dir_dangling_symlink_is_one_line_exit_2_and_keeps_the_link(tmp_path, capsys):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere" / "x")
    code, err = run_train(capsys, "--run-dir", str(link))
    assert code == 2 and "symbolic link" in error_line(err, "train.py")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_train_disk_full_at_start_exits_1_and_leaves_no_run_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_dir_module, "write_text_atomic", disk_full)  # meta.json, after config.yaml
    code, err = run_train(capsys, "--run-dir", str(tmp_path / "run"))
    line = error_line(err, "train.py")
    assert code == 1 and f"{tmp_path / 'run'}: No space left on device" in line
    assert not (tmp_path / "run").exists()  # so the same --run-dir works once there is space


def test_train_disk_full_at_an_evaluation_exits_1_naming_the_run_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "save_model", disk_full)  # evaluate_and_save writes the models
    code, err = run_train(capsys, "--run-dir", str(tmp_path / "run"), "--eval-frequency", "150", "--eval-episodes", "1")
    assert code == 1 and f"{tmp_path / 'run'}: No space left on device" in error_line(err, "train.py")


def test_train_disk_full_mid_checkpoint_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    real_write = checkpoint_files._HashingWriter.write

    def fill_up_at_step_200(self, data):
        if self.env_step == 200:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # torch.save makes it a RuntimeError
        return real_write(self, data)

    monkeypatch.setattr(checkpoint_files._HashingWriter, "write", fill_up_at_step_200)
    run_dir = tmp_path / "run"
    code, err = run_train(capsys, "--run-dir", str(run_dir))
    assert code == 1 and "No space left on device" in error_line(err, "train.py")
    assert [step for step, _ in list_checkpoints(run_dir)] == [100]
    assert load_checkpoint(latest_checkpoint(run_dir))["env_step"] == 100
    monkeypatch.setattr(checkpoint_files._HashingWriter, "write", real_write)
    assert train.main(["--resume", str(run_dir), "--no-progress"]) == 0  # the space is back


def test_train_real_full_tmpfs_exits_1_and_keeps_the_last_checkpoint(tmpfs, capsys):
    (tmpfs / "filler").write_bytes(b"\0" * (3 * 2**20 - 150_000))  # room for a few checkpoints, all kept
    code = train.main(
        [*TINY_FLAGS, "--run-dir", str(tmpfs / "run"), "--total-steps", "3000", "--keep-checkpoints", "100"]
    )
    assert code == 1 and "No space left on device" in error_line(capsys.readouterr().err, "train.py")
    found = list_checkpoints(tmpfs / "run")
    assert found and load_checkpoint(found[-1][1])["env_step"] == found[-1][0]  # the last one is whole


def test_train_resume_on_read_only_media_exits_1_and_changes_nothing(tmp_path, capsys, monkeypatch):
    run_dir = stopped_run(tmp_path, monkeypatch)
    capsys.readouterr()
    before = file_hashes(run_dir)

    def read_only(path, text):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(checkpoint_resume, "write_text_atomic", read_only)
    code = train.main(["--resume", str(run_dir), "--no-progress"])
    line = error_line(capsys.readouterr().err, "train.py")
    assert code == 1 and "meta.json: Read-only file system" in line
    assert file_hashes(run_dir) == before


def test_train_on_a_read_only_mount_exits_1_and_writes_nothing(tmpfs, capsys):
    remount_read_only(tmpfs)
    code = train.main([*TINY_FLAGS, "--run-dir", str(tmpfs / "run")])
    assert code == 1 and "Read-only file system" in error_line(capsys.readouterr().err, "train.py")
    assert list(tmpfs.iterdir()) == []


def test_evaluate_video_into_a_file_is_one_line_exit_2(cartpole_run, tmp_path, capsys):
    (tmp_path / "somefile").write_text("keep me")
    code = evaluate.main([cartpole_run[0].run_dir, "--episodes", "1", "--video", str(tmp_path / "somefile")])
    assert code == 2 and "somefile" in error_line(capsys.readouterr().err, "evaluate.py")
    assert (tmp_path / "somefile").read_text() == "keep me"


def test_evaluate_json_onto_a_folder_is_one_line_exit_2(cartpole_run, tmp_path, capsys):
    code = evaluate.main([cartpole_run[0].run_dir, "--episodes", "1", "--json", str(tmp_path)])
    assert code == 2 and "Is a directory" in error_line(capsys.readouterr().err, "evaluate.py")


def test_plot_out_a_file_is_one_line_exit_2(cartpole_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "somefile").write_text("keep me")
    code = plot.main([cartpole_run[0].run_dir, "--out", str(tmp_path / "somefile")])
    assert code == 2 and "somefile" in error_line(capsys.readouterr().err, "plot.py")
    assert (tmp_path / "somefile").read_text() == "keep me"


def test_aggregate_json_onto_a_folder_is_one_line_exit_2(cartpole_run, tmp_path, capsys):
    pytest.importorskip("scipy")
    code = aggregate.main([cartpole_run[0].run_dir, "--resamples", "100", "--json", str(tmp_path)])
    assert code == 2 and "Is a directory" in error_line(capsys.readouterr().err, "aggregate.py")


def test_multirun_root_a_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "somefile").write_text("keep me")
    code = multirun.main(["--seeds", "1", "--root", str(tmp_path / "somefile")])
    assert code == 2 and "is a file, not a folder" in error_line(capsys.readouterr().err, "multirun.py")
    assert (tmp_path / "somefile").read_text() == "keep me"


def test_multirun_root_below_a_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "somefile").write_text("keep me")
    code = multirun.main(["--seeds", "1", "--root", str(tmp_path / "somefile" / "sub"), "--set", "total_steps=100"])
    assert code == 2 and "Not a directory" in error_line(capsys.readouterr().err, "multirun.py")
