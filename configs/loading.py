"""Where a Config comes from: defaults < env preset < --config FILE < command-line flags.

Presets live beside this file as ``<algo>/<env>.yaml`` (``ALE/Pong-v5`` becomes ``ALE_Pong-v5``)
and ``<algo>/<family>.yaml`` for a family of envs (``atari`` for ``ALE/...``, ``minatar`` for
``MinAtar/...``), and are found from the chosen env and algo. Every YAML file is read as
untrusted input (``fileio.load_yaml``): plain data only, never code, bounded in size and
nesting, no aliases or duplicate keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dqn_family.configs.config import FIELD_NAMES, Config, field_default, field_kind
from dqn_family.configs.errors import ConfigError, UserError, os_error_line, os_error_of
from dqn_family.fileio import load_yaml, redact_credentials, short_repr, write_text_atomic

CONFIG_DIR = Path(__file__).resolve().parent
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kilobytes; anything bigger is not one
_NONE_WORDS = ("none", "null")
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


ENV_FAMILIES = {"ALE/": "atari", "MinAtar/": "minatar"}  # env id prefix -> family


def env_family(env_id: str) -> str | None:
    """'atari', 'minatar' or None (any other env), from the id (a 'module:' prefix is ignored)."""
    env_id = env_id.split(":")[-1]
    return next((family for prefix, family in ENV_FAMILIES.items() if env_id.startswith(prefix)), None)


def env_file_name(env_id: str) -> str:
    """An env id as a file or folder name: the registered id without its 'module:' prefix, any
    character but letters, digits, '_', '-' and '.' as '_' (``ALE/Pong-v5`` -> ``ALE_Pong-v5``), at
    most 100 characters; used for presets, run directories, videos and figures."""
    return re.sub(r"[^\w.-]", "_", env_id.split(":")[-1], flags=re.ASCII)[:100]


def preset_path(env_id: str, algo: str) -> Path:
    """The preset file for an env and algo (it may not exist)."""
    return CONFIG_DIR / algo / f"{env_file_name(env_id)}.yaml"


def _env_presets(env_id: str, algo: str) -> list[Path]:
    """The existing preset files of an env for one algo: its family's, then its own."""
    family = env_family(env_id)
    paths = [CONFIG_DIR / algo / f"{family}.yaml"] if family else []
    return [path for path in [*paths, preset_path(env_id, algo)] if _is_file(path)]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of config fields, rejecting anything that is not one. The file is
    untrusted: only a regular file of at most MAX_CONFIG_BYTES, no aliases, no duplicate keys,
    bounded nesting (see fileio.reading)."""
    data = load_yaml(path, max_bytes=MAX_CONFIG_BYTES, what="config file", error=ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of field: value, got {type(data).__name__}")
    return {_check_key(key, path): _from_yaml(key, value) for key, value in data.items()}


def _check_key(key: Any, source: Path | str) -> str:
    if key not in FIELD_NAMES:
        close = difflib.get_close_matches(str(key), FIELD_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see `python train.py --help`"
        raise ConfigError(f"unknown config key {short_repr(key)} in {source}{hint}")
    return key


def _from_yaml(key: str, value: Any) -> Any:
    """YAML lists become tuples (hidden_sizes); 'none' clears an optional field, as on the command
    line; everything else is checked by Config itself."""
    if isinstance(value, str) and value.lower() in _NONE_WORDS and field_kind(_FIELDS[key])[1]:
        return None
    return tuple(value) if isinstance(value, list) else value


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long for the file system: there is no such preset
        return False


@dataclass(frozen=True)
class Layer:
    """One layer of settings: where they come from (a preset file, ``--config FILE``, the command
    line) and the fields it sets."""

    source: str
    values: dict[str, Any]
    env_preset: bool = False  # a dqn/ env preset: the base every learner shares


def config_layers(overrides: dict[str, Any], config_file: str | None = None) -> list[Layer]:
    """The layers over Config's defaults, lowest precedence first:

    1. the env's presets, ``dqn/<family>.yaml`` then ``dqn/<env>.yaml`` (sizes and schedules every
       learner shares);
    2. the algo's defaults, ``<algo>/defaults.yaml`` (e.g. Rainbow's components);
    3. the algo's env presets, ``<algo>/<family>.yaml`` then ``<algo>/<env>.yaml`` (what differs for
       that learner, e.g. C51's support);
    4. ``--config FILE``;
    5. command-line flags (or ``overrides`` from Python).
    """
    for key in overrides:
        _check_key(key, "the settings given")
    from_file = read_config_file(config_file) if config_file else {}
    env_id = str({**from_file, **overrides}.get("env_id", Config.env_id))
    algo = str({**from_file, **overrides}.get("algo", Config.algo))
    layers = [Layer(_shown(path), read_config_file(path), env_preset=True) for path in _env_presets(env_id, "dqn")]
    if algo != "dqn":
        algo_paths = [CONFIG_DIR / algo / "defaults.yaml", *_env_presets(env_id, algo)]
        layers += [Layer(_shown(path), read_config_file(path)) for path in algo_paths if _is_file(path)]
    if config_file:
        layers.append(Layer(f"--config {config_file}", from_file))
    return [*layers, Layer("the command line", dict(overrides))]


def resolve_config(overrides: dict[str, Any], config_file: str | None = None) -> Config:
    """Merge Config's defaults and the :func:`config_layers`, later ones winning, and validate the
    result. A ConfigError about a value the user did not give says which file it came from."""
    merged, origins = merge_layers(config_layers(overrides, config_file))
    try:
        return Config(**merged)
    except ConfigError as error:
        notes = [
            f"{name}={short_repr(merged[name])} comes from {origins[name]}; set it with "
            f"--{name.replace('_', '-')} VALUE" + (" (or none)" if field_kind(_FIELDS[name])[1] else "")
            for name in dict.fromkeys(re.findall(r"\w+", str(error)))
            if origins.get(name, "the command line") != "the command line"
        ]
        raise ConfigError("; ".join([str(error), *notes[:2]])) from None


def merge_layers(layers: list[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged values and, for each field a layer set, the source it came from. Layering rule
    (stated in the noisy field's help): while noisy is on, epsilon is 0 unless a layer above the
    env presets sets it."""
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        merged.update(layer.values)
        origins.update(dict.fromkeys(layer.values, layer.source))
    chosen = {key for layer in layers if not layer.env_preset for key in layer.values}
    if merged.get("noisy") and not {"epsilon_start", "epsilon_end"} & chosen:
        merged.update(epsilon_start=0.0, epsilon_end=0.0)
        origins.update(epsilon_start="the noisy rule", epsilon_end="the noisy rule")
    return merged, origins


