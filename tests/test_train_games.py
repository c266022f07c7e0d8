"""Two-player games (``pettingzoo:<game>``) through the one loop: a tiny self-play run on tic-tac-toe
writes a run directory, reports win/draw/loss rates (periodic evaluation and evaluate.py), exports
with its mask and resumes; the self-play part snapshots and swaps opponents through both sync
vector envs' public API; games the project cannot play are refused in one line, nothing written."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from dqn_family import evaluate, export, train
from dqn_family.agents import MLPQNetwork
from dqn_family.analysis.runs import read_scalars
from dqn_family.configs import Config
from dqn_family.envs import LeanSyncVectorEnv, make_env
from dqn_family.envs import games as games_module
from dqn_family.envs.games import TwoPlayerGame
from dqn_family.replay.buffer import Batch
from dqn_family.training import loop, state
from dqn_family.training.games import (
    BothSeats,
    GreedyPlayer,
    MirrorBoards,
    SelfPlay,
    game_report,
    report_eval_result,
    self_play_of,
    transition_discount,
)
from dqn_family.training.loop import Stepper, acting_of, adder_of

ENV = "pettingzoo:tictactoe_v3"
TINY = [
    "--env",
    ENV,
    "--total-steps",
    "300",
    "--learning-starts",
    "50",
    "--batch-size",
    "16",
    "--hidden-sizes",
    "16",
    "--eval-frequency",
    "150",
    "--eval-episodes",
    "3",
    "--self-play-snapshot-steps",
    "100",
    "--checkpoint-every",
    "150",
    "--log-frequency",
    "100",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.fixture(scope="module")
def game_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    run_dir = tmp_path_factory.mktemp("games") / "run"
    assert train.main([*TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_train_game_run_writes_a_run_directory_with_win_draw_loss_rates(game_run):
    assert {"config.yaml", "model_latest.pt", "model_best.pt", "summary.json", "checkpoints"} <= {
        path.name for path in game_run.iterdir()
    }
    for player in ("random", "one_ply", "minimax"):
        for seat in (0, 1):
            rates = [
                read_scalars(game_run, f"eval/vs_{player}/seat{seat}/{rate}")
                for rate in ("win_rate", "draw_rate", "loss_rate")
            ]
            assert [step for step, _ in rates[0]] == [150, 300]
            for (_, win), (_, draw), (_, loss) in zip(*rates):
                assert win + draw + loss == pytest.approx(1.0)
    assert read_scalars(game_run, "charts/illegal_actions")[-1][1] == 0
    # the mean return is the mean result against the random player (+1, 0, -1)
    assert -1.0 <= read_scalars(game_run, "eval/mean_return")[-1][1] <= 1.0


def test_evaluate_game_run_reports_rates_per_player_and_seat(game_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main([str(game_run), "--episodes", "4", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{ENV}: mean return vs random") and len(lines) == 4
    assert lines[3].startswith("  vs minimax: seat 0 W/D/L ")
    summary = json.loads(out.read_text())
    assert set(summary["games"]) == {"random", "one_ply", "minimax"}
    for record in (summary["games"][player][f"seat{seat}"] for player in summary["games"] for seat in (0, 1)):
        assert record["games"] == 4 and record["wins"] + record["draws"] + record["losses"] == 4
    random_results = [summary["games"]["random"][f"seat{seat}"] for seat in (0, 1)]
    expected = sum(r["wins"] - r["losses"] for r in random_results) / 8
    assert summary["mean_return"] == pytest.approx(expected)


def test_evaluate_game_run_refuses_video(game_run, tmp_path, capsys):
    assert evaluate.main([str(game_run), "--video", str(tmp_path / "v")]) == 2
    assert "two-player game" in capsys.readouterr().err


def test_export_game_run_takes_the_mask_and_verifies(game_run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert export.main([str(game_run), "--out", str(out), "--verify", "--verify-observations", "50"]) == 0
    assert "verified: 0 of 50 greedy actions differ" in capsys.readouterr().out
    assert json.loads(out.with_name("model.onnx.json").read_text())["action_mask"]


def test_resume_game_run_extends_it(game_run, tmp_path):
    assert train.main(["--resume", str(game_run), "--total-steps", "400", "--no-progress"]) == 0
    summary = json.loads((game_run / "summary.json").read_text())
    assert summary["env_steps"] >= 400


def test_negamax_game_run_trains_evaluates_and_resumes_with_its_negative_discounts(tmp_path):
    run_dir = tmp_path / "run"
    assert train.main([*TINY, "--self-play", "negamax", "--run-dir", str(run_dir)]) == 0
    assert read_scalars(run_dir, "charts/illegal_actions")[-1][1] == 0
    assert [step for step, _ in read_scalars(run_dir, "eval/vs_minimax/seat1/loss_rate")] == [150, 300]
    # the checkpoint's replay holds discounts of -gamma, and loads back
    assert train.main(["--resume", str(run_dir), "--total-steps", "400", "--no-progress"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] >= 400


# --- the self-play part --------------------------------------------------------------------------
def _opponents(envs: Any) -> list[Any]:
    """Each sub-env's opponent (Gymnasium's get_attr would call a callable attribute)."""
    return [env.get_wrapper_attr("opponent") for env in envs.envs]


def _vector(kind: str, count: int) -> gym.vector.VectorEnv:
    fns = [lambda: make_env(ENV) for _ in range(count)]
    if kind == "lean":
        return LeanSyncVectorEnv(fns)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)


@pytest.mark.parametrize("kind", ["lean", "gymnasium"])
def test_vector_env_call_set_opponent_reaches_every_sub_env(kind):
    envs = _vector(kind, 2)
    moves: list[int] = []

    def first_free(observation: np.ndarray, legal: np.ndarray) -> int:
        moves.append(1)
        return int(np.flatnonzero(legal)[0])

    envs.call("set_opponent", first_free)
    assert all(opponent is first_free for opponent in _opponents(envs))
    envs.reset(seed=0)
    envs.step(np.array([4, 4]))
    assert len(moves) >= 2  # each sub-env's opponent replied with the scripted player
    envs.close()


@pytest.mark.parametrize("kind", ["lean", "gymnasium"])
def test_self_play_snapshots_every_interval_and_swaps_each_starting_sub_env(kind):
    envs = _vector(kind, 3)
    network = MLPQNetwork((3, 3, 2), 9, hidden_sizes=(8,))
    self_play = SelfPlay(q_network=network, envs=envs, snapshot_steps=10, pool_size=2, epsilon=0.0, seed=0)
    self_play.before_resets(np.ones(3, dtype=bool), 0)
    assert len(self_play.pool) == 1 and self_play.swaps == 3
    assert list(_opponents(envs)) == [self_play.pool.snapshots[0]] * 3
    first = _opponents(envs)
    self_play.before_resets(np.array([False, True, False]), 9)  # no snapshot due yet
    assert len(self_play.pool) == 1 and self_play.swaps == 4
    self_play.before_resets(np.zeros(3, dtype=bool), 25)  # crossed 10 and 20: one snapshot
    self_play.before_resets(np.zeros(3, dtype=bool), 30)
    assert len(self_play.pool) == 2 and self_play.swaps == 4  # capacity 2: the first is gone
    assert self_play.pool.snapshots[0] is not first[0]
    assert _opponents(envs)[0] is first[0]  # sub-envs not starting keep theirs
    envs.close()


def test_self_play_snapshot_is_a_frozen_cpu_copy_playing_masked_greedy():
    network = MLPQNetwork((3, 3, 2), 9, hidden_sizes=(8,))
    envs = _vector("lean", 1)
    self_play = SelfPlay(q_network=network, envs=envs, snapshot_steps=5, pool_size=3, epsilon=0.0, seed=0)
    self_play.before_resets(np.ones(1, dtype=bool), 0)
    player = self_play.pool.snapshots[0]
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)  # training goes on; the snapshot does not follow
    board = np.zeros((3, 3, 2), dtype=np.int8)
    legal = np.array([False, True, False, True, False, False, False, False, False])
    q_values = player.q_network(torch.as_tensor(board)[None])[0].numpy()
    assert player(board, legal) == [1, 3][int(np.argmax(q_values[[1, 3]]))]
    assert not any(p.requires_grad for p in player.q_network.parameters())
    envs.close()


def test_self_play_of_is_off_for_non_games_and_with_zero_interval():
    envs = _vector("lean", 1)
    network = MLPQNetwork((3, 3, 2), 9, hidden_sizes=(8,))
    assert self_play_of(Config(env_id=ENV, self_play_snapshot_steps=0), network, envs) is None
    assert self_play_of(Config(env_id="CartPole-v1"), network, envs) is None
    assert isinstance(self_play_of(Config(env_id=ENV), network, envs), SelfPlay)
    envs.close()


def test_negamax_self_play_bootstraps_from_the_other_players_position_with_minus_gamma():
    assert transition_discount(Config(env_id=ENV, self_play="negamax", gamma=0.9)) == -0.9
    assert transition_discount(Config(env_id=ENV, gamma=0.9)) == 0.9  # the pool
    config = Config(env_id=ENV, self_play="negamax", gamma=0.9, num_envs=2, buffer_size=500, device="cpu")
    envs, agent, buffer, _ = state.build_parts(config, torch.device("cpu"))
    try:
        self_play = self_play_of(config, agent.q_network, envs)
        assert isinstance(self_play, BothSeats)
        stepper = Stepper(
            config, envs, acting_of(agent), adder_of(config, buffer), masks=True, episode_starts=self_play
        )
        stepper.reset(config.seed)
        for _ in range(100):
            stepper.step(epsilon=1.0)
    finally:
        envs.close()
    size = len(buffer)
    boards, next_boards = buffer.observations[:size], buffer.next_observations[:size]
    placed = np.zeros((size, 9), dtype=boards.dtype)
    placed[np.arange(size), buffer.actions[:size]] = 1
    placed = placed.reshape(size, 3, 3)
    over = buffer.terminated[:size]
    assert over.any() and (~over).any()
    np.testing.assert_array_equal(buffer.discounts[:size], np.float32(-0.9))
    # a move that ends the game: the mover's own view; otherwise the other player's, to move next
    np.testing.assert_array_equal(next_boards[~over, ..., 1], boards[~over, ..., 0] + placed[~over])
    np.testing.assert_array_equal(next_boards[~over, ..., 0], boards[~over, ..., 1])
    np.testing.assert_array_equal(next_boards[over, ..., 0], boards[over, ..., 0] + placed[over])
    # +1 for a winning move, 0 for every other move (a draw fills the board)
    rewards = buffer.rewards[:size]
    assert set(rewards[~over].tolist()) == {0.0}
    full = next_boards[over].reshape(-1, 18).sum(axis=1) == 9
    np.testing.assert_array_equal(rewards[over], np.where(full & (rewards[over] == 0), 0.0, 1.0))


def _tictactoe_batch() -> Batch[torch.Tensor]:
    boards = torch.arange(4 * 18, dtype=torch.uint8).reshape(4, 3, 3, 2)
    legal = torch.tensor([[True] * 9, [True] * 8 + [False], [False, True] * 4 + [True], [True, False] * 4 + [True]])
    return Batch(
        observations=boards,
        actions=torch.tensor([0, 1, 2, 5]),
        rewards=torch.tensor([0.0, 1.0, 0.0, 1.0]),
        next_observations=boards + 100,
        terminated=torch.tensor([0.0, 1.0, 0.0, 1.0]),
        discounts=torch.full((4,), -0.9),
        indices=torch.tensor([0, 1, 2, 3]),
        next_legal=legal,
    )


@pytest.mark.parametrize(("update", "mirrored"), [(0, [1, 3]), (1, [0, 2]), (6, [1, 3])])
def test_mirror_boards_mirrors_the_transitions_whose_position_plus_update_is_odd(update, mirrored):
    batch = _tictactoe_batch()
    out = MirrorBoards("tictactoe_v3")(batch, update)
    kept = [row for row in range(4) if row not in mirrored]
    for field in ("observations", "next_observations"):
        before, after = getattr(batch, field), getattr(out, field)
        torch.testing.assert_close(after[kept], before[kept])
        torch.testing.assert_close(after[mirrored], before[mirrored].flip(2))  # [B, row, column, plane]
    # row-major cells: 0 -> 2, 1 -> 1, 2 -> 0, 5 -> 3
    assert out.actions.tolist() == [
        [2, 1, 0, 3][row] if row in mirrored else batch.actions[row].item() for row in range(4)
    ]
    order = [2, 1, 0, 5, 4, 3, 8, 7, 6]
    assert batch.next_legal is not None and out.next_legal is not None
    torch.testing.assert_close(out.next_legal[kept], batch.next_legal[kept])
    torch.testing.assert_close(out.next_legal[mirrored], batch.next_legal[mirrored][:, order])
    for field in ("rewards", "terminated", "discounts"):
        torch.testing.assert_close(getattr(out, field), getattr(batch, field))


def test_mirror_boards_twice_with_the_same_update_gives_the_batch_back():
    batch, mirror = _tictactoe_batch(), MirrorBoards("tictactoe_v3")
    twice = mirror(mirror(batch, 3), 3)
    for field in ("observations", "next_observations", "actions", "next_legal"):
        torch.testing.assert_close(getattr(twice, field), getattr(batch, field))


def test_mirror_boards_refuses_observations_that_are_not_its_boards():
    batch = _tictactoe_batch()
    with pytest.raises(ValueError, match=r"boards of shape \(6, 7, 2\)"):
        MirrorBoards("connect_four_v3")(batch, 0)


def test_negamax_run_with_mirror_boards_mirrors_every_update(tmp_path, monkeypatch):
    updates: list[int] = []
    of = loop.mirror_boards_of

    def recording(config: Config, device: torch.device) -> Any:
        mirror = of(config, device)
        assert isinstance(mirror, MirrorBoards)

        def mirrored(batch: Batch[torch.Tensor], update: int) -> Batch[torch.Tensor]:
            updates.append(update)
            return mirror(batch, update)

        return mirrored

    monkeypatch.setattr(loop, "mirror_boards_of", recording)
    run_dir = tmp_path / "run"
    flags = ["--self-play", "negamax", "--mirror-boards", "--eval-frequency", "300", "--run-dir", str(run_dir)]
    assert train.main([*TINY, *flags]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] > 0 and updates == list(range(summary["updates"]))


def test_game_report_plays_each_scripted_player_in_both_seats():
    class FirstLegal(torch.nn.Module):
        """Equal Q-values: the masked argmax plays the lowest legal cell."""

        def forward(self, boards):
            return torch.zeros(len(boards), 9)

    report = game_report(FirstLegal(), "tictactoe_v3", games=3, seed=0, device="cpu")
    assert set(report) == {"random", "one_ply", "minimax"}
    assert all(record.games == 3 for records in report.values() for record in records)
    assert report["minimax"][0].wins == report["minimax"][1].wins == 0  # minimax never loses
    result = report_eval_result(report)
    assert len(result.returns) == 6 and len(result.lengths) == 6


def test_greedy_player_survives_pickling_for_async_vector_envs():
    import pickle

    player = GreedyPlayer(MLPQNetwork((3, 3, 2), 9, hidden_sizes=(8,)))
    copy = pickle.loads(pickle.dumps(player))
    board, legal = np.zeros((3, 3, 2), dtype=np.int8), np.ones(9, dtype=bool)
    assert copy(board, legal) == player(board, legal) and copy.numpy_greedy is not None


# --- refusals --------------------------------------------------------------------------------------
class _FakeAEC:
    """An AEC env's spaces and nothing else: enough for TwoPlayerGame to refuse it."""

    metadata = {"name": "fake_v0"}

    def __init__(self, agents: int, actions: gym.Space) -> None:
        self.possible_agents = [f"player_{i}" for i in range(agents)]
        self.actions = actions

    def action_space(self, agent: str) -> gym.Space:
        return self.actions

    def observation_space(self, agent: str) -> gym.Space:
        n = self.actions.n if isinstance(self.actions, gym.spaces.Discrete) else 2
        return gym.spaces.Dict(
            {"observation": gym.spaces.Box(0, 1, (3,), np.int8), "action_mask": gym.spaces.MultiBinary(n)}
        )

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("agents", "actions", "message"),
    [
        (3, gym.spaces.Discrete(4), "has 3 agents (player_0, player_1, player_2); only two-player games"),
        (2, gym.spaces.Box(-1.0, 1.0, (2,)), "only Discrete(n) actions from 0 are supported"),
    ],
)
def test_train_refuses_games_it_cannot_play_in_one_line(tmp_path, monkeypatch, capsys, agents, actions, message):
    monkeypatch.setattr(games_module, "make_aec_env", lambda game: _FakeAEC(agents, actions))
    run_dir = tmp_path / "run"
    assert train.main(["--env", "pettingzoo:fake_v0", "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--recurrent", "lstm"], "played by feed-forward Q-networks only"),
        (["--actors", "2"], "distributed actors do not play yet"),
        (["--action-mask", "off"], "whose illegal moves lose"),
        (["--env", "pettingzoo:Bad.Name"], "is not a PettingZoo classic name"),
        (["--env", "CartPole-v1", "--self-play", "negamax"], "self_play negamax is for two-player games"),
        (["--env", "CartPole-v1", "--mirror-boards"], "mirror_boards is for the board games pettingzoo:tictactoe_v3"),
        (["--env", "pettingzoo:chess_v6", "--mirror-boards"], "mirror_boards is for the board games"),
    ],
)
def test_train_refuses_game_settings_in_one_line(tmp_path, capsys, flags, message):
    run_dir = tmp_path / "run"
    assert train.main(["--env", ENV, *flags, "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_make_game_seat_is_drawn_per_episode():
    env = make_env(ENV)
    assert isinstance(env, TwoPlayerGame)
    seats = {env.reset(seed=seed)[1]["seat"] for seed in range(20)}
    assert seats == {0, 1}
    env.close()
