"""Configuration: the typed ``Config`` dataclass, its YAML presets (beside this file) and its CLI."""

from dqn_family.configs.config import Config
from dqn_family.configs.errors import ConfigError, UserError
from dqn_family.configs.loading import (
    add_config_arguments,
    config_from_args,
    config_origins,
    config_to_dict,
    env_file_name,
    load_config,
    make_parser,
    preset_path,
    print_config,
    read_config_file,
    report_user_errors,
    resolve_config,
    save_config,
    train_overrides,
    values_for_help,
)

__all__ = [
    "Config",
    "ConfigError",
    "add_config_arguments",
    "config_from_args",
    "config_origins",
    "config_to_dict",
    "env_file_name",
    "load_config",
    "make_parser",
    "report_user_errors",
    "preset_path",
    "print_config",
    "read_config_file",
    "resolve_config",
    "save_config",
    "train_overrides",
    "UserError",
    "values_for_help",
]
