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
follows the episode. A model exported from a run with action masks (a model with an
``action_mask`` input) is given the env's mask at every step, from ``info["action_mask"]`` (Gymnasium's
Taxi) or from a Dict observation's ``action_mask`` key (PettingZoo's convention; the Dict's other key
is the observation), and explores among the legal actions only, as evaluate.py does. A model of
dictionary observations (a Dict or Tuple env; the sidecar's ``observation_parts``) takes one input
per key, in the sidecar's order, each in its own dtype (a Tuple's parts are keys "0", "1", ...; a
Dict's ``action_mask`` is the mask, not an input). Prints the summary line evaluate.py prints.

The project's own partially observed envs (``envs.pomdp:CartPoleNoVelocity-v1``) are played without
the project: the sidecar's ``play_env`` names the plain Gymnasium env and the observation entries the
model sees. A model and sidecar may come from someone else: the model's inputs and outputs are checked
against the sidecar and the env before it runs, a graph with control flow (``Loop``, ``If``, ``Scan``,
which an export never contains) is refused, and every number is checked as the float32 it becomes.
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
MAX_STATE_SIZE = 1 << 16
MAX_PARTS = 64  # inputs of a dictionary-observation model
MASK_KEY = "action_mask"
CONTROL_FLOW = {"Loop", "If", "Scan", "SequenceMap"}  # an exported Q-network is straight-line code


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
    named = sidecar.get("observation_dtype") or observation_part(env.observation_space).dtype or "float32"
    return _numeric_dtype(named, "observation_dtype")


def _numeric_dtype(named: object, what: str) -> np.dtype:
    try:
        dtype = np.dtype(named)
    except (TypeError, ValueError):
        raise PlayerError(f"the sidecar's {what} is not a numpy dtype") from None
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise PlayerError(f"the sidecar's {what} must be numeric, got {dtype}")
    return dtype


def observation_parts(sidecar: dict) -> dict[str, np.dtype] | None:
    """A dictionary-observation model's inputs, key -> dtype in input order (the sidecar's
    ``observation_parts``); None for a model of single observations."""
    parts = sidecar.get("observation_parts")
    if parts is None:
        return None
    if (
        not isinstance(parts, dict)
        or not 1 <= len(parts) <= MAX_PARTS
        or not all(isinstance(key, str) and isinstance(part, dict) for key, part in parts.items())
    ):
        raise PlayerError(f"the sidecar's observation_parts must map 1 to {MAX_PARTS} keys to their shape and dtype")
    return {key: _numeric_dtype(part.get("dtype"), f"observation_parts[{key!r}] dtype") for key, part in parts.items()}


def check_parts(space: gym.Space, sidecar: dict, keys: dict[str, np.dtype]) -> None:
    """The env's Dict (or Tuple) observation has each key the model takes, of the sidecar's shape."""
    named = dict(enumerate(space.spaces)) if isinstance(space, gym.spaces.Tuple) else None
    spaces = {str(i): part for i, part in named.items()} if named is not None else getattr(space, "spaces", {})
    for key in keys:
        expected = sidecar["observation_parts"][key].get("shape")
        if key not in spaces or list(spaces[key].shape or ()) != expected:
            raise PlayerError(
                f"the model takes observation key {key[:40]!r} of shape {expected}, which the env's "
                f"{type(space).__name__} observation does not give; play it with evaluate.py"
            )


def graph_operators(data: bytes) -> set[str]:
    """The op_type of every node of an ONNX model's graph and of its local functions, read from the
    protobuf wire format (onnx's own classes are not needed): ModelProto.graph (7) and .functions
    (25), GraphProto.node (1) and FunctionProto.node (7), NodeProto.op_type (4)."""
    operators: set[str] = set()
    for field, graph in _fields(data):
        if field in (7, 25):
            for node_field, node in _fields(graph):
                if node_field == (1 if field == 7 else 7):
                    operators.update(value.decode("utf-8", "replace") for key, value in _fields(node) if key == 4)
    return operators


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """(field number, bytes) of each length-delimited field of one protobuf message; others skipped."""
    found, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        field, kind = key >> 3, key & 7
        if kind == 0:
            _, at = _varint(data, at)
        elif kind in (1, 5):
            at += 8 if kind == 1 else 4
        elif kind == 2:
            length, at = _varint(data, at)
            found.append((field, data[at : at + length]))
            at += length
        else:
            raise PlayerError("the model is not a valid ONNX file (a malformed protobuf field)")
    if at != len(data):
        raise PlayerError("the model is not a valid ONNX file (a truncated protobuf field)")
    return found


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise PlayerError("the model is not a valid ONNX file (a malformed varint)")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def check_model(session: onnxruntime.InferenceSession, sidecar: dict, keys: list[str] | None = None) -> None:
    """The inputs and outputs an export writes: observations [batch, *observation_shape], or one
    input per key of dictionary observations (``keys``) (for a recurrent model also state [batch, S];
    for a model of a run with action masks, last, action_mask [batch, A]); actions, q_values (and
    next_state)."""
    inputs, outputs = session.get_inputs(), [output.name for output in session.get_outputs()]
    names = [graph_input.name for graph_input in inputs]
    masked = names[-1:] == [MASK_KEY]
    recurrent = "state" in names
    shape = sidecar.get("observation_shape") if keys is None else None
    observations = ["observations"] if keys is None else keys
    if names != [*observations, *(["state"] if recurrent else []), *([MASK_KEY] if masked else [])] or outputs != [
        "actions",
        "q_values",
        *(["next_state"] if recurrent else []),
    ]:
        raise PlayerError(
            "the model's inputs and outputs are not an export's: (observations[, state][, action_mask]) -> "
            "(actions, q_values[, next_state])"
        )
    if isinstance(shape, list) and len(inputs[0].shape) != 1 + len(shape):
        raise PlayerError(
            f"the model's observations input has rank {len(inputs[0].shape)}, the sidecar's observation_shape "
            f"{shape} needs {1 + len(shape)}"
        )
    if recurrent:
        state_input = inputs[names.index("state")]
        size = state_input.shape[1] if len(state_input.shape) == 2 else None
        if not isinstance(size, int) or not 1 <= size <= MAX_STATE_SIZE:
            raise PlayerError(f"a recurrent model's state input must be [batch, S] with S in [1, {MAX_STATE_SIZE:,}]")
    if masked and (len(inputs[-1].shape) != 2 or inputs[-1].type != "tensor(bool)"):
        raise PlayerError("a model's action_mask input must be bool [batch, n_actions]")


def takes_mask(session: onnxruntime.InferenceSession) -> bool:
    """Whether the model takes the env's action mask (its last input is action_mask)."""
    return session.get_inputs()[-1].name == MASK_KEY


def observation_part(space: gym.Space) -> gym.Space:
    """The space of what the model sees: a Dict observation with an action_mask key is its other key's."""
    if isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces:
        others = [key for key in space.spaces if key != MASK_KEY]
        if len(others) != 1:
            raise PlayerError(f"a Dict observation needs one key beside '{MASK_KEY}', got {sorted(space.spaces)[:10]}")
        return space[others[0]]
    return space


def split_observation(observation, info: dict, keys: dict[str, np.dtype] | None = None) -> tuple[object, object]:
    """(what the model sees, the env's action mask as given, or None): a Dict observation's
    action_mask key and its other key (or, for a model of dictionary observations, the Dict as it is),
    else the observation and info's action_mask."""
    if isinstance(observation, dict):
        mask = observation.get(MASK_KEY, info.get(MASK_KEY))
        if keys is not None:
            return observation, mask
        return next(value for key, value in observation.items() if key != MASK_KEY), mask
    return observation, info.get(MASK_KEY)


def model_inputs(observation: object, dtype: np.dtype, keys: dict[str, np.dtype] | None) -> list[np.ndarray]:
    """The observation as the model's inputs, a batch of one: one array, or one per key (a Tuple's
    parts are keys "0", "1", ...), each in the dtype the model takes."""
    if keys is None:
        return [np.asarray(observation, dtype=dtype)[None]]
    by_key = {str(i): part for i, part in enumerate(observation)} if isinstance(observation, tuple) else observation
    assert isinstance(by_key, dict)  # check_parts found the env's observation a Dict or Tuple of these keys
    return [np.asarray(by_key[key], dtype=part_dtype)[None] for key, part_dtype in keys.items()]


def legal_of(mask: object, n_actions: int) -> np.ndarray:
    """The env's action mask as bool [A]: PlayerError unless it is bool or 0/1 integers, one per
    action, with a legal action (the state is one its episode goes on from)."""
    if mask is None:
        raise PlayerError("the model takes an action_mask, but the env gives none (in info or a Dict observation)")
    array = np.asarray(mask)
    integral = array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)
    if not integral or array.shape != (n_actions,) or not ((array == 0) | (array == 1)).all():
        raise PlayerError(f"the env's action mask must be bool or 0/1 integers [{n_actions}], got {array.dtype}")
    if not array.any():
        raise PlayerError("the env's action mask allows no action in a state its episode goes on from")
    return array.astype(bool)


