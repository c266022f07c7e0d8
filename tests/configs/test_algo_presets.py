"""How --algo and the component flags resolve through the layered presets: Rainbow switches every
component on, a flag turns one off, noisy nets turn epsilon-greedy off unless epsilon is chosen,
and every learner resolves (and builds its network) for every shipped env preset."""

from __future__ import annotations

import pytest
import torch

from dqn_family import configs
from dqn_family.agents import AGENTS, build_network, is_recurrent, learner_class
from dqn_family.configs import Config, read_config_file, resolve_config

FAMILIES = set(configs.loading.ENV_FAMILIES.values())
ENV_PRESETS = sorted(
    path.stem for path in (configs.loading.CONFIG_DIR / "dqn").glob("*.yaml") if path.stem not in FAMILIES
)
# The env id a user gives for each env preset: its own env_id (pettingzoo:tictactoe_v3), else its name.
PRESET_ENV_IDS = {
    stem: read_config_file(configs.loading.CONFIG_DIR / "dqn" / f"{stem}.yaml").get("env_id", stem)
    for stem in ENV_PRESETS
}
# An env of each family preset (dqn/atari.yaml, dqn/minatar.yaml), its observations and action count.
FAMILY_ENVS = {
    "atari": ("ALE/Breakout-v5", torch.zeros(2, 4, 84, 84, dtype=torch.uint8), 4),
    "minatar": ("MinAtar/Breakout-v1", torch.zeros(2, 10, 10, 4, dtype=torch.bool), 3),
}
# Observation shape and action count of each shipped env, so networks build without making the env.
ENV_SHAPES = {
    "Acrobot-v1": ((6,), 3),
    "CartPole-v1": ((4,), 2),
    "CartPoleNoVelocity-v1": ((2,), 2),
    "LunarLander-v3": ((8,), 4),
    "MountainCar-v0": ((2,), 3),
    "connect_four_v3": ((6, 7, 2), 7),  # pettingzoo:connect_four_v3, its board planes (the board CNN's input)
    "tictactoe_v3": ((18,), 9),  # pettingzoo:tictactoe_v3, its 3x3x2 board flattened
}
SUPPORT_PRESETS = sorted(
    path
    for algo in ("c51", "rainbow")
    for path in (configs.loading.CONFIG_DIR / algo).glob("*.yaml")
    if path.name != "defaults.yaml"
)


def test_resolve_config_rainbow_switches_on_every_component():
    config = resolve_config({"algo": "rainbow"})
    assert (config.double, config.dueling, config.noisy, config.prioritized) == (True, True, True, True)
    assert config.n_step == 3
    assert (config.epsilon_start, config.epsilon_end) == (0.0, 0.0)


@pytest.mark.parametrize("flag", ["double", "dueling", "prioritized"])
def test_resolve_config_rainbow_flag_turns_one_component_off(flag):
    config = resolve_config({"algo": "rainbow", flag: False})
    components = {"double": config.double, "dueling": config.dueling, "prioritized": config.prioritized}
    assert components == {name: name != flag for name in components}
    assert config.noisy and config.n_step == 3


def test_resolve_config_rainbow_n_step_flag_overrides_preset():
    assert resolve_config({"algo": "rainbow", "n_step": 5}).n_step == 5


def test_resolve_config_rainbow_no_noisy_keeps_env_presets_epsilon():
    config = resolve_config({"algo": "rainbow", "noisy": False, "env_id": "CartPole-v1"})
    env_preset = read_config_file(configs.loading.CONFIG_DIR / "dqn" / "CartPole-v1.yaml")
    assert not config.noisy
    assert (config.epsilon_start, config.epsilon_end) == (env_preset["epsilon_start"], env_preset["epsilon_end"])


def test_resolve_config_noisy_turns_epsilon_off():
    config = resolve_config({"algo": "dqn", "env_id": "CartPole-v1", "noisy": True})
    assert (config.epsilon_start, config.epsilon_end) == (0.0, 0.0)


def test_resolve_config_noisy_keeps_an_explicitly_chosen_epsilon():
    config = resolve_config({"algo": "dqn", "env_id": "CartPole-v1", "noisy": True, "epsilon_start": 0.5})
    assert config.epsilon_start == 0.5
    assert config.epsilon_end == 0.02  # the CartPole preset's, not zeroed


def test_resolve_config_without_noisy_keeps_env_presets_epsilon():
    config = resolve_config({"algo": "c51", "env_id": "CartPole-v1"})
    assert (config.epsilon_start, config.epsilon_end) == (1.0, 0.02)


