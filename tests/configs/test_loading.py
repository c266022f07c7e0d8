"""Where a Config comes from: YAML files, presets, command-line flags, and their precedence
defaults < preset < --config file < flags."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dqn_family import configs
from dqn_family.agents import AGENTS
from dqn_family.configs import (
    Config,
    ConfigError,
    add_config_arguments,
    config_from_args,
    load_config,
    make_parser,
    preset_path,
    read_config_file,
    resolve_config,
    save_config,
)
from dqn_family.configs.config import FIELD_NAMES
from dqn_family.configs.loading import config_layers, merge_layers

# Every YAML file under configs/ but the search spaces of tune.py (configs/tune/, tested in tests/tuning).
SHIPPED_YAML = sorted(
    path
    for path in configs.loading.CONFIG_DIR.glob("**/*.yaml")
    if path.relative_to(configs.loading.CONFIG_DIR).parts[0] != "tune"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = make_parser("train.py", "test parser")
    add_config_arguments(parser)
    return parser.parse_args(argv)


# --- reading files ------------------------------------------------------------------------


def test_read_config_file_returns_fields_with_lists_as_tuples(tmp_path):
    path = write(tmp_path / "c.yaml", "gamma: 0.5\nhidden_sizes: [64, 32]\ndouble: true\n")
    assert read_config_file(path) == {"gamma": 0.5, "hidden_sizes": (64, 32), "double": True}


def test_read_config_file_empty_file_is_no_fields(tmp_path):
    assert read_config_file(write(tmp_path / "c.yaml", "# nothing set\n")) == {}


def test_read_config_file_unknown_key_suggests_closest_field(tmp_path):
    path = write(tmp_path / "c.yaml", "learning_rat: 0.001\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rat' .*did you mean 'learning_rate'\?"):
        read_config_file(path)


def test_read_config_file_unknown_key_without_close_match_points_to_help(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'zzzz'.*--help"):
        read_config_file(write(tmp_path / "c.yaml", "zzzz: 1\n"))


def test_read_config_file_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path / "c.yaml", "gamma: 0.9\nhidden_sizes: [64, 64\n")
    with pytest.raises(ConfigError, match=r"c\.yaml is not valid YAML \(line \d+\)"):
        read_config_file(path)


def test_read_config_file_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="must be a mapping of field: value, got list"):
        read_config_file(write(tmp_path / "c.yaml", "- gamma\n- 0.9\n"))


def test_read_config_file_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ('learning_rate: "abc"\n', "learning_rate must be a number, got 'abc'"),
        ("learning_rate: 1e-3\n", "learning_rate must be a number, got '1e-3'"),  # YAML 1.1: no dot, a string
        ("double: 1\n", "double must be true or false, got 1"),
        ("total_steps: 1000.5\n", "total_steps must be an integer"),
        ("hidden_sizes: 64\n", "hidden_sizes must be a list of integers"),
    ],
)
def test_resolve_config_wrong_type_from_yaml_is_config_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config({}, str(write(tmp_path / "c.yaml", text)))


def test_read_config_file_none_word_clears_optional_field(tmp_path):
    config = resolve_config({}, str(write(tmp_path / "c.yaml", "max_grad_norm: none\n")))
    assert config.max_grad_norm is None


def test_read_config_file_yaml_null_clears_optional_field(tmp_path):
    config = resolve_config({}, str(write(tmp_path / "c.yaml", "max_grad_norm: null\n")))
    assert config.max_grad_norm is None


def test_save_config_then_load_config_round_trips(tmp_path):
    config = Config(
        env_id="Acrobot-v1",
        learning_rate=3e-4,
        hidden_sizes=(64, 32),
        max_grad_norm=None,
        double=True,
        run_dir=str(tmp_path),
        adam_eps=1e-10,
    )
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


# --- precedence ---------------------------------------------------------------------------


@pytest.fixture
def preset_dir(tmp_path, monkeypatch):
    """A presets folder of our own: dqn/CartPole-v1.yaml sets learning_rate, batch_size and gamma."""
    presets = tmp_path / "presets"
    write(presets / "dqn" / "CartPole-v1.yaml", "learning_rate: 0.002\nbatch_size: 16\ngamma: 0.9\n")
    monkeypatch.setattr(configs.loading, "CONFIG_DIR", presets)
    return presets


@pytest.fixture
def config_file(tmp_path):
    return str(write(tmp_path / "mine.yaml", "batch_size: 8\ngamma: 0.8\n"))


def test_resolve_config_preset_overrides_defaults(preset_dir):
    config = resolve_config({})
    assert (config.learning_rate, config.batch_size, config.gamma) == (0.002, 16, 0.9)
    assert config.buffer_size == Config().buffer_size  # untouched by any layer: the default


def test_resolve_config_file_overrides_preset(preset_dir, config_file):
    config = resolve_config({}, config_file)
    assert (config.learning_rate, config.batch_size, config.gamma) == (0.002, 8, 0.8)


def test_config_from_args_flags_override_file(preset_dir, config_file):
    config = config_from_args(parse(["--config", config_file, "--gamma", "0.7"]))
    assert (config.learning_rate, config.batch_size, config.gamma) == (0.002, 8, 0.7)


def test_config_from_args_preset_follows_env_chosen_in_file(preset_dir, tmp_path):
    write(preset_dir / "dqn" / "Acrobot-v1.yaml", "learning_rate: 0.003\n")
    config = config_from_args(parse(["--config", str(write(tmp_path / "env.yaml", "env_id: Acrobot-v1\n"))]))
    assert (config.env_id, config.learning_rate, config.batch_size) == ("Acrobot-v1", 0.003, Config().batch_size)


def test_config_from_args_no_preset_for_env_gives_defaults(preset_dir):
    config = config_from_args(parse(["--env", "MountainCar-v0"]))
    assert (config.env_id, config.learning_rate) == ("MountainCar-v0", Config().learning_rate)


def test_preset_path_replaces_namespace_slash_and_drops_module(preset_dir):
    assert preset_path("ALE/Pong-v5", "dqn") == preset_dir / "dqn" / "ALE_Pong-v5.yaml"
    assert preset_path("my_pkg:Thing-v0", "c51") == preset_dir / "c51" / "Thing-v0.yaml"


def test_resolve_config_very_long_env_id_is_not_an_os_error():
    with pytest.raises(ConfigError):
        resolve_config({"env_id": "x" * 300, "gamma": 2.0})


# --- command line ---------------------------------------------------------------------------


def test_parser_only_given_flags_override(preset_dir):
    assert {k: v for k, v in vars(parse(["--gamma", "0.5"])).items() if k in FIELD_NAMES} == {"gamma": 0.5}


def test_parser_converts_flag_values_to_field_types():
    args = parse(
        [
            "--hidden-sizes",
            "64,32",
            "--max-grad-norm",
            "none",
            "--double",
            "--total-steps",
            "2e4",
            "--run-dir",
            "None",
            "--learning-rate",
            "3e-4",
        ]
    )
    assert args.hidden_sizes == (64, 32)
    assert args.max_grad_norm is None
    assert args.double is True
    assert args.total_steps == 20_000 and isinstance(args.total_steps, int)
    assert args.run_dir is None
    assert args.learning_rate == 3e-4


def test_parser_no_flag_turns_bool_off():
    assert parse(["--no-double"]).double is False


def test_parser_env_alias_sets_env_id():
    assert parse(["--env", "Acrobot-v1"]).env_id == "Acrobot-v1"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--total-steps", "1.5"], "--total-steps: expected int, got '1.5'"),
        (["--gamma", "high"], "--gamma: expected float, got 'high'"),
        (["--loss", "l1"], "--loss: invalid choice: 'l1'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_parser_error_is_one_line_and_exit_code_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and message in stderr


@pytest.mark.parametrize(
    "script, argv, hint",
    [
        ("train", ["--total-timesteps", "1000"], "; did you mean --total-steps?"),  # CleanRL's and SB3's name
        ("train", ["--exploration-final-eps=0.1"], "; did you mean --epsilon-end?"),  # SB3's, from the table
        ("train", ["--lr", "1e-3"], "; did you mean --learning-rate?"),  # difflib alone said --loss
        ("train", ["--no-doubel"], "; did you mean --no-double?"),  # a misspelling, from difflib
        ("train", ["--start-e", "1", "--end-e", "0"], "; did you mean --epsilon-start (for --start-e), --epsilon-end"),
        ("train", ["--frobnicate"], "unrecognized arguments: --frobnicate (see --help)"),  # nothing close: no guess
        ("evaluate", ["RUN", "--n-eval-episodes", "5"], "; did you mean --episodes?"),  # the flag evaluate.py has
        ("evaluate", ["RUN", "--total-timesteps", "5"], "unrecognized arguments: --total-timesteps 5 (see --help)"),
    ],
)
def test_script_unknown_flag_suggests_the_closest_one_it_has(capsys, script, argv, hint):
    from dqn_family import evaluate, train

    with pytest.raises(SystemExit) as exit_info:
        {"train": train, "evaluate": evaluate}[script].main(argv)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith(f"{script}.py: error: unrecognized arguments: ")
    assert hint in stderr


def test_parser_large_integer_flag_is_kept_exactly():
    assert parse(["--seed", "9007199254740993"]).seed == 9007199254740993


def help_entries(help_text: str) -> dict[str, str]:
    """Each option's help entry, whitespace-normalised, keyed by its first flag."""
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in help_text.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):
            current = [line]
            entries[line.split()[0].rstrip(",")] = current  # type: ignore[assignment]
        elif current:
            current.append(line)
    return {flag: " ".join(" ".join(lines).split()) for flag, lines in entries.items()}


