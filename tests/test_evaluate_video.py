"""evaluate.py --video and --render: MP4s of the evaluation episodes, and one-line errors when
moviepy or a display is missing. The run directory is made by hand: a config and a fresh network."""

from __future__ import annotations

import sys

import pytest

import evaluate
from agents import build_network, save_model
from configs import Config, save_config


@pytest.fixture
def run_dir(tmp_path):
    config = Config(env_id="CartPole-v1", hidden_sizes=(16,), device="cpu", run_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    save_config(config, tmp_path / "run" / "config.yaml")
    save_model(tmp_path / "run" / "model_latest.pt", build_network(config, (4,), 2).state_dict())
    return tmp_path / "run"


def test_evaluate_video_writes_one_nonempty_mp4_per_episode(run_dir, tmp_path):
    assert evaluate.main([str(run_dir), "--episodes", "2", "--device", "cpu", "--video", str(tmp_path / "videos")]) == 0
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["CartPole-v1-episode-0.mp4", "CartPole-v1-episode-1.mp4"]
    assert all(v.stat().st_size > 1000 for v in videos)


def test_evaluate_policy_returns_are_the_same_with_video(run_dir, tmp_path):
    config, q_network = evaluate.load_run(run_dir, device="cpu")
    plain = evaluate.evaluate_policy(q_network, "CartPole-v1", episodes=2, seed=5, epsilon=0.5)
    recorded = evaluate.evaluate_policy(q_network, "CartPole-v1", episodes=2, seed=5, epsilon=0.5,
                                        video_dir=tmp_path / "videos")
    assert recorded == plain


def test_evaluate_video_without_moviepy_is_one_line_error(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "moviepy", None)  # makes `import moviepy` fail
    assert evaluate.main([str(run_dir), "--video", str(tmp_path / "videos")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'run `pip install "moviepy>=1.0"`' in error
    assert not (tmp_path / "videos").exists()


def test_evaluate_render_without_display_is_one_line_error(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert evaluate.main([str(run_dir), "--render"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no display" in error and "--video" in error


def test_evaluate_video_and_render_together_is_usage_error(run_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run_dir), "--render", "--video", str(tmp_path / "videos")])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
