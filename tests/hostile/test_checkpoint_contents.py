"""Checkpoints edited by hand, with a manifest that matches (a forger re-hashes it): each value
that would crash the resumed run later, or quietly change it, is refused by ``train.py --resume``
with one line and exit code 2 before anything is written (meta.json and the checkpoint files stay
byte for byte as they were); likewise a model file whose q_network is not a dict of tensors."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dqn_family import train
from dqn_family.agents import save_model
from dqn_family.checkpoints import latest_checkpoint
from dqn_family.configs import Config, UserError, save_config
from dqn_family.evaluate import load_run
from tests.checkpoints.conftest import copy_run, file_hashes, finished_runs  # noqa: F401 (a fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]


def forge(run: Path, change) -> None:
    """Apply ``change`` to the latest checkpoint's payload and make its manifest describe the result."""
    manifest = latest_checkpoint(run)
    state_path = manifest.with_suffix(".pt")
    payload = torch.load(state_path, weights_only=True)
    change(payload)
    torch.save(payload, state_path)
    data = state_path.read_bytes()
    fields = json.loads(manifest.read_text())
    fields.update(state_bytes=len(data), state_sha256=hashlib.sha256(data).hexdigest())
    manifest.write_text(json.dumps(fields))


def setter(*path, value):
    """A change that sets payload[path[0]][path[1]]... to ``value`` (a callable gets the old value)."""

    def change(payload):
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value(parent[path[-1]]) if callable(value) else value

    return change


def first_moment(payload):
    return payload["agent"]["optimizer"]["state"][0]


