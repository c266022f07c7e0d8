"""configs/benchmarks/cleanrl_cartpole.yaml reproduces CleanRL's dqn.py defaults whatever our own
CartPole-v1 preset says: it sets every field that preset sets, so nothing of it leaks in."""

from __future__ import annotations

from dqn_family import configs
from dqn_family.configs import read_config_file, resolve_config

CLEANRL = configs.loading.CONFIG_DIR / "benchmarks" / "cleanrl_cartpole.yaml"


def test_cleanrl_config_overrides_every_field_of_our_cartpole_preset():
    ours = read_config_file(configs.loading.CONFIG_DIR / "dqn" / "CartPole-v1.yaml")
    cleanrl = read_config_file(CLEANRL)
    assert set(ours) - set(cleanrl) == set()


def test_cleanrl_config_resolves_to_cleanrl_dqn_defaults():
    config = resolve_config({"env_id": "CartPole-v1"}, str(CLEANRL))
    assert (config.learning_rate, config.learning_rate_end, config.buffer_size, config.gamma) == (
        2.5e-4,
        None,
        10_000,
        0.99,
    )
    assert (config.tau, config.target_update_interval, config.batch_size) == (1.0, 500, 128)
    assert (config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps) == (1.0, 0.05, 250_000)
    assert (config.learning_starts, config.train_frequency, config.gradient_steps) == (10_000, 10, 1)
    assert (config.hidden_sizes, config.activation, config.loss, config.max_grad_norm) == (
        (120, 84),
        "relu",
        "mse",
        None,
    )
    assert (config.double, config.dueling, config.n_step, config.prioritized, config.noisy) == (
        False,
        False,
        1,
        False,
        False,
    )
