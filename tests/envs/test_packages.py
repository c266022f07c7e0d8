"""Missing optional packages: one line naming the pip install that fixes it, the same form for
every package, and Gymnasium's own fix for LunarLander's Box2D."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from dqn_family.configs.errors import UserError
from dqn_family.envs import EnvError, make_env
from dqn_family.envs.packages import REQUIREMENTS
from dqn_family.envs.render import require_moviepy

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def test_requirements_agree_with_pyproject_extras():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert {extra: tuple(extras[extra]) for extra in REQUIREMENTS} == REQUIREMENTS


def test_make_env_lunar_lander_without_box2d_names_gymnasiums_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "Box2D", None)  # makes `import Box2D` fail
    for module in ("gymnasium.envs.box2d", "gymnasium.envs.box2d.lunar_lander"):  # imported afresh by gym.make
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(EnvError) as error:
        make_env("LunarLander-v3")
    message = str(error.value)
    assert message.startswith("env 'LunarLander-v3' needs a package that is not installed: ")
    assert 'pip install "gymnasium[box2d]"' in message and "\n" not in message and "-e" not in message


def test_make_env_atari_without_ale_py_names_its_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)
    monkeypatch.setattr(gym, "registry", {})  # as if ale-py had never registered its envs
    with pytest.raises(
        UserError,
        match=re.escape(
            "env 'ALE/Pong-v5' needs ale-py, which is not installed: "
            'run `pip install "ale-py>=0.9" "opencv-python-headless>=4.8"`'
        ),
    ):
        make_env("ALE/Pong-v5")


def test_require_moviepy_without_moviepy_names_its_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "moviepy", None)
    with pytest.raises(
        UserError,
        match=re.escape('recording video needs moviepy, which is not installed: run `pip install "moviepy>=1.0"`'),
    ):
        require_moviepy()
