"""The combination matrix (issue 22): every pair of choices among acting, transport, observations,
algo, precision, compile and network trains, writes a complete run directory, evaluates, exports
with --verify (ONNX and pt2) and resumes, each with a tiny budget.

The combinations are a pairwise covering set, chosen by ``pairwise`` below: greedily, each next
combination is the first (in itertools.product order) that covers the most pairs not yet covered,
among the combinations that can run. The one pair that cannot (a recurrent core with --compile:
torch.compile does not trace nn.LSTM/nn.GRU) is checked to be refused in one line instead.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from dqn_family import evaluate, export, train

CHECKOUT = Path(__file__).resolve().parents[1]

FACTORS: dict[str, tuple[str, ...]] = {
    "acting": ("feed-forward", "lstm", "gru"),
    "transport": ("in-process", "actors-2"),
    "observations": ("vector", "pomdp", "discrete", "minatar", "atari"),
    "algo": ("dqn", "c51", "qrdqn", "rainbow"),
    "precision": ("fp32", "bf16"),
    "compile": ("off", "on"),
    "network": ("built-in", "custom"),
}
ENVS = {
    "vector": "CartPole-v1",
    "pomdp": "envs.pomdp:CartPoleNoVelocity-v1",
    "discrete": "FrozenLake-v1",
    "minatar": "MinAtar/Breakout-v1",
    "atari": "ALE/Breakout-v5",
}
CUSTOM_NETWORK = "tests.custom_nets:PlainQNet"

Combination = tuple[str, ...]  # one level per factor, in FACTORS' order
Pair = tuple[tuple[str, str], tuple[str, str]]


def refused(combination: Combination) -> bool:
    """What cannot run: torch.compile does not trace the recurrent cores (configs.config says so)."""
    choice = dict(zip(FACTORS, combination))
    return choice["acting"] != "feed-forward" and choice["compile"] == "on"


def pairs_of(combination: Combination) -> set[Pair]:
    named = list(zip(FACTORS, combination))
    return {(first, second) for first, second in itertools.combinations(named, 2)}


def pairwise(factors: dict[str, tuple[str, ...]]) -> tuple[list[Combination], set[Pair]]:
    """(combinations covering every pair that some runnable combination has, the pairs none has)."""
    candidates = [c for c in itertools.product(*factors.values()) if not refused(c)]
    every_pair = set().union(*(pairs_of(c) for c in itertools.product(*factors.values())))
    reachable = set().union(*(pairs_of(c) for c in candidates))
    chosen: list[Combination] = []
    uncovered = set(reachable)
    while uncovered:
        best = max(candidates, key=lambda c: len(pairs_of(c) & uncovered))  # max keeps the first of equals
        chosen.append(best)
        uncovered -= pairs_of(best)
    return chosen, every_pair - reachable


COMBINATIONS, UNREACHABLE = pairwise(FACTORS)


def test_pairwise_set_covers_every_runnable_pair_and_refuses_only_recurrent_compile():
    covered = set().union(*(pairs_of(c) for c in COMBINATIONS))
    every_pair = set().union(*(pairs_of(c) for c in itertools.product(*FACTORS.values())))
    assert every_pair - covered == UNREACHABLE
    assert UNREACHABLE == {(("acting", "lstm"), ("compile", "on")), (("acting", "gru"), ("compile", "on"))}
    assert len(COMBINATIONS) < 30  # 960 combinations in all; at least 5 x 4 = 20 for the two largest factors


def arguments(combination: Combination, run_dir: Path) -> list[str]:
    choice = dict(zip(FACTORS, combination))
    argv = ["--env", ENVS[choice["observations"]], "--algo", choice["algo"], "--run-dir", str(run_dir)]
    argv += [
        "--total-steps=300",
        "--learning-starts=100",
        "--batch-size=8",
        "--buffer-size=400",
        "--train-frequency=4",
        "--target-update-interval=100",
        "--epsilon-decay-steps=200",
        "--hidden-sizes=16",
        "--log-frequency=100",
        "--eval-frequency=300",
        "--eval-episodes=1",
        "--checkpoint-every=150",
        "--max-episode-steps=50",
        "--device=cpu",
        "--no-progress",
        f"--precision={choice['precision']}",
    ]
    if choice["acting"] == "feed-forward":
        argv += ["--recurrent=off"]  # the CartPoleNoVelocity preset's is lstm
    else:
        argv += ["--recurrent", choice["acting"], "--recurrent-size=8", "--sequence-length=8", "--burn-in=2"]
        argv += ["--sequence-overlap=4"]
    if choice["algo"] in ("c51", "rainbow"):
        argv += ["--num-atoms=11"]
    if choice["algo"] == "qrdqn":
        argv += ["--num-quantiles=5"]
    if choice["compile"] == "on":
        argv += ["--compile"]
    if choice["network"] == "custom":
        argv += ["--network", CUSTOM_NETWORK]
    if choice["transport"] == "actors-2":
        argv += ["--actors=2", "--send-steps=50"]
    if choice["observations"] == "atari":
        argv += ["--frame-replay=on"]
    return argv


def trusted(choice: dict[str, str]) -> list[str]:
    """Reading a run whose config names a module of ours (the custom network) needs the user's say-so."""
    return ["--trust-imports"] if choice["network"] == "custom" else []


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model_latest.pt", map_location="cpu", weights_only=True)["q_network"]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the distributed combinations; its workers import dqn_family and tests/."""
    ray = pytest.importorskip("ray")
    from dqn_family.distributed import run as distributed_run
    from dqn_family.distributed.ray_session import start_ray

    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([distributed_run._pythonpath(), str(CHECKOUT)])
    start_ray(address=None, num_cpus=3, what="the tests")
    try:
        yield
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


