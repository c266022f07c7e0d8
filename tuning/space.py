"""Search spaces for tune.py: which config fields a study varies, and over what values.

A search space is a YAML mapping of config field to typed range::

    learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    train_frequency: {type: int, low: 1, high: 8}            # step: 1 unless given
    target_update_interval: {type: int, low: 100, high: 2000, step: 100}
    batch_size: {type: categorical, choices: [32, 64, 128, 256]}
    hidden_sizes: {type: categorical, choices: ["64,64", "128,128"]}   # or [[64, 64], [128, 128]]

The shipped spaces live in ``configs/tune/<algo>.yaml``, and ``configs/tune/<algo>/<env>.yaml``
replaces it for one env. A space file is untrusted input, checked as configs are: read bounded
(``fileio.load_yaml``), every key a tunable config field, every range inside the field's own
allowed values (``configs.config``), low <= high, log ranges above 0, each value of the field's
type; a mistake is one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqn_family.configs import Config, ConfigError, env_file_name
from dqn_family.configs.config import FIELD_NAMES, field_kind, is_int
from dqn_family.configs.loading import CONFIG_DIR
from dqn_family.fileio import load_yaml, short_repr

SPACE_DIR = CONFIG_DIR / "tune"
MAX_SPACE_BYTES = 1 << 16  # a space is a few hundred bytes
MAX_CHOICES = 1_000
# The fields a study may vary: how the agent learns (optimiser, targets, replay, exploration,
# distributional and recurrent settings, the acting-side tricks of Ape-X) and the network's shape.
# Everything else is the problem (env, seed, budget, evaluation, Atari protocol), the machine
# (device, precision, compile, threads, actors, Ray) or the bookkeeping (run directory, logging,
# tracking, checkpoints): a study that varied those would compare different problems or machines,
# or let a space file choose where a run reports to. A new field is not tunable until it is listed.
TUNABLE = frozenset(
    {
        "learning_rate",
        "learning_rate_end",
        "adam_eps",
        "gamma",
        "batch_size",
        "buffer_size",
        "learning_starts",
        "train_frequency",
        "gradient_steps",
        "target_update_interval",
        "tau",
        "loss",
        "max_grad_norm",
        "double",
        "dueling",
        "noisy",
        "noisy_sigma0",
        "n_step",
        "prioritized",
        "priority_alpha",
        "priority_beta_start",
        "priority_epsilon",
        "priority_eta",
        "num_atoms",
        "v_min",
        "v_max",
        "num_quantiles",
        "exploration_schedule",
        "epsilon_start",
        "epsilon_end",
        "epsilon_decay_steps",
        "hidden_sizes",
        "activation",
        "torso",
        "recurrent",
        "recurrent_size",
        "sequence_length",
        "sequence_overlap",
        "burn_in",
        "stored_state",
        "frame_stack",
        "clip_rewards",
        "terminal_on_life_loss",
        "actor_exploration",
        "replay_ratio",
    }
)
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_KEYS = {
    "float": {"type", "low", "high", "log"},
    "int": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}


@dataclass(frozen=True)
class FloatRange:
    name: str
    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any) -> float:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution  # optuna: the tune extra

        return FloatDistribution(self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return _is_number(value) and math.isfinite(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class IntRange:
    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, trial: Any) -> int:
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)

    def distribution(self) -> Any:
        from optuna.distributions import IntDistribution  # optuna: the tune extra

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        return is_int(value) and self.low <= value <= self.high and (value - self.low) % self.step == 0


@dataclass(frozen=True)
class Choice:
    """Choices as Optuna stores them (None, bool, int, float or str: a tuple field's value is the
    string "64,64"); ``config_value`` turns one back into the field's value."""

    name: str
    choices: tuple[Any, ...]

    def suggest(self, trial: Any) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution  # optuna: the tune extra

        return CategoricalDistribution(self.choices)

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(choice) and value == choice for choice in self.choices)  # True is not 1


Param = FloatRange | IntRange | Choice
SearchSpace = dict[str, Param]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stored_params_problem(space: SearchSpace, params: dict[str, Any], distributions: dict[str, Any]) -> str | None:
    """What is wrong with a stored trial's parameters (a study's database may come from someone
    else), or None when each is one that ``space`` can sample: a name it tunes, from the same
    distribution, a value inside it. A trial that started may hold only some of the names."""
    for name, value in params.items():
        param = space.get(name)
        if param is None:
            return f"has the parameter {short_repr(name)}, which the search space does not tune"
        if distributions.get(name) != param.distribution():
            return f"samples {name} from another range than the search space"
        if not param.contains(value):
            return f"has {name} = {short_repr(value)}, outside the search space"
    return None


def shipped_space_path(env_id: str, algo: str) -> Path:
    """The shipped space for an env and algo: ``tune/<algo>/<env>.yaml`` if there is one, else
    ``tune/<algo>.yaml`` (which may not exist)."""
    own = SPACE_DIR / algo / f"{env_file_name(env_id)}.yaml"
    return own if own.is_file() else SPACE_DIR / f"{algo}.yaml"


def load_space(path: str | Path) -> SearchSpace:
    """The validated search space in ``path``; ConfigError naming the file and key otherwise."""
    data = load_yaml(path, max_bytes=MAX_SPACE_BYTES, what="search space", error=ConfigError)
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"search space {path} must be a mapping of config field: {{type: ..., ...}} with at least one field"
        )
    return {name: _param(str(path), name, entry) for name, entry in data.items()}


