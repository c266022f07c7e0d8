"""NStepAccumulator: n-step returns and discounts inside episodes, at termination and truncation,
across sub-envs that end at different times, around autoreset steps, and stored into a buffer.

Observations are one number per env: 10 * env + time step, so every row says where it came from.
Hand numbers use gamma = 0.5, where gamma^k is exact.
"""

import numpy as np
import pytest

from dqn_family.replay import NStepAccumulator, ReplayBuffer

GAMMA = 0.5


def push(
    accumulator: NStepAccumulator,
    t: int,
    rewards: list[float],
    *,
    terminated=None,
    truncated=None,
    real=None,
    final=None,
):
    """One vector step at time t: s = 10*env + t, s' = 10*env + t + 1 (or ``final`` where given)."""
    num_envs = accumulator.num_envs
    envs = np.arange(num_envs)
    observations = (10.0 * envs + t)[:, None]
    next_observations = observations + 1 if final is None else np.array(final, dtype=np.float64)[:, None]
    flags = lambda value: np.zeros(num_envs, bool) if value is None else np.array(value, dtype=bool)  # noqa: E731
    return accumulator.push(
        observations,
        10 * envs + t,
        np.array(rewards, dtype=np.float64),
        next_observations,
        flags(terminated),
        flags(truncated),
        ~flags(None) if real is None else np.array(real),
    )


def test_nstep_emits_nothing_until_a_window_is_full():
    accumulator = NStepAccumulator(1, 3, GAMMA)
    assert len(push(accumulator, 0, [1.0])) == 0
    assert len(push(accumulator, 1, [2.0])) == 0


def test_nstep_full_window_return_and_discount():
    accumulator = NStepAccumulator(1, 3, GAMMA)
    push(accumulator, 0, [1.0]), push(accumulator, 1, [2.0])
    out = push(accumulator, 2, [4.0])
    assert out.observations.tolist() == [[0.0]] and out.actions.tolist() == [0]
    assert out.rewards.tolist() == [3.0]  # 1 + 0.5 * 2 + 0.25 * 4
    assert out.next_observations.tolist() == [[3.0]]
    assert out.discounts.tolist() == [0.125]  # gamma^3
    assert out.terminated.tolist() == [False] and out.truncated.tolist() == [False]


def test_nstep_negative_gamma_alternates_the_sign_of_later_rewards():
    # negamax self-play: each step is the other player's move, its reward counts against the first mover
    accumulator = NStepAccumulator(1, 3, -GAMMA)
    push(accumulator, 0, [1.0]), push(accumulator, 1, [2.0])
    out = push(accumulator, 2, [4.0])
    assert out.rewards.tolist() == [1.0]  # 1 - 0.5 * 2 + 0.25 * 4
    assert out.discounts.tolist() == [-0.125]  # (-gamma)^3: the next position is the other player's


def test_nstep_window_slides_by_one_step():
    accumulator = NStepAccumulator(1, 3, GAMMA)
    for t, reward in enumerate([1.0, 2.0, 4.0]):
        push(accumulator, t, [reward])
    out = push(accumulator, 3, [8.0])
    assert out.observations.tolist() == [[1.0]] and out.next_observations.tolist() == [[4.0]]
    assert out.rewards.tolist() == [6.0]  # 2 + 0.5 * 4 + 0.25 * 8


def test_nstep_termination_flushes_tail_without_bootstrap():
    accumulator = NStepAccumulator(1, 3, GAMMA)
    push(accumulator, 0, [1.0])
    out = push(accumulator, 1, [2.0], terminated=[True], final=[99.0])
    assert out.observations.tolist() == [[0.0], [1.0]]
    assert out.rewards.tolist() == [2.0, 2.0]  # 1 + 0.5 * 2, then 2
    assert out.discounts.tolist() == [0.25, 0.5]  # gamma^2, gamma^1
    assert out.next_observations.tolist() == [[99.0], [99.0]]
    assert out.terminated.tolist() == [True, True] and out.truncated.tolist() == [False, False]


