"""Play an exported model with ONNX Runtime, gymnasium and numpy only (no torch, nothing of this project):

    python examples/play_onnx.py model.onnx [--env CartPole-v1] [--episodes 20] [--seed S] [--epsilon E]

This is the deployment path: a model written by ``python export.py RUN_DIR --format onnx`` needs
only these three packages to act. The sidecar ``model.onnx.json`` written beside it gives the env
id, the observation dtype and the default seed (the run's evaluation seed, as evaluate.py uses),
so ``--env`` is optional when it is there. The env is made with ``gymnasium.make`` as it is: envs
whose observations training preprocessed (Atari's frame stacks) need evaluate.py, and the player
says so when the shapes do not match. A recurrent policy (a model with a ``state`` input) is
played as evaluate.py plays it: its state starts each episode at the sidecar's ``initial_state``
(zeros without a sidecar) and the model runs at every step, exploring or not, so that the state
follows the episode. Prints the summary line evaluate.py prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime

MAX_SIDECAR_BYTES = 1 << 20


class PlayerError(Exception):
    """A bad model, sidecar or env: one line, exit code 2."""


def read_sidecar(model: Path) -> dict:
    """The sidecar JSON beside ``model`` (``model.onnx.json``), or {} when there is none."""
    path = model.with_name(model.name + ".json")
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:  # a sidecar may come from someone else: read a bounded amount
            data = handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as error:
        raise PlayerError(f"cannot read sidecar {path}: {error.strerror}") from None
    if len(data) > MAX_SIDECAR_BYTES:
        raise PlayerError(f"sidecar {path} is larger than {MAX_SIDECAR_BYTES:,} bytes")
    try:
        sidecar = json.loads(data)
    except (ValueError, RecursionError):
        raise PlayerError(f"sidecar {path} is not valid JSON") from None
    if not isinstance(sidecar, dict):
        raise PlayerError(f"sidecar {path} must hold a JSON object")
    return sidecar


def _sidecar_number(sidecar: dict, key: str, default: float, kind: type) -> float:
    """A number from the sidecar, checked: an int for a seed (>= 0), a probability for epsilon."""
    value = sidecar.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    ok = ok and (value < 2**32 and float(value).is_integer() if kind is int else value <= 1)
    if not ok:
        raise PlayerError(f"the sidecar's {key} must be {'an integer >= 0' if kind is int else 'in [0, 1]'}")
    return kind(value)


def _observation_dtype(sidecar: dict, env: gym.Env) -> np.dtype:
    """The dtype the model takes: the sidecar's, else the env's own (a numeric dtype or bool)."""
    named = sidecar.get("observation_dtype") or env.observation_space.dtype or "float32"
    try:
        dtype = np.dtype(named)
    except (TypeError, ValueError):
        raise PlayerError("the sidecar's observation_dtype is not a numpy dtype") from None
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise PlayerError(f"the sidecar's observation_dtype must be numeric, got {dtype}")
    return dtype


def load_session(model: Path) -> onnxruntime.InferenceSession:
    if not model.is_file():
        raise PlayerError(f"model {model} does not exist or is not a file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types
        raise PlayerError(f"ONNX Runtime cannot load {model}: {' '.join(str(error).split())[:200]}") from None


def initial_state(session: onnxruntime.InferenceSession, sidecar: dict) -> np.ndarray | None:
    """A recurrent model's state at an episode's start, [1, S] float32; None for a feed-forward model."""
    inputs = session.get_inputs()
    if len(inputs) < 2:
        return None
    size = inputs[1].shape[1]
    values = sidecar.get("initial_state", [0.0] * size if isinstance(size, int) else None)
    ok = isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values
    )
    if not ok or (isinstance(size, int) and len(values) != size):
        raise PlayerError(
            f"the sidecar's initial_state must be a list of {size} finite numbers (the model's state size)"
        )
    return np.asarray(values, dtype=np.float32)[None]


def play(
    session: onnxruntime.InferenceSession,
    env: gym.Env,
    *,
    episodes: int,
    seed: int,
    epsilon: float,
    dtype: np.dtype,
    start_state: np.ndarray | None = None,
) -> list[float]:
    """Returns of ``episodes`` episodes; the first reset is seeded with ``seed``, exploration draws
    from a generator seeded the same way (as evaluate.py does). ``start_state``: a recurrent model's
    initial state, fed with each episode's first observation; each next state is fed back."""
    names = [graph_input.name for graph_input in session.get_inputs()]
    rng = np.random.default_rng(seed)
    returns = []
    observation, _ = env.reset(seed=seed)
    for _ in range(episodes):
        episode_return, done, state = 0.0, False, start_state
        while not done:
            explore = rng.random() < epsilon
            if state is not None:  # recurrent: the model steps even when exploring
                batch = np.asarray(observation, dtype=dtype)[None]
                actions, _, state = session.run(["actions", "q_values", "next_state"], dict(zip(names, (batch, state))))
                action = int(rng.integers(env.action_space.n)) if explore else int(actions[0])
            elif explore:
                action = int(rng.integers(env.action_space.n))
            else:
                batch = np.asarray(observation, dtype=dtype)[None]
                action = int(session.run(["actions"], {names[0]: batch})[0][0])
            observation, reward, terminated, truncated, _ = env.step(action)
            episode_return += float(reward)
            done = terminated or truncated
        returns.append(episode_return)
        observation, _ = env.reset()
    return returns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play an exported ONNX model (onnxruntime, gymnasium, numpy only).")
    parser.add_argument("model", help="Model file written by export.py --format onnx.")
    parser.add_argument("--env", default=None, help="Gymnasium env id (default: the sidecar's).")
    parser.add_argument("--episodes", type=int, default=20, help="Episodes to play (default: 20).")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Seed of the first reset (default: the sidecar's evaluation seed, else 0).",
    )
    parser.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="Probability of a random action (default: the sidecar's eval_epsilon, else 0).",
    )
    args = parser.parse_args(argv)
    try:
        return _play_command(args)
    except PlayerError as error:
        print(f"play_onnx.py: error: {error}", file=sys.stderr)
        return 2