def test_train_help_lists_every_field_flag_with_its_default(capsys):
    from dqn_family import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    entries = help_entries(capsys.readouterr().out)
    merged, origins = merge_layers(config_layers({}))  # CartPole-v1 and dqn: the help's defaults
    for f in dataclasses.fields(Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        value = merged.get(f.name, default)
        shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
        flag = "--" + f.name.replace("_", "-")
        assert flag in entries, f"{flag} missing from --help"
        assert f"(default: {shown}" in entries[flag], entries[flag]


def test_train_help_shows_defaults_as_written_by_hand(capsys):
    from dqn_family import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    entries = help_entries(capsys.readouterr().out)
    assert entries["--learning-rate"].endswith(
        "(default: 0.002 from configs/dqn/CartPole-v1.yaml; Config's default 0.0001)"
    )
    assert entries["--hidden-sizes"].endswith(
        "(default: 128,128 from configs/dqn/CartPole-v1.yaml; Config's default 120,84)"
    )
    assert entries["--adam-eps"].endswith("(default: 1e-08)")
    assert entries["--env-id"].endswith("(default: CartPole-v1)")
    assert entries["--double"].startswith("--double, --no-double")
    assert entries["--env-id"].startswith("--env-id STR, --env STR")


# --- shipped presets ------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(configs.loading.CONFIG_DIR)))
def test_shipped_yaml_loads_into_valid_config(path):
    assert isinstance(Config(**read_config_file(path)), Config)


# Presets are <algo>/<env>.yaml; other folders (e.g. benchmarks/) hold files for --config.
SHIPPED_PRESETS = [p for p in SHIPPED_YAML if p.parent.name in AGENTS and p.name != "defaults.yaml"]


@pytest.mark.parametrize("path", SHIPPED_PRESETS, ids=lambda p: str(p.relative_to(configs.loading.CONFIG_DIR)))
def test_shipped_preset_applies_when_its_env_and_algo_are_chosen(path):
    fields = read_config_file(path)
    env_id, algo = fields.get("env_id", path.stem), path.parent.name
    assert preset_path(env_id, algo) == path
    config = resolve_config({"env_id": env_id, "algo": algo})
    assert {key: getattr(config, key) for key in fields} == fields


def test_shipped_presets_exist():
    assert preset_path("CartPole-v1", "dqn") in SHIPPED_YAML


# --- any YAML mapping: a Config or a ConfigError, nothing else -------------------------------

yaml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
yaml_keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=20) | st.integers(-5, 5)
yaml_mappings = st.dictionaries(yaml_keys, yaml_values, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mapping=yaml_mappings)
def test_resolve_config_any_yaml_mapping_gives_config_or_config_error(mapping):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.yaml"
        path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
        try:
            config = resolve_config({}, str(path))
        except ConfigError:
            return
        assert isinstance(config, Config)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{},'\"&*!|>#%@` \n\t0123456789._")), max_size=40))
def test_read_config_file_any_text_gives_mapping_or_config_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            fields = read_config_file(path)
        except ConfigError:
            return
        assert isinstance(fields, dict) and set(fields) <= set(FIELD_NAMES)


@pytest.mark.parametrize("script", ["evaluate", "aggregate"])
def test_script_json_flag_refuses_an_empty_path(capsys, script):
    """--json '' was taken as no --json at all: nothing written, exit 0."""
    from dqn_family import aggregate, evaluate

    with pytest.raises(SystemExit) as exit_info:
        {"evaluate": evaluate, "aggregate": aggregate}[script].main(["RUN", "--json", ""])
    assert exit_info.value.code == 2
    assert "argument --json: needs a file path, or - for stdout" in capsys.readouterr().err
