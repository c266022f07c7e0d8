"""What a caller of ``train(config, on_evaluation=...)`` may observe and decide during a run: each
periodic greedy evaluation is passed to the callback as (env step, mean return), and the callback
may raise :class:`StopTraining` to end the run there, cleanly (a tuner pruning a trial). The run
then ends as a finished one does (final checkpoint, models, summary.json), and its summary.json
says why it stopped early."""

from __future__ import annotations

from collections.abc import Callable

EvaluationCallback = Callable[[int, float], None]  # (env step, mean return of the greedy evaluation)


class StopTraining(Exception):
    """Raised by an evaluation callback to end the run after that evaluation; ``reason`` is
    recorded in summary.json as ``stopped_early``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stop_requested(on_evaluation: EvaluationCallback | None, env_step: int, mean_return: float) -> str | None:
    """Pass an evaluation to the callback; the reason it gave if it asked to stop (StopTraining)."""
    if on_evaluation is None:
        return None
    try:
        on_evaluation(env_step, mean_return)
    except StopTraining as request:
        return request.reason
    return None
