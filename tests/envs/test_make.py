"""Making envs, checking their spaces, and NEXT_STEP autoreset handling, on the scripted
counting envs of tests/scripted_envs.py (observation [t, episode], 3 steps per episode)."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from dqn_family import envs
from dqn_family.envs import (
    AutoresetTracker,
    EnvError,
    check_spaces,
    make_env,
    make_vector_env,
    observation_states,
    resolve_env_id,
)
from dqn_family.replay import ReplayBuffer
from tests.dict_envs import IMAGE_SHAPE, MASKED_SPEC, SPEC, TUPLE_SPEC
from tests.scripted_envs import EPISODE_LENGTH, TERMINATE_ID, TERMINATE_SPEC, TRUNCATE_SPEC


def test_autoreset_tracker_first_step_is_real():
    tracker = AutoresetTracker(2)
    np.testing.assert_array_equal(tracker.real_steps(np.array([False, False]), np.array([False, False])), [True, True])


def test_autoreset_tracker_step_after_episode_end_is_not_real():
    tracker = AutoresetTracker(3)
    # env 0 terminates, env 1 is truncated, env 2 goes on
    tracker.real_steps(np.array([True, False, False]), np.array([False, True, False]))
    # the next step of envs 0 and 1 is their autoreset step (which reports no end itself)
    assert tracker.all_real
    np.testing.assert_array_equal(tracker.real_steps(np.zeros(3, bool), np.zeros(3, bool)), [False, False, True])
    assert not tracker.all_real
    np.testing.assert_array_equal(tracker.real_steps(np.zeros(3, bool), np.zeros(3, bool)), [True, True, True])
    assert tracker.all_real


def collect(env_spec: str, *, num_envs: int, vector_steps: int) -> ReplayBuffer:
    """Step a vector env, storing only real steps, exactly as train.py's loop does."""
    vector_env = make_vector_env(env_spec, num_envs)
    buffer = ReplayBuffer(capacity=1000, observation_shape=(2,), observation_dtype=np.dtype(np.float32), seed=0)
    tracker = AutoresetTracker(num_envs)
    observations, _ = vector_env.reset(seed=0)
    try:
        for _ in range(vector_steps):
            actions = np.zeros(num_envs, dtype=np.int64)
            next_observations, rewards, terminated, truncated, _ = vector_env.step(actions)
            real = tracker.real_steps(terminated, truncated)
            buffer.add(
                observations[real],
                actions[real],
                rewards[real],
                next_observations[real],
                terminated[real],
                truncated[real],
                0.99,
            )
            observations = next_observations
    finally:
        vector_env.close()
    return buffer


def stored(buffer: ReplayBuffer) -> tuple[np.ndarray, ...]:
    n = len(buffer)
    return (buffer.observations[:n], buffer.next_observations[:n], buffer.terminated[:n], buffer.truncated[:n])


