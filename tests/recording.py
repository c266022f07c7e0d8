"""Recording the objects the code under test creates, to look inside them after it returns."""

from __future__ import annotations

from typing import Any

import pytest


def record_instances(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[Any]:
    """A list that every ``cls`` built from now on (keyword arguments only) is appended to."""
    made: list[Any] = []
    original_init = cls.__init__

    def recording_init(self, **options):
        original_init(self, **options)
        made.append(self)

    monkeypatch.setattr(cls, "__init__", recording_init)
    return made
