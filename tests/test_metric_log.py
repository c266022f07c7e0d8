"""training.metrics.MetricLog: episodes are written with their own env steps, in one burst per log
followed by a wait for the writer (so TensorBoard's thread is not woken per episode)."""

from __future__ import annotations

import torch

from dqn_family.training import MetricLog


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.calls.append(("scalar", tag, value, step))

    def flush(self) -> None:
        self.calls.append(("flush",))


def test_metric_log_writes_episodes_at_the_next_flush_with_their_own_steps():
    writer = RecordingWriter()
    log = MetricLog(writer, torch.device("cpu"))
    log.add_episode(12.0, 12, step=40)
    log.add_episode(30.0, 30, step=95)
    assert writer.calls == []
    summary = log.flush(step=100, epsilon=0.5)
    episodes = [call for call in writer.calls if call[0] == "scalar" and call[1].startswith("charts/episodic")]
    assert episodes == [
        ("scalar", "charts/episodic_return", 12.0, 40),
        ("scalar", "charts/episodic_length", 12, 40),
        ("scalar", "charts/episodic_return", 30.0, 95),
        ("scalar", "charts/episodic_length", 30, 95),
    ]
    assert writer.calls[-1] == ("flush",) and writer.calls.count(("flush",)) == 1
    assert summary["ret"] == "21.0"
    log.flush(step=200, epsilon=0.5)
    assert sum(call[1] == "charts/episodic_return" for call in writer.calls if call[0] == "scalar") == 2


def test_metric_log_write_episodes_hands_over_pending_episodes_once():
    writer = RecordingWriter()
    log = MetricLog(writer, torch.device("cpu"))
    log.add_episode(5.0, 5, step=7)
    log.write_episodes()
    log.write_episodes()
    assert writer.calls == [("scalar", "charts/episodic_return", 5.0, 7), ("scalar", "charts/episodic_length", 5, 7)]