def test_vector_env_with_tracker_stores_no_autoreset_step():
    # 9 vector steps of a 3-step episode: steps 4 and 8 are autoreset steps, 7 steps are real.
    buffer = collect(TERMINATE_SPEC, num_envs=1, vector_steps=9)
    observations, next_observations, _, _ = stored(buffer)
    assert len(buffer) == 7
    np.testing.assert_array_equal(observations[:, 0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(next_observations - observations, np.tile([1.0, 0.0], (7, 1)))


def test_vector_env_with_tracker_stores_termination_with_final_observation():
    buffer = collect(TERMINATE_SPEC, num_envs=2, vector_steps=8)
    observations, next_observations, terminated, truncated = stored(buffer)
    np.testing.assert_array_equal(terminated, next_observations[:, 0] == EPISODE_LENGTH)
    assert terminated.sum() == 4  # each env finished episodes 0 and 1
    assert not truncated.any()


def test_vector_env_with_tracker_stores_truncation_as_not_terminated_with_true_final_observation():
    buffer = collect(TRUNCATE_SPEC, num_envs=2, vector_steps=8)
    observations, next_observations, terminated, truncated = stored(buffer)
    ends = truncated.nonzero()[0]
    assert len(ends) == 4
    np.testing.assert_array_equal(next_observations[ends, 0], [EPISODE_LENGTH] * 4)  # not a reset obs [0, e+1]
    np.testing.assert_array_equal(next_observations[ends, 1], observations[ends, 1])  # same episode
    assert not terminated.any()


def test_make_vector_env_uses_next_step_autoreset():
    vector_env = make_vector_env(TERMINATE_SPEC, 1)
    try:
        assert vector_env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    finally:
        vector_env.close()


def test_make_vector_env_async_finds_module_registered_env_in_spawned_workers(monkeypatch):
    monkeypatch.setattr(envs.make, "AsyncVectorEnv", functools.partial(gym.vector.AsyncVectorEnv, context="spawn"))
    vector_env = make_vector_env(TERMINATE_SPEC, 2, mode="async")
    try:
        observations, _ = vector_env.reset(seed=0)
    finally:
        vector_env.close()
    np.testing.assert_array_equal(observations, [[0.0, 0.0], [0.0, 0.0]])


def test_make_env_module_spec_imports_module_and_makes_env():
    env = make_env(TERMINATE_SPEC)
    try:
        observation, _ = env.reset(seed=0)
        np.testing.assert_array_equal(observation, [0.0, 0.0])
    finally:
        env.close()


def test_resolve_env_id_strips_module():
    assert resolve_env_id(TERMINATE_SPEC) == TERMINATE_ID
    assert resolve_env_id("CartPole-v1") == "CartPole-v1"


def test_resolve_env_id_missing_module_is_env_error():
    with pytest.raises(EnvError, match="no_such_module_xyz"):
        resolve_env_id("no_such_module_xyz:Foo-v0")


@pytest.mark.parametrize("spec", [":CartPole-v1", ".relative:CartPole-v1"])
def test_resolve_env_id_malformed_module_is_env_error(spec):
    with pytest.raises(EnvError):
        resolve_env_id(spec)


def test_make_env_unknown_id_is_env_error():
    with pytest.raises(EnvError, match="NoSuchEnv-v0"):
        make_env("NoSuchEnv-v0")


def test_make_env_continuous_actions_is_env_error():
    with pytest.raises(EnvError, match="Discrete action space"):
        make_env("Pendulum-v1")


def test_check_spaces_accepts_discrete_actions_and_box_observations():
    check_spaces(gym.spaces.Box(0, 255, (4, 4), np.uint8), gym.spaces.Discrete(3), "Ok-v0")


def test_check_spaces_rejects_discrete_not_starting_at_zero():
    with pytest.raises(EnvError, match="starting at 1"):
        check_spaces(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3, start=1), "Shifted-v0")


def test_check_spaces_accepts_discrete_observations():
    check_spaces(gym.spaces.Discrete(16), gym.spaces.Discrete(4), "FrozenLake-v1")


def test_check_spaces_rejects_discrete_observations_not_starting_at_zero():
    with pytest.raises(EnvError, match="observations starting at 2"):
        check_spaces(gym.spaces.Discrete(5, start=2), gym.spaces.Discrete(2), "Shifted-v0")


def test_check_spaces_lets_dict_and_tuple_observations_through_to_the_multi_input_network():
    for space in (gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))}), gym.spaces.Tuple([gym.spaces.Discrete(3)])):
        check_spaces(space, gym.spaces.Discrete(2), "Parts-v0")


def test_make_env_sees_a_tuple_observation_as_the_dict_of_its_parts_keyed_by_position():
    env = make_env(TUPLE_SPEC)
    assert isinstance(env.observation_space, gym.spaces.Dict) and list(env.observation_space.spaces) == ["0", "1", "2"]
    observation, _ = env.reset(seed=0)
    assert set(observation) == {"0", "1", "2"} and observation["1"].shape == IMAGE_SHAPE
    assert observation in env.observation_space
    env.close()


def test_make_env_moves_the_mask_of_a_dict_with_several_keys_to_info():
    env = make_env(MASKED_SPEC)
    assert list(env.observation_space.spaces) == ["clock", "cue", "image"]
    observation, info = env.reset(seed=0)
    assert set(observation) == {"clock", "cue", "image"} and info["action_mask"].shape == (2,)
    env.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vector_env_batches_dict_observations_key_by_key_in_their_dtypes(mode):
    vector_env = make_vector_env(SPEC, 3, mode=mode)
    try:
        observations, _ = vector_env.reset(seed=0)
        assert {key: (part.shape, part.dtype) for key, part in observations.items()} == {
            "clock": ((3, 2), np.float32),
            "cue": ((3,), np.int64),
            "image": ((3, *IMAGE_SHAPE), np.uint8),
        }
    finally:
        vector_env.close()