def _param(path: str, name: Any, entry: Any) -> Param:
    where = f"search space {path}: {short_repr(name)}"
    if name not in FIELD_NAMES:
        close = difflib.get_close_matches(str(name), FIELD_NAMES, n=1)
        raise ConfigError(f"{where} is not a config field" + (f"; did you mean {close[0]!r}?" if close else ""))
    if name not in TUNABLE or _tunable_kind(name) is None:
        raise ConfigError(
            f"{where} cannot be tuned (it is part of the problem, the machine or the bookkeeping); set it with a "
            f"train.py flag instead; tunable: {', '.join(sorted(TUNABLE))}"
        )
    if not isinstance(entry, dict) or entry.get("type") not in _KEYS:
        raise ConfigError(f"{where} must be a mapping with type: float, int or categorical")
    unknown = sorted(map(str, set(entry) - _KEYS[entry["type"]]))
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} is not allowed with type {entry['type']} "
            f"(allowed: {', '.join(sorted(_KEYS[entry['type']]))})"
        )
    if entry["type"] == "categorical":
        return _choice(where, name, entry)
    return _range(where, name, entry)


def _tunable_kind(name: str) -> type | None:
    kind, _ = field_kind(_FIELDS[name])
    if kind is str and not _FIELDS[name].metadata.get("choices"):
        return None  # a free-form string (a device, a module name)
    return kind


def _range(where: str, name: str, entry: dict) -> Param:
    kind, wanted = _tunable_kind(name), entry["type"]
    assert kind is not None  # _param refuses the fields with no tunable kind before calling this
    if kind is not (float if wanted == "float" else int):
        hint = {float: "float", int: "int"}.get(kind, "categorical")
        raise ConfigError(f"{where} is a {kind.__name__} field; use type: {hint}")
    number = (
        (lambda v: is_int(v))
        if wanted == "int"
        else (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
    )
    for key in ("low", "high"):
        if key not in entry:
            raise ConfigError(f"{where} needs {key}")
        if not number(entry[key]):
            hint = " (YAML reads 1e-4 as text; write 1.0e-4)" if isinstance(entry[key], str) else ""
            raise ConfigError(
                f"{where}: {key} must be {'an integer' if wanted == 'int' else 'a finite number'}, "
                f"got {short_repr(entry[key])}{hint}"
            )
    low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step", 1)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {short_repr(log)}")
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range must be above 0, got low {low}")
    for key in ("low", "high"):
        _check_value(where, name, entry[key], f"{key} {short_repr(entry[key])}")
    if wanted == "float":
        return FloatRange(name, float(low), float(high), log)
    if not is_int(step) or step < 1:
        raise ConfigError(f"{where}: step must be an integer >= 1, got {short_repr(step)}")
    if log and step != 1:
        raise ConfigError(f"{where}: step and log cannot be combined (Optuna samples log ranges with step 1)")
    if (high - low) % step:
        raise ConfigError(f"{where}: high - low ({high - low}) must be a multiple of step ({step})")
    return IntRange(name, low, high, step, log)


def _choice(where: str, name: str, entry: dict) -> Choice:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES:
        raise ConfigError(f"{where}: choices must be a list of 1 to {MAX_CHOICES:,} values")
    stored = [_storable(where, name, choice) for choice in choices]
    if len(set(map(repr, stored))) < len(stored):
        raise ConfigError(f"{where}: choices lists the same value twice")
    for value in stored:
        _check_value(where, name, config_value(name, value), f"choice {short_repr(value)}")
    return Choice(name, tuple(stored))


def _storable(where: str, name: str, choice: Any) -> Any:
    """A choice as Optuna stores it: a tuple field's list or "64,64" string becomes "64,64"."""
    if _tunable_kind(name) is not tuple:
        return choice
    if isinstance(choice, list) and all(is_int(width) for width in choice):
        return ",".join(map(str, choice))
    if isinstance(choice, str) and all(part.strip().isdigit() for part in choice.split(",")):
        return ",".join(part.strip() for part in choice.split(","))
    raise ConfigError(f'{where}: each choice must be widths like "64,64" or [64, 64], got {short_repr(choice)}')


def config_value(name: str, value: Any) -> Any:
    """A value Optuna suggested, as the config field wants it ("64,64" -> (64, 64))."""
    if _tunable_kind(name) is tuple and isinstance(value, str):
        return tuple(int(part) for part in value.split(","))
    return value


def _check_value(where: str, name: str, value: Any, what: str) -> None:
    """``value`` (``what``: how the file gave it) must be one the field itself allows (its type, range or choices)."""
    f = _FIELDS[name]
    kind, optional = field_kind(f)
    if value is None:
        if not optional:
            raise ConfigError(f"{where}: {what} is not allowed (the field cannot be none)")
        return
    try:
        Config(**{name: value, **_companions(name, value)})
    except ConfigError as error:
        raise ConfigError(f"{where}: {what} is outside the field's allowed values: {error}") from None


def _companions(name: str, value: Any) -> dict[str, Any]:
    """Settings that let one field's value be checked on its own, where Config also compares it
    with another field (batch_size with buffer_size, v_min with v_max, learning_rate_end with
    learning_rate): the other field at its most permissive."""
    if name == "batch_size":
        return {"buffer_size": _FIELDS["buffer_size"].metadata["bounds"].high}
    if name == "learning_rate_end":
        return {"learning_rate": _FIELDS["learning_rate"].metadata["bounds"].high}
    if name == "v_min":
        return {"v_max": _FIELDS["v_max"].metadata["bounds"].high}
    if name == "v_max":
        return {"v_min": _FIELDS["v_min"].metadata["bounds"].low}
    return {}


def space_to_dict(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The space as plain data (stored with the study, so a re-run can check it is the same)."""
    return {
        name: {
            "type": type(param).__name__,
            **{
                k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(param).items() if k != "name"
            },
        }
        for name, param in space.items()
    }