def _marks(combination: Combination) -> list[pytest.MarkDecorator]:
    choice = dict(zip(FACTORS, combination))
    marks = [pytest.mark.slow]
    if choice["transport"] == "actors-2":
        marks.append(pytest.mark.xdist_group("ray-matrix"))  # one worker, one Ray instance
    return marks


@pytest.mark.parametrize("combination", [pytest.param(c, id="-".join(c), marks=_marks(c)) for c in COMBINATIONS])
def test_combination_trains_evaluates_exports_and_resumes(combination, tmp_path, monkeypatch, request, capsys):
    pytest.importorskip("ale_py")
    pytest.importorskip("minatar")
    choice = dict(zip(FACTORS, combination))
    distributed = choice["transport"] == "actors-2"
    if distributed:
        request.getfixturevalue("ray_session")
    monkeypatch.syspath_prepend(str(CHECKOUT))  # the custom network's module, for --trust-imports
    run_dir = tmp_path / "run"
    assert train.main(arguments(combination, run_dir)) == 0, capsys.readouterr().err
    names = {path.name for path in run_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 300, summary
    assert {"config.yaml", "meta.json", "model_latest.pt", "model_best.pt", "checkpoints"} <= names, (names, summary)

    assert evaluate.main([str(run_dir), "--episodes", "1", *trusted(choice)]) == 0, capsys.readouterr().err
    for form in ("onnx", "pt2"):
        argv = [str(run_dir), "--format", form, "--verify", "--verify-observations", "40", *trusted(choice)]
        assert export.main(argv) == 0, capsys.readouterr().err
        assert "verified: 0 of" in capsys.readouterr().out

    resume = ["--total-steps", "450", "--no-progress", *trusted(choice)]
    if distributed:  # a distributed run resumes from its checkpoint (its actors' timing is not replayable)
        assert train.main(["--resume", str(run_dir), *resume]) == 0, capsys.readouterr().err
        assert json.loads((run_dir / "summary.json").read_text())["env_steps"] >= 450
        return
    # Exact resume: the same checkpoint resumed twice gives the same network, bit for bit.
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    for directory in (run_dir, twin):
        assert train.main(["--resume", str(directory), *resume]) == 0, capsys.readouterr().err
    first, second = weights(run_dir), weights(twin)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("acting", ["lstm", "gru"])
def test_recurrent_compile_is_refused_in_one_line_naming_torchs_limitation(acting, tmp_path, capsys):
    combination = (acting, "in-process", "pomdp", "dqn", "fp32", "on", "built-in")
    assert train.main(arguments(combination, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "torch.compile does not trace nn.LSTM/nn.GRU" in err, err
    assert not (tmp_path / "run").exists()
