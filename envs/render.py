"""Watching and recording an env: MP4 files of episodes (Gymnasium's RecordVideo, which needs
moviepy, the ``video`` extra) and a window for ``render_mode="human"`` (which needs a display).

Both checks run before any episode, so a missing package or display is one clear line, not a
traceback from deep inside pygame or moviepy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium as gym
from gymnasium.wrappers import RecordVideo

from configs.errors import UserError
from envs.packages import missing_package


def require_moviepy() -> None:
    """Raise UserError unless moviepy (which RecordVideo writes MP4s with) can be imported."""
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise missing_package("recording video", "moviepy", "video") from None


def require_display() -> None:
    """Raise UserError on Linux when no X11 or Wayland display is set (a window cannot open)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("--render opens a window, but no display is available (DISPLAY is not set); "
                        "record the episodes with --video DIR instead")


def record_video(env: gym.Env, video_dir: str | Path, *, episodes: int, name_prefix: str) -> gym.Env:
    """Wrap an ``rgb_array`` env so that each of its first ``episodes`` episodes is written to
    ``video_dir/<name_prefix>-episode-<i>.mp4``. Only the first ``episodes`` are recorded because
    the reset that follows the last episode would otherwise start a one-frame video."""
    require_moviepy()
    return RecordVideo(env, str(video_dir), episode_trigger=lambda episode: episode < episodes,
                       name_prefix=name_prefix, disable_logger=True)
