"""The optional packages that some envs and video recording need, and the one line that says how
to install one that is missing.

Every such line has the same form, ``<what> needs <package>, which is not installed: run
`pip install "<requirement>" ...```, naming the packages themselves (not this project's extras,
``pip install -e ".[atari]"``, which work only from a source checkout), as Gymnasium's own
messages do; LunarLander's missing Box2D is reported with Gymnasium's own message, which names its
fix, ``pip install "gymnasium[box2d]"``.
"""

from __future__ import annotations

from dqn_family.configs.errors import UserError

# pip requirements of the extras in pyproject.toml that envs/ checks for (a test checks they agree).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "atari": ("ale-py>=0.9", "opencv-python-headless>=4.8"),
    "minatar": ("minatar>=1.0.15",),
    "video": ("moviepy>=1.0",),
    "popgym": ("popgym>=1.0",),
}


def missing_package(what: str, package: str, extra: str) -> UserError:
    """The error for ``what`` (e.g. "env 'ALE/Pong-v5'") needing ``package``, installed with the
    requirements of ``extra``."""
    install = " ".join(f'"{requirement}"' for requirement in REQUIREMENTS[extra])
    return UserError(f"{what} needs {package}, which is not installed: run `pip install {install}`")
