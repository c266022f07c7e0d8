"""envs/masks.py: a Dict observation's mask moved into info, where a run reads masks from
(--action-mask auto|obs|info|off), and the checks a mask passes (shape, values, a legal action)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dqn_family.envs import MaskError, action_masks, make_env, make_vector_env, mask_source, vector_legal
from dqn_family.envs.masks import MaskInInfo, check_some_legal, legal_rows
from tests.masked_envs import DICT_SPEC, INFO_SPEC, N_ACTIONS, UNMASKED_SPEC, legal_at


def test_mask_in_info_makes_a_dict_observation_its_other_key_and_moves_the_mask_to_info():
    env = make_env(DICT_SPEC)
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.shape == (2,)
    observation, info = env.reset(seed=0)
    np.testing.assert_array_equal(observation, [0.0, 0.0])
    np.testing.assert_array_equal(info["action_mask"], legal_at(0))
    observation, _, _, _, info = env.step(0)
    np.testing.assert_array_equal(observation, [1.0, 0.0])
    np.testing.assert_array_equal(info["action_mask"], legal_at(1))
    env.close()


class DictEnv(gym.Env):
    def __init__(self, spaces: dict) -> None:
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Discrete(3)


BOX = gym.spaces.Box(0.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize(
    "spaces, message",
    [
        ({"action_mask": gym.spaces.MultiBinary(3)}, "only an 'action_mask' key"),
        ({"action_mask": gym.spaces.MultiBinary(4), "observation": BOX}, r"MultiBinary\(3\) or a 0/1 Box of shape"),
        ({"action_mask": gym.spaces.Box(0, 2, (3,), np.int8), "observation": BOX}, "0/1 Box"),
    ],
)
def test_mask_in_info_refuses_what_it_cannot_take_in_one_line(spaces, message):
    with pytest.raises(MaskError, match=message) as error:
        MaskInInfo(DictEnv(spaces), "Mine-v0")
    assert "\n" not in str(error.value) and "'Mine-v0'" in str(error.value)


def test_mask_in_info_makes_several_other_keys_a_dict_of_them():
    env = MaskInInfo(DictEnv({"action_mask": gym.spaces.MultiBinary(3), "b": BOX, "a": BOX}), "Mine-v0")
    assert env.observation_space == gym.spaces.Dict({"a": BOX, "b": BOX})
    observation = env.observed({"a": 1, "action_mask": 2, "b": 3})
    assert observation == {"a": 1, "b": 3}


def test_mask_in_info_takes_a_0_1_box_mask():
    env = MaskInInfo(DictEnv({"action_mask": gym.spaces.Box(0, 1, (3,), np.int8), "observation": BOX}), "Mine-v0")
    assert env.observation_space == BOX


@pytest.mark.parametrize(
    "env_spec, setting, expected",
    [
        (INFO_SPEC, "auto", N_ACTIONS),
        (INFO_SPEC, "info", N_ACTIONS),
        (INFO_SPEC, "off", None),
        (DICT_SPEC, "auto", N_ACTIONS),
        (DICT_SPEC, "obs", N_ACTIONS),
        (DICT_SPEC, "off", None),
        (UNMASKED_SPEC, "auto", None),
        ("CartPole-v1", "auto", None),
        ("Taxi-v4", "auto", 6),
    ],
)
def test_action_masks_follows_the_setting(env_spec, setting, expected):
    assert action_masks(env_spec, setting) == expected


@pytest.mark.parametrize(
    "env_spec, setting, message",
    [
        (UNMASKED_SPEC, "info", r"--action-mask info needs info\['action_mask'\] .* gave none at its first reset"),
        (INFO_SPEC, "obs", "--action-mask obs needs a Dict observation with an 'action_mask' key"),
    ],
)
def test_action_masks_refuses_a_missing_source(env_spec, setting, message):
    with pytest.raises(MaskError, match=message):
        action_masks(env_spec, setting)


def test_mask_source_checks_the_first_mask():
    env = make_env(UNMASKED_SPEC)
    with pytest.raises(MaskError, match=r"gave an action_mask of float64\[3\]"):
        mask_source(env, "auto", {"action_mask": np.ones(3)}, UNMASKED_SPEC)
    env.close()


@pytest.mark.parametrize(
    "mask, found",
    [
        (np.ones((2, 3), np.int8), r"int8\[3\]"),
        (np.full((2, 4), 2, np.int64), r"int64\[4\]"),
        (np.ones((2, 4), np.float32), r"float32\[4\]"),
        (np.array([None, None], dtype=object), r"object\[\]"),
    ],
)
def test_legal_rows_refuse_a_mask_of_the_wrong_shape_or_values(mask, found):
    with pytest.raises(MaskError, match=rf"gave an action_mask of {found}; a mask must be bool or 0/1 integers \[4\]"):
        legal_rows(mask, 4, "Mine-v0")


def test_legal_rows_take_bool_and_0_1_integers():
    np.testing.assert_array_equal(legal_rows(np.array([[1, 0, 1]], np.uint8), 3, "x"), [[True, False, True]])
    legal = np.array([[True, False, False]])
    assert legal_rows(legal, 3, "x") is legal  # no copy of a bool mask


def test_vector_legal_stacks_the_sub_envs_masks_and_refuses_a_missing_one():
    envs = make_vector_env(INFO_SPEC, 2)
    _, infos = envs.reset(seed=0)
    np.testing.assert_array_equal(vector_legal(infos, 2, N_ACTIONS, INFO_SPEC), [legal_at(0)] * 2)
    infos["_action_mask"][1] = False
    with pytest.raises(MaskError, match="no info\\['action_mask'\\] for 1 of its 2 sub-envs"):
        vector_legal(infos, 2, N_ACTIONS, INFO_SPEC)
    with pytest.raises(MaskError, match="for 2 of its 2 sub-envs"):
        vector_legal({}, 2, N_ACTIONS, INFO_SPEC)
    envs.close()


def test_check_some_legal_allows_an_empty_mask_only_where_the_episode_ended():
    legal = np.array([[True, False], [False, False]])
    check_some_legal(legal, np.array([False, True]), "x", 7)
    with pytest.raises(MaskError, match=r"env 'x' allows no action .*\(sub-env 1, env step 1,234\)"):
        check_some_legal(legal, np.array([True, False]), "x", 1234)
