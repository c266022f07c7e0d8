"""The JSON written beside an exported model (``<model file>.json``): what a player needs to feed it
(observation shape and dtype, Discrete states, or each key's for dictionary observations; number
of actions, the env id and the evaluation seed; a recurrent network's state size and initial state;
whether it takes an action mask) and where it came from (algo, run directory, model file, project and
torch versions), with the model file's SHA-256 so that a player can tell the two belong together."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import torch

from dqn_family.agents.multi_input import describe_parts
from dqn_family.configs import Config
from dqn_family.configs.trust import PROJECT_ENV_MODULES, split_env_spec
from dqn_family.deployment.policy import ObservationSpec
from dqn_family.envs.pomdp import play_recipe
from dqn_family.fileio import write_text_atomic

SIDECAR_FORMAT = "dqn-family-export"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def project_version() -> str:
    """The installed dqn-family's version, else pyproject.toml's beside this checkout, else 'unknown'."""
    try:
        return importlib.metadata.version("dqn-family")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        found = re.search(r'^version\s*=\s*"([^"]+)"', _PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        found = None
    return found[1] if found else "unknown"


def sidecar(
    *,
    model_bytes: bytes,
    model_path: Path,
    export_format: str,
    config: Config,
    spec: ObservationSpec,
    n_actions: int,
    output: str,
    eval_seed: int,
    source: str,
    initial_state: list[float] | None = None,
) -> dict[str, Any]:
    inputs = {"observations": "[batch, *observation_shape] in observation_dtype"}
    observation: dict[str, Any] = {
        "observation_shape": list(spec.shape),
        "observation_dtype": spec.dtype,
        "observation_states": spec.states,
    }
    if spec.parts is not None:  # dictionary observations: one input per key, in this order
        inputs = {key: f"[batch, *observation_parts[{key!r}].shape] in its dtype" for key in spec.parts}
        observation = {"observation_parts": describe_parts(spec.parts)}
    outputs = {"actions": "int64 [batch], greedy", "q_values": f"float32 [batch, n_actions] ({output})"}
    recurrent = {}
    if initial_state is not None:  # one acting step: the player carries the state through each episode
        inputs["state"] = "float32 [batch, state_size]: initial_state at an episode's start, else the last next_state"
        outputs["next_state"] = "float32 [batch, state_size]"
        recurrent = {"state_size": len(initial_state), "initial_state": initial_state}
    if spec.action_mask is not None:  # a run with action masks: the player passes the env's mask
        inputs["action_mask"] = "bool [batch, n_actions]: True where the action is legal (the env's action mask)"
        outputs["actions"] = "int64 [batch], greedy among the legal actions"
    module, _ = split_env_spec(config.env_id)
    recipe = play_recipe(config.env_id) if module in PROJECT_ENV_MODULES else None
    return {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "model_file": model_path.name,
        "export_format": export_format,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "env_id": config.env_id,
        **({"play_env": recipe} if recipe else {}),  # the project's own env, made from plain Gymnasium
        "algo": config.algo,
        **observation,
        "n_actions": n_actions,
        "action_mask": spec.action_mask is not None,
        "inputs": inputs,
        "outputs": outputs,
        **recurrent,
        "eval_seed": eval_seed,
        "eval_epsilon": config.eval_epsilon,
        "source": source,
        "project_version": project_version(),
        "torch_version": torch.__version__,
    }


def write_sidecar(model_path: Path, values: dict[str, Any]) -> Path:
    path = sidecar_path(model_path)
    # Not a path the user named (it is derived from --out): a link or FIFO planted there is refused.
    write_text_atomic(path, json.dumps(values, indent=2) + "\n")
    return path
