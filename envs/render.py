"""Watching and recording an env: MP4 files of episodes (Gymnasium's RecordVideo, which needs
moviepy, the ``video`` extra) and a window for ``render_mode="human"`` (which needs a display).

Both checks run before any episode, so a missing package or display is one clear line, not a
traceback from deep inside pygame or moviepy.

Recording renders ``rgb_array`` frames, which pygame draws on off-screen surfaces; its video
driver starts all the same, and on a headless Linux machine SDL's Wayland probe prints
``error: XDG_RUNTIME_DIR is invalid or not set`` for nothing. So recorded envs render with SDL's
``dummy`` video driver (unless SDL_VIDEODRIVER is set), set only while they render.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
from gymnasium.wrappers import RecordVideo

from dqn_family.configs.errors import UserError
from dqn_family.envs.packages import missing_package
from dqn_family.fileio import require_writable_file


def require_moviepy() -> None:
    """Raise UserError unless moviepy (which RecordVideo writes MP4s with) can be imported."""
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise missing_package("recording video", "moviepy", "video") from None


def require_display() -> None:
    """Raise UserError on Linux when no X11 or Wayland display is set (a window cannot open)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError(
            "--render opens a window, but no display is available (DISPLAY is not set); "
            "record the episodes with --video DIR instead"
        )


def record_video(env: gym.Env, video_dir: str | Path, *, episodes: int, name_prefix: str) -> gym.Env:
    """Wrap an ``rgb_array`` env so that each of its first ``episodes`` episodes is written to
    ``video_dir/<name_prefix>-episode-<i>.mp4``, after deleting the files of an earlier recording
    with this prefix there (so none of a longer one is left over; nothing else is touched). Only
    the first ``episodes`` are recorded because the reset that follows the last episode would
    otherwise start a one-frame video."""
    require_moviepy()
    remove_recorded_episodes(video_dir, name_prefix)
    if Path(video_dir).is_dir():  # what is left under an episode's name is a link or special file: refused
        for episode in range(episodes):
            require_writable_file(Path(video_dir) / f"{name_prefix}-episode-{episode}.mp4")
    with warnings.catch_warnings():  # "Overwriting existing videos": the old ones were just removed
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        return RecordVideo(
            HeadlessRendering(env),
            str(video_dir),
            episode_trigger=lambda episode: episode < episodes,
            name_prefix=name_prefix,
            disable_logger=True,
        )


def remove_recorded_episodes(video_dir: str | Path, name_prefix: str) -> list[Path]:
    """Delete the regular files named as RecordVideo names episodes, ``<name_prefix>-episode-<i>.mp4``,
    in ``video_dir`` (not below it); return them. Links, folders and other names are left alone."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        return []
    pattern = re.compile(re.escape(name_prefix) + r"-episode-\d+\.mp4")
    removed = [
        path
        for path in sorted(video_dir.iterdir())
        if pattern.fullmatch(path.name) and not path.is_symlink() and path.is_file()
    ]
    for path in removed:
        path.unlink()
    return removed


class HeadlessRendering(gym.Wrapper):
    """Renders with SDL's dummy video driver (see the module docstring) unless SDL_VIDEODRIVER is set."""

    def render(self):
        with _environment_default("SDL_VIDEODRIVER", "dummy"):
            return self.env.render()


@contextlib.contextmanager
def _environment_default(name: str, value: str) -> Iterator[None]:
    """Set the environment variable ``name`` to ``value`` for the block, unless it is set already."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