def test_nstep_truncation_flushes_tail_bootstrapped_from_final_observation():
    accumulator = NStepAccumulator(1, 3, GAMMA)
    push(accumulator, 0, [1.0])
    out = push(accumulator, 1, [2.0], truncated=[True], final=[99.0])
    assert out.rewards.tolist() == [2.0, 2.0]
    assert out.discounts.tolist() == [0.25, 0.5]
    assert out.next_observations.tolist() == [[99.0], [99.0]]  # the true final observation
    assert out.terminated.tolist() == [False, False] and out.truncated.tolist() == [True, True]


def test_nstep_termination_with_full_window_flushes_all_pending_steps():
    accumulator = NStepAccumulator(1, 2, GAMMA)
    push(accumulator, 0, [1.0])
    out = push(accumulator, 1, [2.0], terminated=[True])
    assert out.rewards.tolist() == [2.0, 2.0] and out.discounts.tolist() == [0.25, 0.5]


def test_nstep_window_does_not_cross_episode_boundary():
    accumulator = NStepAccumulator(1, 2, GAMMA)
    push(accumulator, 0, [1.0], terminated=[True])
    assert len(push(accumulator, 1, [100.0])) == 0  # first step of the new episode: window not full
    out = push(accumulator, 2, [4.0])
    assert out.observations.tolist() == [[1.0]]
    assert out.rewards.tolist() == [102.0]  # 100 + 0.5 * 4: nothing from the previous episode


def test_nstep_envs_ending_at_different_times():
    accumulator = NStepAccumulator(2, 3, GAMMA)
    push(accumulator, 0, [1.0, 10.0])
    out = push(accumulator, 1, [2.0, 20.0], truncated=[False, True], final=[0.0, 77.0])
    assert out.observations.tolist() == [[10.0], [11.0]]  # env 1 only, oldest first
    assert out.rewards.tolist() == [20.0, 20.0]  # 10 + 0.5 * 20, then 20
    assert out.discounts.tolist() == [0.25, 0.5] and out.truncated.tolist() == [True, True]
    out = push(accumulator, 2, [4.0, 40.0], terminated=[True, False], final=[55.0, 0.0])
    assert out.observations.tolist() == [[0.0], [1.0], [2.0]]  # env 0's whole episode; env 1 restarted
    assert out.rewards.tolist() == [3.0, 4.0, 4.0]  # 1 + 1 + 1, 2 + 2, 4
    assert out.discounts.tolist() == [0.125, 0.25, 0.5]
    assert out.next_observations.tolist() == [[55.0]] * 3 and out.terminated.tolist() == [True] * 3


def test_nstep_emits_in_env_order_oldest_first():
    accumulator = NStepAccumulator(3, 2, GAMMA)
    push(accumulator, 0, [1.0, 1.0, 1.0])
    out = push(accumulator, 1, [1.0, 1.0, 1.0], terminated=[True, False, True])
    assert out.observations[:, 0].tolist() == [0.0, 1.0, 10.0, 20.0, 21.0]


def test_nstep_autoreset_step_is_ignored():
    accumulator = NStepAccumulator(2, 2, GAMMA)
    push(accumulator, 0, [1.0, 1.0], terminated=[True, False])
    # NEXT_STEP autoreset: env 0's step only resets it; its reward and observations are not a transition
    out = push(accumulator, 1, [1000.0, 2.0], real=[False, True])
    assert out.observations[:, 0].tolist() == [10.0]  # only env 1's full window
    assert len(push(accumulator, 2, [3.0, 4.0])) == 1  # env 0 restarted with one pending step: not full
    out = push(accumulator, 3, [5.0, 8.0])
    assert out.observations[:, 0].tolist() == [2.0, 12.0]
    assert out.rewards.tolist() == [5.5, 8.0]  # 3 + 0.5 * 5 for env 0; no 1000 anywhere


def test_nstep_one_step_reproduces_one_step_transitions():
    rng = np.random.default_rng(0)
    num_envs, steps = 3, 40
    accumulator = NStepAccumulator(num_envs, 1, 0.99)
    pending_reset = np.zeros(num_envs, bool)
    for _ in range(steps):
        observations, next_observations = rng.normal(size=(num_envs, 4)), rng.normal(size=(num_envs, 4))
        actions, rewards = rng.integers(0, 2, num_envs), rng.normal(size=num_envs)
        terminated, truncated = rng.random(num_envs) < 0.1, rng.random(num_envs) < 0.1
        real = ~pending_reset
        pending_reset = terminated | truncated
        out = accumulator.push(observations, actions, rewards, next_observations, terminated, truncated, real)
        np.testing.assert_array_equal(out.observations, observations[real])
        np.testing.assert_array_equal(out.actions, actions[real])
        np.testing.assert_array_equal(out.rewards, rewards[real].astype(np.float32))
        np.testing.assert_array_equal(out.next_observations, next_observations[real])
        np.testing.assert_array_equal(out.terminated, terminated[real])
        np.testing.assert_array_equal(out.truncated, truncated[real])
        np.testing.assert_array_equal(out.discounts, np.full(real.sum(), 0.99, np.float32))