def _play_command(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise PlayerError(f"--episodes must be >= 1, got {args.episodes}")
    model = Path(args.model)
    sidecar = read_sidecar(model)
    env_id = args.env or sidecar.get("env_id")
    if not isinstance(env_id, str) or not env_id:
        raise PlayerError(f"no env id: give --env (there is no sidecar {model.name}.json naming one)")
    if args.env is None and ":" in env_id:  # gym.make would import the module it names: run its code
        raise PlayerError(
            f"the sidecar names env {env_id[:100]!r}, which imports a module; give --env yourself if you trust it"
        )
    seed = args.seed if args.seed is not None else _sidecar_number(sidecar, "eval_seed", 0, int)
    epsilon = args.epsilon if args.epsilon is not None else _sidecar_number(sidecar, "eval_epsilon", 0.0, float)
    session = load_session(model)
    try:
        env = gym.make(env_id)
    except Exception as error:  # gymnasium raises several kinds for unknown or broken ids
        raise PlayerError(f"cannot make env {env_id[:100]!r}: {' '.join(str(error).split())[:200]}") from None
    try:
        dtype = _observation_dtype(sidecar, env)
        expected = sidecar.get("observation_shape")
        if expected is not None and not (
            isinstance(expected, list) and len(expected) <= 8 and all(isinstance(n, int) for n in expected)
        ):
            raise PlayerError("the sidecar's observation_shape must be a list of at most 8 integers")
        if expected is not None and list(env.observation_space.shape) != expected:
            raise PlayerError(
                f"{env_id} gives observations of shape {env.observation_space.shape}, the model takes "
                f"{tuple(expected)}: the env was preprocessed in training; play it with evaluate.py"
            )
        start_state = initial_state(session, sidecar)
        try:
            returns = play(
                session, env, episodes=args.episodes, seed=seed, epsilon=epsilon, dtype=dtype, start_state=start_state
            )
        except Exception as error:  # onnxruntime's own types (a model that does not fit the env), gymnasium's
            raise PlayerError(f"playing {env_id} failed: {' '.join(str(error).split())[:200]}") from None
    finally:
        env.close()
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(
        f"{env_id}: mean return {mean:.2f} ± {std:.2f} over {args.episodes} episodes "
        f"(min {min(returns):.2f}, max {max(returns):.2f}; seed {seed}, epsilon {epsilon})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