def _printable(text: str) -> str:
    """``text`` as printed: as it is when printable, else escaped and bounded (a sidecar's env id may
    hold terminal escapes)."""
    return text if text.isprintable() and len(text) <= 200 else ascii(text[:200])


def make_play_env(env_id: str, sidecar: dict) -> gym.Env:
    """``gymnasium.make(env_id)``; the sidecar's ``play_env`` for the project's own envs (a plain
    Gymnasium id and the observation entries kept), so that they play without the project, when
    ``env_id`` names the sidecar's env (its registered id, whatever its module is called)."""
    recipe, named = sidecar.get("play_env"), sidecar.get("env_id")
    # The sidecar's env, however its module is named (envs.pomdp: or dqn_family.envs.pomdp:).
    same_env = isinstance(named, str) and env_id.rpartition(":")[2] == named.rpartition(":")[2]
    if ":" in env_id and same_env and recipe is not None:
        base, kept = (recipe.get("env_id"), recipe.get("kept_entries")) if isinstance(recipe, dict) else (None, None)
        if not isinstance(base, str) or ":" in base or not isinstance(kept, list) or not kept:
            raise PlayerError("the sidecar's play_env must name a plain Gymnasium env_id and its kept_entries")
        env = _make(base)
        size = env.observation_space.shape[0] if len(env.observation_space.shape or ()) == 1 else 0
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in kept):
            env.close()
            raise PlayerError(f"the sidecar's play_env.kept_entries must be indices of {base}'s observation")
        space = env.observation_space
        kept_space = gym.spaces.Box(space.low[kept], space.high[kept], dtype=space.dtype)
        return gym.wrappers.TransformObservation(env, lambda observation: observation[kept], kept_space)
    return _make(env_id)


