"""The console scripts (``dqn-train``, ``dqn-evaluate``, ...): each runs its command's module as
``python -m dqn_family.<command>`` would, so that the module reads its command line before its
heavy imports (``dqn-train --help`` answers without importing torch, gymnasium or Ray)."""

from __future__ import annotations

import runpy


def _run(module: str) -> None:
    runpy.run_module(f"dqn_family.{module}", run_name="__main__", alter_sys=True)  # ends in sys.exit


def train() -> None:
    _run("train")


def evaluate() -> None:
    _run("evaluate")


def export() -> None:
    _run("export")


def tune() -> None:
    _run("tune")


def multirun() -> None:
    _run("multirun")


def aggregate() -> None:
    _run("aggregate")


def plot() -> None:
    _run("plot")
