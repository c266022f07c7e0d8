"""Dictionary observations through the one loop (issue 23 item 2), on the scripted cue-and-image envs
(tests/dict_envs.py): every algo trains on the multi-input torso and writes a run directory that
evaluate.py reads; replay keeps each key in its own array and dtype (images uint8), n-step windows
included; a checkpoint restores the dict replay bit for bit and resuming it twice gives identical
runs; export.py writes one named input per key (ONNX and pt2, verified, the mask last) whose
Q-values equal torch's; Tuple observations and a Dict with an action mask beside several keys train
too, and a GRU over the multi-input torso (R2D2: sequence replay by key); the options not supported
with them (--recurrent custom, frame replay, a custom --network), in-process or distributed, and
parts the torso cannot take, are refused in one line (exit 2) before anything is written.
(Distributed runs: tests/distributed.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import evaluate, export, train
from dqn_family.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
from dqn_family.configs import Config
from dqn_family.deployment.verify import collect_observations
from dqn_family.envs import EnvOptions
from dqn_family.evaluate import EVAL_SEED_OFFSET, evaluate_policy, load_run
from dqn_family.replay.observations import as_tensors
from dqn_family.training import state
from dqn_family.training.loop import Stepper, acting_of, adder_of
from tests.checkpoints.conftest import RAINBOW, copy_run, small_config
from tests.checkpoints.test_train_resume import WALL_CLOCK_TAGS, assert_same, restored_state
from tests.dict_envs import BAD_PARTS, EPISODE_LENGTH, IMAGE_SHAPE, MASKED_SPEC, SPEC, TUPLE_SPEC
from tests.run_logs import read_scalars
from tests.test_export import _NO_TORCH_WRAPPER, summary_line

KEYS = ["clock", "cue", "image"]  # Gymnasium's Dict orders its keys
REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYER = REPO_ROOT / "examples" / "play_onnx.py"


def dict_config(run_dir: Path, **overrides) -> Config:
    """The checkpoint tests' small config on the cue-and-image env: 300 env steps of two sub-envs,
    learning from 60, a 200-transition buffer (it wraps), checkpoints at 100, 200 and 300."""
    values = dict(
        env_id=SPEC,
        seed=5,
        num_envs=2,
        total_steps=300,
        learning_starts=60,
        buffer_size=200,
        target_update_interval=50,
        epsilon_decay_steps=200,
        eval_frequency=150,
        checkpoint_every=100,
    )
    return small_config(run_dir, **{**values, **overrides})


RUNS = {
    "dqn": {},
    "rainbow": dict(RAINBOW, v_max=10.0),  # C51, prioritized, 3-step, noisy, dueling, double
    "qrdqn-tuple": dict(algo="qrdqn", env_id=TUPLE_SPEC, num_quantiles=8),
    "c51-masked": dict(algo="c51", env_id=MASKED_SPEC, num_atoms=11, v_min=0.0, v_max=10.0, dueling=True),
    # R2D2: a GRU over the multi-input torso, sequence replay by key, burn-in, stored states, masks
    "r2d2-masked": dict(
        RAINBOW,
        v_max=10.0,
        env_id=MASKED_SPEC,
        recurrent="gru",
        recurrent_size=8,
        sequence_length=8,
        sequence_overlap=4,
        burn_in=2,
    ),
}


@pytest.fixture(scope="module")
def dict_runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dict_runs")
    return {name: train.train(dict_config(folder / name, **options)).run_dir for name, options in RUNS.items()}


# --- training and evaluation ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RUNS))
def test_train_dict_run_writes_run_directory_and_evaluate_reads_it(dict_runs, name, tmp_path, capsys):
    run_dir = dict_runs[name]
    names = {path.name for path in run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "summary.json", "model_latest.pt", "model_best.pt", "checkpoints"} <= names
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 300 and summary["updates"] > 0
    out = tmp_path / "eval.json"
    assert evaluate.main([str(run_dir), "--episodes", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # Every episode is EPISODE_LENGTH steps, each paying 0 or 1.
    assert result["lengths"] == [EPISODE_LENGTH] * 3
    assert all(r in range(EPISODE_LENGTH + 1) for r in result["returns"])


def test_train_dict_masked_run_takes_no_illegal_action(dict_runs):
    scalars = read_scalars(dict_runs["c51-masked"])
    assert scalars["charts/illegal_actions"] and all(value == 0 for _, value in scalars["charts/illegal_actions"])


# --- replay --------------------------------------------------------------------------------------
def test_replay_of_dict_observations_keeps_each_key_in_its_dtype_and_n_step_windows(tmp_path):
    """20 vector steps of 2 sub-envs at n = 3: each sub-env finishes two 8-step episodes (steps 1-8
    and 10-17; steps 9 and 18 are autoreset steps, not stored) and has 2 steps of a third pending,
    so replay holds 2 x 16 transitions. In each episode 6 transitions span 3 steps, then 2 and 1 at
    its end; a transition spans k steps exactly when its discount is gamma^k and the clocks of its
    observations differ by k / EPISODE_LENGTH; it is terminated exactly when its next clock reads 1."""
    config = dict_config(tmp_path / "run", n_step=3, gamma=0.9, buffer_size=100)
    envs, agent, buffer, _ = state.build_parts(config, torch.device("cpu"))
    assert agent.numpy_greedy is None  # the numpy fast path takes plain MLPs: dict observations act in torch
    try:
        stepper = Stepper(config, envs, acting_of(agent), adder_of(config, buffer))
        stepper.reset(config.seed)
        for _ in range(20):
            stepper.step(epsilon=1.0)
    finally:
        envs.close()
    storage = buffer.storage
    size = len(buffer)
    assert size == 32
    for stored in (storage.observations, storage.next_observations):
        assert {key: (array.dtype, array.shape[1:]) for key, array in stored.items()} == {
            "clock": (np.float32, (2,)),
            "cue": (np.int64, ()),
            "image": (np.uint8, IMAGE_SHAPE),
        }
        assert (stored["image"][:size].reshape(size, -1).sum(axis=1) == 1).all()  # one lit pixel each
    spans = np.rint(np.log(buffer.discounts[:size]) / np.log(0.9)).astype(int)
    clocks = storage.observations["clock"][:size, 0], storage.next_observations["clock"][:size, 0]
    np.testing.assert_allclose((clocks[1] - clocks[0]) * EPISODE_LENGTH, spans, atol=1e-6)
    assert sorted(np.bincount(spans).tolist()) == [0, 4, 4, 24]  # per episode: 6 of 3 steps, 1 of 2, 1 of 1
    np.testing.assert_array_equal(buffer.terminated[:size], clocks[1] == 1.0)


# --- checkpoints and resume ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dqn", "rainbow", "r2d2-masked"])
def test_checkpoint_of_dict_run_restores_its_replay_bit_for_bit(dict_runs, name, tmp_path):
    config = dict_config(dict_runs[name], **RUNS[name])
    payload = load_checkpoint(dict(list_checkpoints(dict_runs[name]))[200])
    restored = restored_state(config, payload)
    assert_same({key: payload[key] for key in restored}, restored)
    replay = payload["replay"]
    assert replay["observation_parts"]["image"].dtype == torch.uint8
    assert replay["next_observation_parts"]["cue"].dtype == torch.int64
    assert set(payload["spaces"]["observation_parts"]) == set(KEYS)


@pytest.mark.parametrize("name", ["dqn", "rainbow", "r2d2-masked"])
def test_resume_dict_run_twice_from_one_checkpoint_gives_identical_runs(dict_runs, name, tmp_path):
    runs = [copy_run(dict_runs[name], tmp_path / copy, latest=100) for copy in ("a", "b")]
    results = [train.resume(run) for run in runs]
    assert results[0].resumed_from == 100 and results[0].env_steps == 300
    assert results[0].updates == results[1].updates and results[0].episodes == results[1].episodes
    first, second = (read_scalars(run) for run in runs)
    for tag in sorted(set(first) - WALL_CLOCK_TAGS):
        assert first[tag] == second[tag], tag
    final = [load_checkpoint(latest_checkpoint(run)) for run in runs]
    for payload in final:  # the same state but for wall-clock time and where the run lives
        payload["counters"]["seconds"] = 0.0
        del payload["config"]["run_dir"]
    assert_same(final[0], final[1])


# --- export --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize(
    "name, inputs",
    [("dqn", KEYS), ("c51-masked", [*KEYS, "action_mask"]), ("r2d2-masked", [*KEYS, "state", "action_mask"])],
)
def test_export_dict_run_verifies_with_one_input_per_key(dict_runs, name, inputs, fmt, tmp_path, capsys):
    out = tmp_path / f"model.{fmt}"
    flags = ["--format", fmt, "--out", str(out), "--verify", "--verify-observations", "100"]
    assert export.main([str(dict_runs[name]), *flags]) == 0
    assert "verified: 0 of 100 greedy actions differ, 0 Q-value rows" in capsys.readouterr().out
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert list(sidecar["inputs"]) == inputs
    assert sidecar["observation_parts"]["image"] == {"shape": list(IMAGE_SHAPE), "dtype": "uint8", "states": None}
    assert sidecar["observation_parts"]["cue"] == {"shape": [], "dtype": "int64", "states": 2}


def test_exported_onnx_q_values_of_dict_run_equal_torchs(dict_runs, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    run_dir = dict_runs["rainbow"]
    out = tmp_path / "model.onnx"
    assert export.main([str(run_dir), "--out", str(out)]) == 0
    config, q_network = load_run(run_dir, device=torch.device("cpu"))
    observations, _, _ = collect_observations(
        q_network, config.env_id, EnvOptions.of(config), count=100, seed=config.seed + EVAL_SEED_OFFSET
    )
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("clock", "tensor(float)"),
        ("cue", "tensor(int64)"),
        ("image", "tensor(uint8)"),
    ]
    actions, q_onnx = session.run(None, {key: observations[key] for key in KEYS})
    with torch.no_grad():
        q_torch = q_network.eval()(as_tensors(observations, "cpu")).numpy()
    assert q_onnx.shape == (100, 2)
    np.testing.assert_allclose(q_onnx, q_torch, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(actions, q_torch.argmax(axis=1))


# --- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--recurrent", "custom"], "--recurrent custom does not take dictionary observations"),
        (["--actors", "2", "--recurrent", "custom"], "--recurrent custom does not take dictionary observations"),
        (["--frame-replay", "on"], "--frame-replay on does not take dictionary observations"),
        (["--network", "tests.custom_nets:PlainQNet"], "--network module:Factory does not take dictionary"),
        (
            ["--actors", "2", "--network", "tests.custom_nets:PlainQNet"],
            "--network module:Factory does not take dictionary",
        ),
    ],
)
def test_train_refuses_options_dict_observations_do_not_take_in_one_line(flags, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train.main(["--env", SPEC, *flags, "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "['clock', 'cue', 'image']" in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.parametrize("env_id", sorted(BAD_PARTS))
def test_train_refuses_a_part_the_torso_cannot_take_naming_its_key(env_id, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train.main(["--env", env_id, "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "observation key 'bad' is" in err and "allowed: a Box of rank <= 3 or Discrete(n) starting at 0" in err
    assert len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.parametrize("name", ["qrdqn-tuple", "c51-masked", "r2d2-masked"])
def test_play_onnx_plays_a_dict_model_without_torch_as_evaluate_does(dict_runs, name, tmp_path):
    """The torch-free player feeds one input per key (a Tuple's by position, the mask apart) and
    prints evaluate.py's line for the same episodes, exploration included."""
    run_dir = dict_runs[name]
    out = tmp_path / "model.onnx"
    assert export.main([str(run_dir), "--out", str(out)]) == 0
    config, network = load_run(run_dir, device=torch.device("cpu"))
    env_spec = f"tests.dict_envs:{config.env_id}"
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_WRAPPER, str(PLAYER), str(out), "--env", env_spec, "--episodes", "4"]
        + ["--epsilon", "0.3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = evaluate_policy(
        network, config.env_id, episodes=4, seed=config.seed + EVAL_SEED_OFFSET, epsilon=0.3, action_mask="auto"
    )
    assert done.stdout == summary_line(env_spec, result, seed=config.seed + EVAL_SEED_OFFSET, epsilon=0.3)