def _make(env_id: str) -> gym.Env:
    try:
        return gym.make(env_id)
    except Exception as error:  # gymnasium raises several kinds for unknown or broken ids
        raise PlayerError(f"cannot make env {env_id[:100]!r}: {' '.join(str(error).split())[:200]}") from None


def load_session(model: Path) -> onnxruntime.InferenceSession:
    if not model.is_file():
        raise PlayerError(f"model {model} does not exist or is not a file")
    with open(model, "rb") as handle:
        refused = sorted(graph_operators(handle.read()) & CONTROL_FLOW)
    if refused:
        raise PlayerError(
            f"the model's graph holds control flow ({', '.join(refused)}), which an export never contains; refused"
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its coloured warnings would surround the one-line error
    try:
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types
        raise PlayerError(f"ONNX Runtime cannot load {model}: {' '.join(str(error).split())[:200]}") from None


def initial_state(session: onnxruntime.InferenceSession, sidecar: dict) -> np.ndarray | None:
    """A recurrent model's state at an episode's start, [1, S] float32; None for a feed-forward model."""
    states = [graph_input for graph_input in session.get_inputs()[1:] if graph_input.name == "state"]
    if not states:  # check_model found it after the observations (one input, or one per key) if there is one
        return None
    size = states[0].shape[1]
    values = sidecar.get("initial_state", [0.0] * size if isinstance(size, int) else None)
    state = _float32s(values) if isinstance(values, list) and len(values) == size else None
    if state is None:
        raise PlayerError(
            f"the sidecar's initial_state must be a list of {size} finite float32 numbers (the model's state size)"
        )
    return state[None]


def _float32s(values: list) -> np.ndarray | None:
    """``values`` as float32 if each is a number that stays finite as a float32 (1e300 becomes inf)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    try:
        with np.errstate(over="ignore"):
            array = np.asarray([float(v) for v in values], dtype=np.float64).astype(np.float32)
    except OverflowError:  # an integer too large for a float
        return None
    return array if bool(np.isfinite(array).all()) else None


def play(
    session: onnxruntime.InferenceSession,
    env: gym.Env,
    *,
    episodes: int,
    seed: int,
    epsilon: float,
    dtype: np.dtype,
    start_state: np.ndarray | None = None,
    keys: dict[str, np.dtype] | None = None,
) -> list[float]:
    """Returns of ``episodes`` episodes; the first reset is seeded with ``seed``, exploration draws
    from a generator seeded the same way (as evaluate.py does: ``rng.random()``, then when exploring
    one ``rng.integers`` over the legal actions). ``start_state``: a recurrent model's initial
    state, fed with each episode's first observation; each next state is fed back. A model with an
    action_mask input gets the env's mask (bool [1, A]) at every step. ``keys``: a model of
    dictionary observations, one input per key (:func:`observation_parts`)."""
    names = [graph_input.name for graph_input in session.get_inputs()]
    masked = takes_mask(session)
    n_actions = int(env.action_space.n)
    rng = np.random.default_rng(seed)
    returns = []
    observation, info = env.reset(seed=seed)
    for _ in range(episodes):
        episode_return, done, state = 0.0, False, start_state
        while not done:
            observation, mask = split_observation(observation, info, keys)
            legal = legal_of(mask, n_actions) if masked else None
            feeds = [*model_inputs(observation, dtype, keys), *([] if state is None else [state])]
            feeds += [] if legal is None else [legal[None]]
            explore = rng.random() < epsilon
            if state is not None:  # recurrent: the model steps even when exploring
                actions, _, state = session.run(["actions", "q_values", "next_state"], dict(zip(names, feeds)))
                action = explore_action(rng, n_actions, legal) if explore else int(actions[0])
            elif explore:
                action = explore_action(rng, n_actions, legal)
            else:
                action = int(session.run(["actions"], dict(zip(names, feeds)))[0][0])
            observation, reward, terminated, truncated, info = env.step(action)
            episode_return += float(reward)
            done = terminated or truncated
        returns.append(episode_return)
        observation, info = env.reset()
    return returns


def explore_action(rng: np.random.Generator, n_actions: int, legal: np.ndarray | None) -> int:
    """A uniformly random action, among the legal ones with a mask: one rng.integers draw either way
    (the project's agents.acting.explore_action, written again here to stay free of the project)."""
    if legal is None:
        return int(rng.integers(n_actions))
    legal_actions = np.flatnonzero(legal)
    return int(legal_actions[rng.integers(len(legal_actions))])


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
    if args.env is None and ":" in env_id and "play_env" not in sidecar:  # gym.make would import the module it names
        raise PlayerError(
            f"the sidecar names env {env_id[:100]!r}, which imports a module; give --env yourself if you trust it"
        )
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:  # NaN fails both comparisons
        raise PlayerError(f"--epsilon must be in [0, 1], got {args.epsilon}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise PlayerError(f"--seed must be in [0, 2**32), got {args.seed}")
    seed = args.seed if args.seed is not None else _sidecar_number(sidecar, "eval_seed", 0, int)
    epsilon = args.epsilon if args.epsilon is not None else _sidecar_number(sidecar, "eval_epsilon", 0.0, float)
    session = load_session(model)
    keys = observation_parts(sidecar)
    check_model(session, sidecar, None if keys is None else list(keys))
    env = make_play_env(env_id, sidecar)
    try:
        if keys is not None:
            check_parts(env.observation_space, sidecar, keys)
        dtype = np.dtype(np.float32) if keys is not None else _observation_dtype(sidecar, env)
        expected = None if keys is not None else sidecar.get("observation_shape")
        if expected is not None and not (
            isinstance(expected, list) and len(expected) <= 8 and all(isinstance(n, int) for n in expected)
        ):
            raise PlayerError("the sidecar's observation_shape must be a list of at most 8 integers")
        shape = None if keys is not None else observation_part(env.observation_space).shape
        if expected is not None and list(shape or ()) != expected:
            raise PlayerError(
                f"{env_id} gives observations of shape {shape}, the model takes "
                f"{tuple(expected)}: the env was preprocessed in training; play it with evaluate.py"
            )
        start_state = initial_state(session, sidecar)
        try:
            returns = play(
                session,
                env,
                episodes=args.episodes,
                seed=seed,
                epsilon=epsilon,
                dtype=dtype,
                start_state=start_state,
                keys=keys,
            )
        except Exception as error:  # onnxruntime's own types (a model that does not fit the env), gymnasium's
            raise PlayerError(f"playing {env_id} failed: {' '.join(str(error).split())[:200]}") from None
    finally:
        env.close()
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(
        f"{_printable(env_id)}: mean return {mean:.2f} ± {std:.2f} over {args.episodes} episodes "
        f"(min {min(returns):.2f}, max {max(returns):.2f}; seed {seed}, epsilon {epsilon})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
