"""evaluate.py --video and --render: MP4s of the evaluation episodes (nothing on stderr on a headless
machine, an earlier recording's episodes replaced, nothing else touched), and one-line errors when
moviepy or a display is missing. The run directory is made by hand: a config and a fresh network."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import pytest

from dqn_family import evaluate
from dqn_family.agents import build_network, save_model
from dqn_family.configs import Config, save_config
from dqn_family.envs.render import HeadlessRendering, remove_recorded_episodes


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


def test_evaluate_video_rerecording_leaves_no_episode_of_the_earlier_recording(run_dir, tmp_path):
    videos = tmp_path / "videos"
    assert evaluate.main([str(run_dir), "--episodes", "3", "--device", "cpu", "--video", str(videos)]) == 0
    assert evaluate.main([str(run_dir), "--episodes", "1", "--device", "cpu", "--video", str(videos)]) == 0
    assert [v.name for v in videos.iterdir()] == ["CartPole-v1-episode-0.mp4"]


def test_remove_recorded_episodes_deletes_only_the_recorders_own_files(tmp_path):
    elsewhere = tmp_path / "keep.mp4"
    elsewhere.write_text("x")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in (
        "CartPole-v1-episode-0.mp4",
        "CartPole-v1-episode-12.mp4",
        "CartPole-v1-episode-1.mp4.bak",
        "CartPole-v1-episode-x.mp4",
        "CartPole-v1-step-0.mp4",
        "Acrobot-v1-episode-0.mp4",
        "notes.txt",
    ):
        (videos / name).write_text("x")
    (videos / "CartPole-v1-episode-7.mp4").mkdir()
    (videos / "CartPole-v1-episode-8.mp4").symlink_to(elsewhere)
    removed = remove_recorded_episodes(videos, "CartPole-v1")
    assert [path.name for path in removed] == ["CartPole-v1-episode-0.mp4", "CartPole-v1-episode-12.mp4"]
    assert sorted(path.name for path in videos.iterdir()) == [
        "Acrobot-v1-episode-0.mp4",
        "CartPole-v1-episode-1.mp4.bak",
        "CartPole-v1-episode-7.mp4",
        "CartPole-v1-episode-8.mp4",
        "CartPole-v1-episode-x.mp4",
        "CartPole-v1-step-0.mp4",
        "notes.txt",
    ]
    assert elsewhere.read_text() == "x"


class DriverSeen(gym.Env):
    """Renders the SDL video driver the environment names while it renders."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"
    observation_space, action_space = gym.spaces.Discrete(1), gym.spaces.Discrete(1)

    def render(self):
        return os.environ.get("SDL_VIDEODRIVER")


def test_headless_rendering_uses_sdl_dummy_driver_only_while_rendering(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    assert HeadlessRendering(DriverSeen()).render() == "dummy"
    assert "SDL_VIDEODRIVER" not in os.environ


def test_headless_rendering_keeps_a_driver_the_user_chose(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    assert HeadlessRendering(DriverSeen()).render() == "x11"
    assert os.environ["SDL_VIDEODRIVER"] == "x11"


def test_evaluate_video_on_headless_machine_prints_nothing_on_stderr(run_dir, tmp_path):
    # pygame's SDL printed "error: XDG_RUNTIME_DIR is invalid or not set" here; it writes to the
    # process's stderr from C, so the check runs in a fresh process without a display.
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    }
    completed = subprocess.run(
        [
            sys.executable,
            "evaluate.py",
            str(run_dir),
            "--episodes",
            "1",
            "--device",
            "cpu",
            "--video",
            str(tmp_path / "videos"),
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=os.path.dirname(evaluate.__file__),
        timeout=120,
    )
    assert completed.returncode == 0 and completed.stderr == ""
    assert (tmp_path / "videos" / "CartPole-v1-episode-0.mp4").is_file()


def test_evaluate_policy_returns_are_the_same_with_video(run_dir, tmp_path):
    config, q_network = evaluate.load_run(run_dir, device="cpu")
    plain = evaluate.evaluate_policy(q_network, "CartPole-v1", episodes=2, seed=5, epsilon=0.5)
    recorded = evaluate.evaluate_policy(
        q_network, "CartPole-v1", episodes=2, seed=5, epsilon=0.5, video_dir=tmp_path / "videos"
    )
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