def test_check_spaces_rejects_other_observation_spaces_in_one_line():
    with pytest.raises(EnvError, match="Dict or Tuple of them") as error:
        check_spaces(gym.spaces.MultiDiscrete([2, 3]), gym.spaces.Discrete(2), "Multi-v0")
    assert "\n" not in str(error.value)


def test_observation_states_counts_discrete_states_only():
    assert observation_states(gym.spaces.Discrete(500)) == 500
    assert observation_states(gym.spaces.Box(-1, 1, (2,))) is None


@pytest.mark.parametrize("env_id, states", [("FrozenLake-v1", 16), ("Taxi-v4", 500), ("CliffWalking-v1", 48)])
def test_make_vector_env_discrete_observations_are_int64_state_indices(env_id, states):
    vector_env = make_vector_env(env_id, 2)
    try:
        observations, _ = vector_env.reset(seed=0)
        next_observations = vector_env.step(np.zeros(2, dtype=np.int64))[0]
    finally:
        vector_env.close()
    assert vector_env.single_observation_space == gym.spaces.Discrete(states)
    for batch in (observations, next_observations):
        assert batch.shape == (2,) and batch.dtype == np.int64 and ((0 <= batch) & (batch < states)).all()


def assert_same_infos(want: dict, have: dict) -> None:
    assert want.keys() == have.keys()
    for key, value in want.items():
        if isinstance(value, dict):
            assert_same_infos(value, have[key])
        else:
            assert have[key].dtype == value.dtype
            np.testing.assert_array_equal(value, have[key])


@pytest.mark.parametrize(
    "make_one",
    [
        lambda: gym.make("CartPole-v1"),
        # Discrete observations, and infos on every step (prob, action_mask)
        lambda: gym.make("Taxi-v4", max_episode_steps=20),
    ],
    ids=["CartPole-v1", "Taxi-v4"],
)
def test_lean_sync_vector_env_matches_gymnasium_sync_vector_env(make_one):
    make = [make_one] * 3
    reference = gym.vector.SyncVectorEnv(make, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    lean = envs.LeanSyncVectorEnv(make, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    assert lean.observation_space == reference.observation_space
    assert lean.action_space == reference.action_space
    (want_obs, want_info), (have_obs, have_info) = reference.reset(seed=5), lean.reset(seed=5)
    np.testing.assert_array_equal(want_obs, have_obs)
    assert want_obs.dtype == have_obs.dtype
    assert_same_infos(want_info, have_info)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(600):  # random play ends episodes every ~20 steps: many autoresets
        actions = rng.integers(0, reference.single_action_space.n, size=3)
        expected, got = reference.step(actions), lean.step(actions)
        for want, have in zip(expected[:4], got[:4]):
            np.testing.assert_array_equal(want, have)
            assert want.dtype == have.dtype
        assert_same_infos(expected[4], got[4])
        ended += int(got[2].sum() + got[3].sum())
    assert ended > 30
    reference.close()
    lean.close()


def test_lean_sync_vector_env_is_a_public_gymnasium_vector_env():
    # It must not lean on SyncVectorEnv's private attributes, which change between releases.
    assert not issubclass(envs.LeanSyncVectorEnv, gym.vector.SyncVectorEnv)
    assert issubclass(envs.LeanSyncVectorEnv, gym.vector.VectorEnv)


class CloseCounting(gym.Wrapper):
    closes = 0

    def close(self):
        CloseCounting.closes += 1
        super().close()


def test_lean_sync_vector_env_closes_each_env_once():
    CloseCounting.closes = 0
    lean = envs.LeanSyncVectorEnv([lambda: CloseCounting(gym.make("CartPole-v1"))] * 2)
    lean.close()
    lean.close()
    assert lean.closed and CloseCounting.closes == 2


def test_lean_sync_vector_env_returns_fresh_observation_arrays():
    lean = envs.LeanSyncVectorEnv([lambda: gym.make("CartPole-v1")], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    first, _ = lean.reset(seed=0)
    second = lean.step(np.array([0]))[0]
    assert first is not second and not np.shares_memory(first, second)
    lean.close()