def test_nstep_stored_into_replay_buffer_across_wraparound():
    # n = 2, rewards r_t = t + 1, termination at t = 6. Transitions t0..t6 land in slots
    # 0,1,2,3,0,1,2 of a 4-slot ring: slots hold t4, t5, t6, t3.
    accumulator = NStepAccumulator(1, 2, GAMMA)
    buffer = ReplayBuffer(capacity=4, observation_shape=(1,), observation_dtype=np.float32, seed=0)
    for t in range(7):
        out = push(accumulator, t, [t + 1.0], terminated=[t == 6])
        buffer.add(**out.as_dict())
    assert buffer.actions.tolist() == [4, 5, 6, 3]
    assert buffer.rewards.tolist() == [8.0, 9.5, 7.0, 6.5]  # 5 + 0.5*6, 6 + 0.5*7, 7, 4 + 0.5*5
    assert buffer.discounts.tolist() == [0.25, 0.25, 0.5, 0.25]
    assert buffer.next_observations[:, 0].tolist() == [6.0, 7.0, 7.0, 5.0]
    assert buffer.terminated.tolist() == [False, True, True, False]


def test_nstep_stores_copies_of_observations():
    accumulator = NStepAccumulator(1, 2, GAMMA)
    observations = np.array([[1.0]])
    accumulator.push(
        observations,
        np.array([0]),
        np.array([1.0]),
        observations + 1,
        np.array([False]),
        np.array([False]),
        np.array([True]),
    )
    observations[0, 0] = -1.0  # a vector env may reuse its output array
    out = accumulator.push(
        observations,
        np.array([0]),
        np.array([1.0]),
        observations + 1,
        np.array([False]),
        np.array([False]),
        np.array([True]),
    )
    assert out.observations.tolist() == [[1.0]]


def test_nstep_rejects_wrong_leading_dimension():
    accumulator = NStepAccumulator(2, 3, GAMMA)
    with pytest.raises(ValueError, match="num_envs=2"):
        accumulator.push(
            np.zeros((3, 1)),
            np.zeros(3),
            np.zeros(3),
            np.zeros((3, 1)),
            np.zeros(3, bool),
            np.zeros(3, bool),
            np.ones(3, bool),
        )


@pytest.mark.parametrize("kwargs", [{"num_envs": 0}, {"n_step": 0}, {"gamma": 1.5}])
def test_nstep_rejects_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        NStepAccumulator(**{"num_envs": 1, "n_step": 3, "gamma": 0.99, **kwargs})


def reference_nstep(steps: list[tuple], num_envs: int, n: int, gamma: float) -> list[tuple]:
    """Per-env lists, written the slow obvious way: (env, obs, action, return, next_obs, term, trunc, discount)."""
    pending, out = [[] for _ in range(num_envs)], []
    for observations, actions, rewards, next_observations, terminated, truncated, real in steps:
        for env in range(num_envs):
            if not real[env]:
                continue
            pending[env].append((observations[env, 0], actions[env], rewards[env]))
            done = terminated[env] or truncated[env]
            if done or len(pending[env]) == n:
                for start in range(len(pending[env]) if done else 1):
                    window = pending[env][start:]
                    ret = sum(gamma**k * r for k, (_, _, r) in enumerate(window))
                    out.append(
                        (
                            env,
                            window[0][0],
                            window[0][1],
                            ret,
                            next_observations[env, 0],
                            bool(terminated[env]),
                            bool(truncated[env]),
                            gamma ** len(window),
                        )
                    )
                pending[env] = [] if done else pending[env][1:]
    return out