def _shown(path: Path) -> str:
    return str(path.relative_to(CONFIG_DIR.parent)) if path.is_relative_to(CONFIG_DIR.parent) else str(path)


def print_config(config: Config, origins: dict[str, str]) -> str:
    """The resolved config as YAML (``train.py --config`` takes it back), each value that a preset,
    ``--config`` file or the noisy rule set followed by a comment saying which."""
    values = config_to_dict(config)
    # Flow style for the lists and no line wrapping: one line per field (hidden_sizes is a list, so
    # the mapping itself stays in block style).
    lines = yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=1 << 20).splitlines()
    if len(lines) != len(values):  # cannot happen with today's fields; then no comments rather than wrong ones
        return "\n".join(lines) + "\n"
    sources = [origins.get(name, "the command line") for name in values]
    return "".join(
        line + (f"  # {source}" if source != "the command line" else "") + "\n" for line, source in zip(lines, sources)
    )


def config_to_dict(config: Config) -> dict[str, Any]:
    values = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically (a reader never sees half a file)."""
    write_text_atomic(Path(path), yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config(path: str | Path) -> Config:
    return Config(**read_config_file(path))


# --- command line -------------------------------------------------------------------------


# Other libraries' names for settings that have flags here (CleanRL, Stable-Baselines3, RL Zoo),
# each with the flags it may mean: a parser suggests the first one it has. Names close in spelling
# to a flag (--train-freq, --eval-freq, --total-timesteps) are found without this table.
FLAG_ALIASES: dict[str, tuple[str, ...]] = {
    "--total-timesteps": ("--total-steps",),  # CleanRL; SB3's learn(total_timesteps)
    "--n-timesteps": ("--total-steps",),  # RL Zoo
    "--target-network-frequency": ("--target-update-interval",),  # CleanRL
    "--start-e": ("--epsilon-start",),  # CleanRL
    "--end-e": ("--epsilon-end",),  # CleanRL
    "--exploration-initial-eps": ("--epsilon-start",),  # SB3
    "--exploration-final-eps": ("--epsilon-end",),  # SB3
    "--exploration-fraction": ("--epsilon-decay-steps",),  # CleanRL, SB3: a fraction of the run; here env steps
    "--n-eval-episodes": ("--eval-episodes", "--episodes"),  # RL Zoo; evaluate.py's is --episodes
    "--cuda": ("--device",),  # CleanRL's --cuda/--no-cuda
    "--capture-video": ("--video",),  # CleanRL; evaluate.py records episodes
    "--lr": ("--learning-rate",),  # most libraries' shorthand
}


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake prints one line (not the whole usage) and exits with code 2, and an
    unknown flag is answered with the closest one this parser has."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {redact_credentials(message)} (see --help)\n")
        raise SystemExit(2)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:  # as argparse's own parse_args, with suggestions
            self.error(f"unrecognized arguments: {' '.join(unknown)}{_suggestions(unknown, self._flags())}")
        return parsed

    def _flags(self) -> list[str]:
        # argparse has no public list of a parser's flags; _actions has held its actions since Python
        # 3.2 (tests/configs/test_loading.py fails loudly should that change).
        return [flag for action in self._actions for flag in action.option_strings]


def _suggestions(unknown: list[str], flags: list[str]) -> str:
    """'; did you mean --x?' for the unknown flags among ``unknown`` (values are skipped) that an
    alias or a close spelling maps to one of ``flags``, else ''."""
    found = []
    for token in unknown:
        name = token.split("=", 1)[0]
        if not name.startswith("--"):  # a value, or a one-letter flag: no useful guess
            continue
        alias = next((flag for flag in FLAG_ALIASES.get(name, ()) if flag in flags), None)
        close = [alias] if alias else difflib.get_close_matches(name, flags, n=1)
        if close and close[0] != name:
            found.append((name, close[0]))
    if not found:
        return ""
    if len(found) == 1:
        return f"; did you mean {found[0][1]}?"
    return "; did you mean " + ", ".join(f"{flag} (for {name})" for name, flag in found) + "?"


def _cli_type(f: dataclasses.Field):
    kind, optional = field_kind(f)

    def parse(text: str) -> Any:
        if optional and text.lower() in _NONE_WORDS:
            return None
        try:
            if kind is tuple:
                return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
            if kind is int:
                try:
                    return int(text.replace("_", ""))
                except ValueError:  # scientific notation such as 1e5
                    number = float(text)
                    if not number.is_integer():
                        raise
                    return int(number)
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {kind.__name__}{' or none' if optional else ''}, got {short_repr(text)}"
            ) from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_config_arguments(parser: argparse.ArgumentParser, shown: dict[str, tuple[Any, str]] | None = None) -> None:
    """One flag per Config field (``learning_rate`` -> ``--learning-rate``), defaults suppressed
    so that only flags actually given override the preset and config file. ``shown`` (from
    :func:`values_for_help`) makes the help give each field's value from the presets and its source."""
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="YAML file of config fields, applied over the env preset."
    )
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = field_default(f)
        value, source = (shown or {}).get(f.name, (default, ""))
        differs = source and _cli_text(value) != _cli_text(default)
        where = (
            f"{_cli_text(value)} from {source}; Config's default {_cli_text(default)}" if differs else _cli_text(value)
        )
        help_text = f"{f.metadata['help']} (default: {where})".replace("%", "%%")  # argparse formats with %
        kind, _ = field_kind(f)
        aliases = [flag, "--env"] if f.name == "env_id" else [flag]
        if kind is bool:
            parser.add_argument(
                *aliases, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                *aliases,
                dest=f.name,
                type=_cli_type(f),
                default=argparse.SUPPRESS,
                choices=f.metadata.get("choices"),
                metavar=kind.__name__.upper(),
                help=help_text,
            )