def unbalance_tree(nodes: torch.Tensor) -> torch.Tensor:
    nodes = nodes.clone()
    nodes[len(nodes) // 2] += 5.0  # leaf 0 grows, its parents' sums do not: sampling would go astray
    return nodes


def add_int_key(q_network: dict) -> dict:
    return {**q_network, 1: next(iter(q_network.values()))}


CASES = [
    # (variant, change, message)
    ("dqn", setter("replay", "actions", value=lambda a: torch.full_like(a, 7)), r"replay actions must lie in \[0, 2\)"),
    (
        "dqn",
        setter("replay", "actions", value=lambda a: torch.full_like(a, -3)),
        r"replay actions must lie in \[0, 2\)",
    ),
    ("dqn", setter("replay", "rewards", value=lambda r: torch.full_like(r, math.nan)), "replay rewards must be finite"),
    (
        "dqn",
        setter("replay", "discounts", value=lambda d: d * 3),
        r"replay discounts must be finite and lie in \[-1, 1\]",
    ),
    ("dqn", setter("replay", "observations", value=lambda o: o * math.inf), "replay observations must be finite"),
    ("dqn", setter("replay", "rng", value=-1), "replay rng is not a valid PCG64 state"),
    ("dqn", lambda p: p["replay"].pop("rewards"), "replay state has no 'rewards'"),
    ("dqn", setter("replay", value=[1, 2]), "replay state must be a dict, got list"),
    (
        "dqn",
        lambda p: first_moment(p).update(exp_avg=torch.zeros(3)),
        r"optimizer parameter 0 exp_avg is float32\[3\], this run's is float32\[16, 4\]",
    ),
    (
        "dqn",
        lambda p: first_moment(p).update(exp_avg_sq=-first_moment(p)["exp_avg_sq"] - 1),
        "optimizer parameter 0 exp_avg_sq holds negative values",
    ),
    ("dqn", lambda p: first_moment(p).update(step=torch.tensor(math.nan)), "optimizer parameter 0 step must be"),
    (
        "dqn",
        lambda p: p["agent"]["optimizer"]["param_groups"][0].update(eps=math.inf),
        "optimizer eps is inf, this run's is 1e-08",
    ),
    (
        "dqn",
        lambda p: p["agent"]["optimizer"]["param_groups"][0].update(lr=1e30),
        r"optimizer learning rate must be a number in \[0, 0.0001\]",
    ),
    ("dqn", lambda p: p["agent"]["optimizer"]["state"].update({99: {}}), "optimizer has state for parameter 99"),
    ("dqn", setter("agent", "q_network", value=add_int_key), "q_network has a key that is not a string: 1"),
    (
        "dqn",
        setter("agent", "q_network", value=lambda q: {k: v.double() for k, v in q.items()}),
        r"q_network \S+ is float64\[.*\], this run's is float32",
    ),
    (
        "dqn",
        setter("agent", "target_network", value=lambda q: {k: v * math.nan for k, v in q.items()}),
        "target_network .* holds NaN or infinite values",
    ),
    (
        "dqn",
        setter("agent", "rng", value=lambda s: {**s, "state": {"state": -1, "inc": 1}}),
        "agent rng is not a valid PCG64 state",
    ),
    ("dqn", setter("agent", value=5), "agent state must be a dict, got int"),
    ("dqn", setter("rng", "env_seeds", value=-1), "malformed numpy generator state"),
    (
        "dqn",
        setter("rng", "env_seeds", value=lambda s: {**s, "state": {"state": -1, "inc": 1}}),
        "malformed numpy generator state",
    ),
    ("dqn", setter("rng", "torch", value=torch.zeros(3, dtype=torch.uint8)), "the torch generator state must be"),
    (
        "dqn",
        setter("rng", "python", value=lambda s: (s[0], [-1] * len(s[1]), s[2])),
        "the Python random state is not one Python's generator can take",
    ),
    ("dqn", lambda p: p["rng"].pop("env_seeds"), "it has no 'env_seeds'"),
    ("dqn", setter("counters", "best_eval_mean", value=math.nan), "its counters are malformed"),
    ("dqn", setter("counters", "best_eval_mean", value=math.inf), "its counters are malformed"),
    ("dqn", setter("counters", "seconds", value=math.inf), "its counters are malformed"),
    ("dqn", setter("counters", "episodes", value=10**9), "its counters are malformed"),
    ("dqn", setter("counters", "extra", value=1), "its counters must be a dict of"),
    ("dqn", setter("metrics", "sums", "losses/td_loss", value=torch.tensor(math.nan)), "its metric sums are malformed"),
    ("dqn", setter("metrics", "recent_returns", value=[1.0] * 10_000), "its metric sums are malformed"),
    ("dqn", setter("metrics", "pending_updates", value=10**6), "its metric sums cover 1,000,000 updates"),
    ("dqn", setter("final_eval", "returns", value=[math.nan, 1.0]), "its final evaluation must be"),
    ("dqn", setter("final_eval", value=[1]), "its final evaluation must be"),
    ("dqn", setter("spaces", value="x" * 100_000), r"it was written for an env with 'xxx.*\.\.\., but"),
    ("rainbow", setter("replay", "sum_tree", value=unbalance_tree), "sum tree inner nodes must be the sums"),
    ("rainbow", setter("replay", "sum_tree", value=lambda n: n * 0), "sum tree leaves must be > 0"),
    (
        "rainbow",
        setter("agent", "noise_generator", value=torch.zeros(5, dtype=torch.uint8)),
        r"agent noise_generator must be uint8\[5056\], got uint8\[5\]",
    ),
    (
        "self_play_pool",
        setter("self_play", "snapshots", value=lambda s: [{k: v[..., :1] for k, v in s[0].items()}]),
        "its self-play snapshot 0",
    ),
    ("self_play_pool", setter("self_play", "snapshots", value=lambda s: s * 2), "at most 3 snapshots"),
    ("self_play_pool", setter("self_play", "last_step", value=10**9), "self-play pool's last env step 1000000000"),
    ("self_play_pool", setter("self_play", "swaps", value=-1), "self-play opponent count -1"),
    ("self_play_pool", setter("self_play", "pool_rng", value={"state": 1}), "malformed numpy generator state"),
    ("self_play_pool", setter("self_play", value=[1]), "its self-play state must be a dict"),
]


@pytest.mark.parametrize("variant, change, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_resume_of_forged_checkpoint_is_one_line_and_changes_no_file(
    finished_runs,  # noqa: F811 (the fixture imported above)
    tmp_path,
    capsys,
    variant,
    change,
    message,
):
    run = copy_run(finished_runs[variant], tmp_path / "run", latest=400)
    forge(run, change)
    before = file_hashes(tmp_path)
    assert train.main(["--resume", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("train.py: error: checkpoint ") and len(error) < 500, error
    assert "does not fit this run: " in error and re.search(message, error), error
    assert file_hashes(tmp_path) == before  # meta.json, config.yaml, the checkpoints: all as they were


def test_resume_cli_with_out_of_range_replay_action_exits_2_without_traceback(finished_runs, tmp_path):  # noqa: F811
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=400)
    forge(run, setter("replay", "actions", value=lambda a: torch.full_like(a, 7)))
    before = file_hashes(tmp_path)
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), "--resume", str(run)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and "replay actions must lie in [0, 2)" in completed.stderr
    assert file_hashes(tmp_path) == before


def test_resume_of_unforged_checkpoint_still_works(finished_runs, tmp_path):  # noqa: F811
    run = copy_run(finished_runs["rainbow"], tmp_path / "run", latest=400)
    assert train.resume(run).env_steps == 600


def model_run(run_dir: Path, q_network: dict) -> Path:
    save_config(Config(env_id="CartPole-v1", hidden_sizes=(8,), run_dir=str(run_dir)), run_dir / "config.yaml")
    save_model(run_dir / "model_latest.pt", q_network, env_step=0)
    return run_dir


def mlp_state() -> dict:
    from dqn_family.agents import MLPQNetwork

    return MLPQNetwork((4,), 2, hidden_sizes=(8,)).state_dict()


@pytest.mark.parametrize(
    "q_network, message",
    [
        ({**mlp_state(), 1: torch.zeros(2)}, "its q_network has a key that is not a string: 1"),
        ({k: 1.0 for k in mlp_state()}, r"its q_network \S+ is float, this run's is float32\[8, 4\]"),
        ({k: v.long() for k, v in mlp_state().items()}, r"is int64\[8, 4\], this run's is float32\[8, 4\]"),
        ({k: v * math.nan for k, v in mlp_state().items()}, "holds NaN or infinite values"),
        ([1, 2], "its q_network must be a dict of tensors, got list"),
    ],
)
def test_load_run_model_file_with_malformed_q_network_is_one_line_user_error(tmp_path, q_network, message):
    model_run(tmp_path, q_network)
    with pytest.raises(UserError) as caught:
        load_run(tmp_path, device=torch.device("cpu"))
    text = str(caught.value)
    assert "\n" not in text and "does not fit the network in" in text and re.search(message, text), text


def test_evaluate_cli_model_with_int_key_exits_2_with_one_line(tmp_path):
    model_run(tmp_path, {**mlp_state(), 1: torch.zeros(2)})
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "evaluate.py"), str(tmp_path), "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and "key that is not a string" in completed.stderr


def test_resume_of_a_pool_checkpoint_without_its_pool_starts_a_fresh_pool(finished_runs, tmp_path):  # noqa: F811
    """A checkpoint written before the pool was kept (no ``self_play``) still resumes."""
    run = copy_run(finished_runs["self_play_pool"], tmp_path / "run", latest=400)
    forge(run, lambda payload: payload.pop("self_play"))
    assert train.main(["--resume", str(run), "--no-progress"]) == 0