def test_nstep_matches_reference_on_random_episodes():
    rng = np.random.default_rng(1)
    num_envs, n, gamma = 4, 3, 0.9
    accumulator, steps, got = NStepAccumulator(num_envs, n, gamma), [], []
    pending_reset = np.zeros(num_envs, bool)
    for _ in range(300):
        step = (
            rng.normal(size=(num_envs, 1)),
            rng.integers(0, 5, num_envs),
            rng.normal(size=num_envs),
            rng.normal(size=(num_envs, 1)),
            rng.random(num_envs) < 0.15,
            rng.random(num_envs) < 0.1,
            ~pending_reset,
        )
        pending_reset = step[4] | step[5]
        steps.append(step)
        out = accumulator.push(*step)
        got += list(
            zip(
                out.observations[:, 0],
                out.actions,
                out.rewards,
                out.next_observations[:, 0],
                out.terminated,
                out.truncated,
                out.discounts,
            )
        )
    expected = reference_nstep(steps, num_envs, n, gamma)
    assert len(got) == len(expected) > 500
    for row, (_, *want) in zip(got, expected):
        assert row[0] == want[0] and row[1] == want[1] and row[3] == want[3] and tuple(row[4:6]) == tuple(want[4:6])
        assert row[2] == pytest.approx(want[2], rel=1e-6, abs=1e-6)
        assert row[6] == pytest.approx(want[6], rel=1e-6)


@pytest.mark.parametrize("masks", [False, True])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_nstep_steady_steps_shortcut_gives_exactly_the_general_results(num_envs, masks, monkeypatch):
    """Long episodes make most steps steady (all sub-envs full, none ending): push() takes its
    shortcut for them; with the shortcut off, every output must be bit for bit the same."""
    rng = np.random.default_rng(7)
    steps, pending_reset = [], np.zeros(num_envs, bool)
    for _ in range(400):
        step = (
            rng.normal(size=(num_envs, 2)).astype(np.float32),
            rng.integers(0, 5, num_envs),
            rng.normal(size=num_envs).astype(np.float32),
            rng.normal(size=(num_envs, 2)).astype(np.float32),
            rng.random(num_envs) < 0.02,
            rng.random(num_envs) < 0.02,
            ~pending_reset,
            *([rng.random((num_envs, 5)) < 0.5] if masks else []),  # next_legal
        )
        pending_reset = step[4] | step[5]
        steps.append(step)
    shortcuts = []
    push_steady = NStepAccumulator._push_steady
    monkeypatch.setattr(
        NStepAccumulator, "_push_steady", lambda self, *args: shortcuts.append(1) or push_steady(self, *args)
    )
    accumulator = NStepAccumulator(num_envs, 3, 0.97)
    with_shortcut = [accumulator.push(*step) for step in steps]
    monkeypatch.setattr(NStepAccumulator, "_is_steady", lambda self, real, done: False)
    general = NStepAccumulator(num_envs, 3, 0.97)
    without = [general.push(*step) for step in steps]
    assert len(shortcuts) > len(steps) // 2  # most steps took the shortcut
    for fast, slow in zip(with_shortcut, without):
        for name, value in fast.as_dict().items():
            other = slow.as_dict()[name]
            if value is None:  # next_legal without masks
                assert other is None and not masks
                continue
            assert value.dtype == other.dtype and value.shape == other.shape and value.tobytes() == other.tobytes()
    assert sum(len(t) for t in without) > 300 * num_envs


def test_nstep_window_of_discrete_state_indices_keeps_them_scalar():
    accumulator = NStepAccumulator(2, 2, GAMMA)
    step = lambda states, next_states, rewards, terminated: accumulator.push(  # noqa: E731
        np.array(states),
        np.array([0, 1]),
        np.array(rewards),
        np.array(next_states),
        np.array(terminated),
        np.zeros(2, bool),
        np.ones(2, bool),
    )
    assert len(step([0, 7], [1, 8], [0.0, 1.0], [False, False])) == 0
    out = step([1, 8], [2, 9], [1.0, 2.0], [False, True])
    assert out.observations.dtype == np.int64 and out.observations.shape == (3,)
    assert out.observations.tolist() == [0, 7, 8] and out.next_observations.tolist() == [2, 9, 9]
    assert out.rewards.tolist() == [0.5, 2.0, 2.0]  # 0 + 0.5 * 1; 1 + 0.5 * 2; 2
