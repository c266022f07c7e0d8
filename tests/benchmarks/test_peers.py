"""benchmarks/peers.py's pure parts: reading what the peers print, and the arithmetic of the table.
No peer is run here."""

import pytest

from benchmarks.peers import (
    mismatches,
    ms_per_frame_from_log,
    ms_per_frame_from_sps,
    parse_cleanrl_sps,
    parse_constants,
    parse_dataclass_defaults,
    parse_minatar_log,
    round_ratios,
    spread,
)

CLEANRL_OUTPUT = """global_step=10012, episodic_return=[23.]
SPS: 9871
global_step=10150, episodic_return=[12.]
SPS: 9604
losses are fine, SPS: 1 is not a line of its own
SPS: 9511
global_step=99950, episodic_return=[41.]
"""

MINATAR_STDERR = """INFO:root:Episode 1000 | Return: 0.0 | Avg return: 0.51 | Frame: 10000 | Time per frame: 0.001
INFO:root:Episode 2000 | Return: 1.0 | Avg return: 0.8 | Frame: 30000 | Time per frame: 0.0015
INFO:root:Episode 3000 | Return: 2.0 | Avg return: 1.12 | Frame: 50000 | Time per frame: 1.7e-3
INFO:root:Avg return: 1.12 | Time per frame: 0.0017
"""


def test_parse_cleanrl_sps_takes_the_last_sps_line():
    assert parse_cleanrl_sps(CLEANRL_OUTPUT) == 9511


def test_parse_cleanrl_sps_none_without_sps_lines():
    assert parse_cleanrl_sps("global_step=99, episodic_return=[9.]\n") is None


def test_parse_minatar_log_reads_frames_and_time_per_frame():
    assert parse_minatar_log(MINATAR_STDERR) == [(10000, 0.001), (30000, 0.0015), (50000, 0.0017)]


def test_ms_per_frame_from_log_between_first_and_last_point():
    # elapsed: 10 s at frame 10,000 and 85 s at frame 50,000: 75 s over 40,000 frames
    ms, frames = ms_per_frame_from_log(parse_minatar_log(MINATAR_STDERR), after_frame=5000)
    assert frames == 40_000
    assert ms == pytest.approx(1.875)


def test_ms_per_frame_from_log_skips_points_before_learning_starts():
    # from frame 30,000 (45 s) to 50,000 (85 s): 40 s over 20,000 frames
    ms, frames = ms_per_frame_from_log(parse_minatar_log(MINATAR_STDERR), after_frame=20_000)
    assert (ms, frames) == (pytest.approx(2.0), 20_000)


def test_ms_per_frame_from_log_none_with_one_point():
    assert ms_per_frame_from_log([(10000, 0.001)], after_frame=5000) is None


def test_ms_per_frame_from_sps_counts_intervals_after_learning_starts():
    # intervals (0, 5000] at 5,000/s (skipped), (5000, 6000] at 1,000/s (1 s), (6000, 8000] at 500/s (4 s)
    ms, steps = ms_per_frame_from_sps([(6000, 1000.0), (5000, 5000.0), (8000, 500.0)], after_step=5000)
    assert steps == 3000
    assert ms == pytest.approx(5000 / 3000)


def test_ms_per_frame_from_sps_none_before_learning_starts():
    assert ms_per_frame_from_sps([(1000, 900.0), (2000, 800.0)], after_step=5000) is None


def test_spread_ignores_missing_values():
    assert spread([3.0, None, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert spread([None]) is None


def test_round_ratios_pairs_rounds_then_takes_the_median():
    ratios = round_ratios([10.0, 12.0, None, 9.0], [20.0, 12.0, 5.0, 10.0])
    assert ratios["per_round"] == [0.5, 1.0, 0.9]  # the third round has no figure of ours
    assert ratios["median"] == 0.9


def test_parse_constants_and_dataclass_defaults():
    module = (
        "BATCH_SIZE = 32\nSTEP_SIZE = 0.00025\nname = 3\n\nclass Args:\n    seed: int = 1\n"
        '    """doc"""\n    learning_rate: float = 2.5e-4\n    wandb_entity: str = None\n\ndef f():\n    x: int = 2\n'
    )
    assert parse_constants(module) == {"BATCH_SIZE": 32.0, "STEP_SIZE": 0.00025}
    assert parse_dataclass_defaults(module, "Args") == {"seed": "1", "learning_rate": "2.5e-4", "wandb_entity": "None"}


def test_mismatches_names_differing_and_missing_settings():
    ours = {"batch_size": 32, "learning_rate": 2.5e-4, "gamma": 0.99}
    peer = {"BATCH_SIZE": 32.0, "STEP_SIZE": 1e-3}
    names = {"batch_size": "BATCH_SIZE", "learning_rate": "STEP_SIZE", "gamma": "GAMMA"}
    assert mismatches(ours, peer, names) == [
        "learning_rate: ours 0.00025, peer STEP_SIZE=0.001",
        "gamma: not found in the peer (GAMMA)",
    ]