def test_resolve_config_algo_preset_layers_over_envs_dqn_preset():
    # CartPole's sizes, gamma and learning rate from dqn/CartPole-v1.yaml; the support from
    # rainbow/CartPole-v1.yaml; n-step and noisy from rainbow/defaults.yaml.
    env_preset = read_config_file(configs.loading.CONFIG_DIR / "dqn" / "CartPole-v1.yaml")
    rainbow_env = read_config_file(configs.loading.CONFIG_DIR / "rainbow" / "CartPole-v1.yaml")
    config = resolve_config({"algo": "rainbow", "env_id": "CartPole-v1"})
    assert (config.hidden_sizes, config.gamma, config.learning_rate) == (
        tuple(env_preset["hidden_sizes"]),
        env_preset["gamma"],
        env_preset["learning_rate"],
    )
    assert (config.v_min, config.v_max) == (rainbow_env["v_min"], rainbow_env["v_max"])
    assert config.noisy and config.prioritized and config.n_step == 3


def test_resolve_config_qrdqn_defaults_apply():
    assert resolve_config({"algo": "qrdqn"}).num_quantiles == 50
    assert resolve_config({"algo": "qrdqn", "num_quantiles": 8}).num_quantiles == 8


@pytest.mark.parametrize("preset", ENV_PRESETS)
@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_resolve_config_every_algo_and_env_preset_is_a_valid_config(algo, preset):
    env_id = PRESET_ENV_IDS[preset]
    config = resolve_config({"algo": algo, "env_id": env_id})
    assert isinstance(config, Config) and (config.algo, config.env_id) == (algo, env_id)
    assert learner_class(config) is AGENTS[algo]


@pytest.mark.parametrize("preset", ENV_PRESETS)
@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_build_network_for_every_algo_and_env_preset_gives_one_q_per_action(algo, preset):
    shape, n_actions = ENV_SHAPES[preset]
    network = build_network(resolve_config({"algo": algo, "env_id": PRESET_ENV_IDS[preset]}), shape, n_actions)
    if is_recurrent(network):  # a recurrent preset: one step from the initial state
        q_values, _ = network.step(torch.zeros(2, *shape), network.initial_state(2))
        assert q_values.shape == (2, n_actions)
    else:
        assert network(torch.zeros(2, *shape)).shape == (2, n_actions)


def test_env_shapes_cover_every_env_preset():
    assert sorted(ENV_SHAPES) == ENV_PRESETS


@pytest.mark.parametrize("family", sorted(FAMILY_ENVS))
@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_build_network_for_every_algo_and_family_preset_takes_raw_observations(algo, family):
    env_id, observations, n_actions = FAMILY_ENVS[family]
    config = resolve_config({"algo": algo, "env_id": env_id})
    network = build_network(config, tuple(observations.shape[1:]), n_actions)
    assert network(observations).shape == (2, n_actions)
    assert network.torso_kind == {"atari": "nature_cnn", "minatar": "minatar_cnn"}[family]


def test_family_presets_cover_every_family():
    assert sorted(FAMILY_ENVS) == sorted(FAMILIES)
    assert {path.stem for path in (configs.loading.CONFIG_DIR / "dqn").glob("*.yaml")} >= FAMILIES


def test_resolve_config_env_preset_layers_over_its_family_preset(tmp_path, monkeypatch):
    # dqn/atari.yaml applies to every ALE env; an env's own preset (if any) and flags win over it.
    config = resolve_config({"env_id": "ALE/Pong-v5", "learning_starts": 123})
    atari = read_config_file(configs.loading.CONFIG_DIR / "dqn" / "atari.yaml")
    assert (config.torso, config.clip_rewards, config.eval_epsilon) == ("nature_cnn", True, 0.05)
    assert (config.buffer_size, config.learning_starts) == (atari["buffer_size"], 123)
    (tmp_path / "dqn").mkdir()
    (tmp_path / "dqn" / "atari.yaml").write_text("batch_size: 7\ngamma: 0.9\n")
    (tmp_path / "dqn" / "ALE_Pong-v5.yaml").write_text("gamma: 0.5\n")
    monkeypatch.setattr(configs.loading, "CONFIG_DIR", tmp_path)
    config = resolve_config({"env_id": "ALE/Pong-v5"})
    assert (config.batch_size, config.gamma) == (7, 0.5)


def test_resolve_config_rainbow_atari_takes_the_papers_settings_over_the_dqn_atari_preset():
    config = resolve_config({"algo": "rainbow", "env_id": "ALE/Breakout-v5"})
    assert (config.learning_rate, config.target_update_interval, config.n_step) == (6.25e-5, 8000, 3)
    assert (config.epsilon_start, config.epsilon_end, config.eval_epsilon) == (0.0, 0.0, 0.05)


@pytest.mark.parametrize("path", SUPPORT_PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_c51_preset_sets_an_ordered_support(path):
    fields = read_config_file(path)
    assert {"v_min", "v_max"} <= fields.keys()
    assert fields["v_min"] < fields["v_max"]