def train_overrides(settings: list[str], train_flags: list[str]) -> tuple[dict, str | None]:
    """Config overrides from ``--set KEY=VALUE`` and the train.py flags after ``--``, both parsed
    by train.py's own flag parser (so '1e-3', 'none' and '64,64' mean what they mean there)."""
    flags = []
    kinds = {f.name: field_kind(f)[0] for f in dataclasses.fields(Config)}
    for setting in settings:
        key, equals, value = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not equals:
            raise UserError(f"--set takes KEY=VALUE, got {setting!r}")
        if key not in FIELD_NAMES:
            close = difflib.get_close_matches(key, FIELD_NAMES, n=1)
            raise UserError(f"unknown config key {key!r} in --set" + (f"; did you mean {close[0]!r}?" if close else ""))
        flag = "--" + key.replace("_", "-")
        if kinds[key] is bool:
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise UserError(f"--set {key} takes true or false, got {value!r}")
            flags.append(flag if value.lower() in ("true", "yes", "1") else "--no-" + key.replace("_", "-"))
        else:
            flags.append(f"{flag}={value}")
    train_parser = make_parser("train.py flags", "Flags passed to every train.py.")
    add_config_arguments(train_parser)
    namespace = vars(train_parser.parse_args(flags + train_flags))
    config_file = namespace.pop("config", None)
    return {key: value for key, value in namespace.items() if key in FIELD_NAMES}, config_file


def _cli_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def values_for_help(argv: list[str]) -> dict[str, tuple[Any, str]] | None:
    """For ``--help``: each field's value and source from the presets of the env, algo and config
    file named in ``argv`` (CartPole-v1 and dqn unless given); None without --help, or when those
    cannot be read (the help then shows Config's defaults)."""
    if not {"-h", "--help"} & set(argv):
        return None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", "--env-id", dest="env_id")
    pre.add_argument("--algo")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    given = {name: value for name in ("env_id", "algo") if (value := getattr(known, name)) is not None}
    try:
        merged, origins = merge_layers(config_layers(given, known.config))
    except UserError:
        return None
    return {name: (value, origins.get(name, "")) for name, value in merged.items()}


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser whose own mistakes are one line (exit 2), with a --debug flag."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.add_argument("--debug", action="store_true", help="Show tracebacks for errors.")
    return parser


def report_user_errors(prog: str, args: argparse.Namespace, command: Callable[[], int]) -> int:
    """Run ``command``; a UserError becomes one line on stderr and exit code 2, an OSError one line
    naming the path and the cause (exit code 2 for a bad path, 1 for the machine: a full disk,
    read-only media), Ctrl-C 'interrupted' and exit code 130; no traceback unless ``--debug``."""
    debug = getattr(args, "debug", False)
    try:
        return command()
    except UserError as error:
        if debug:
            raise
        print(f"{prog}: error: {redact_credentials(str(error))}", file=sys.stderr)  # a URL's password never shown
        return 2
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        cause = os_error_of(error)
        if cause is None or debug:
            raise
        line, code = os_error_line(cause)
        print(f"{prog}: error: {redact_credentials(line)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130


def config_from_args(args: argparse.Namespace) -> Config:
    """The validated Config for parsed arguments (flags added by add_config_arguments)."""
    return resolve_config(_given(args), args.config)


def config_origins(args: argparse.Namespace) -> dict[str, str]:
    """Where each field set by a layer comes from, for parsed arguments (see print_config)."""
    return merge_layers(config_layers(_given(args), args.config))[1]


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k in FIELD_NAMES}
