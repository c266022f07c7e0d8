"""aggregate.py: the printed table, the JSON file and one-line errors."""

from __future__ import annotations

import json

import pytest

from dqn_family import aggregate
from dqn_family.analysis.plots import plot_aggregates
from dqn_family.analysis.runs import find_runs
from dqn_family.analysis.summary import summarize
from tests.analysis.synthetic_runs import write_run


def write_cartpole_runs(root, scores):
    for seed, score in enumerate(scores, start=1):
        write_run(root, env_id="CartPole-v1", algo="dqn", seed=seed, evals=[], final=score)


def test_aggregate_prints_a_row_per_env_and_algo(tmp_path, capsys):
    write_cartpole_runs(tmp_path, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert aggregate.main([str(tmp_path), "--resamples", "200"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CartPole-v1")]
    assert len(rows) == 1 and rows[0].split()[:4] == ["CartPole-v1", "dqn", "8", "4.5"]


def test_aggregate_json_holds_iqm_and_interval(tmp_path):
    write_cartpole_runs(tmp_path / "runs", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert aggregate.main([str(tmp_path / "runs"), "--resamples", "200", "--json", str(tmp_path / "agg.json")]) == 0
    (group,) = json.loads((tmp_path / "agg.json").read_text())["groups"]
    assert (group["env_id"], group["seeds"], group["iqm"]["value"]) == ("CartPole-v1", list(range(1, 9)), 4.5)
    assert group["iqm"]["ci_low"] < 4.5 < group["iqm"]["ci_high"]


def test_aggregate_names_its_interval_as_plot_does(tmp_path, capsys):
    write_cartpole_runs(tmp_path / "runs", [1.0, 2.0, 3.0, 4.0, 5.0])
    assert aggregate.main([str(tmp_path / "runs"), "--resamples", "200", "--json", str(tmp_path / "agg.json")]) == 0
    assert "95% percentile bootstrap CI, 200 resamples" in capsys.readouterr().out
    assert json.loads((tmp_path / "agg.json").read_text())["method"] == "percentile bootstrap"
    summaries, _ = summarize(find_runs([tmp_path / "runs"]), n_resamples=200)
    assert "error bars: 95% percentile bootstrap CI;" in plot_aggregates(summaries).get_suptitle()


@pytest.mark.parametrize("runs, noted", [(2, True), (4, True), (5, False), (1, False)])
def test_aggregate_notes_a_group_of_fewer_than_5_runs(tmp_path, capsys, runs, noted):
    write_cartpole_runs(tmp_path, [float(score) for score in range(runs)])
    assert aggregate.main([str(tmp_path), "--resamples", "200"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "too narrow to trust" in line]
    expected = f"aggregate.py: note: CartPole-v1 dqn has {runs} runs: a 95% percentile bootstrap CI from fewer than 5"
    assert [note.startswith(expected) for note in notes] == ([True] if noted else [])


def test_aggregate_json_dash_writes_only_json_to_stdout(tmp_path, capsys):
    write_cartpole_runs(tmp_path / "runs", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert aggregate.main([str(tmp_path / "runs"), "--resamples", "200", "--json", "-"]) == 0
    captured = capsys.readouterr()
    (group,) = json.loads(captured.out)["groups"]
    assert (group["env_id"], group["mean"]["value"]) == ("CartPole-v1", 4.5)
    assert "CartPole-v1  dqn" in captured.err  # the table, on stderr
    assert not (tmp_path / "-").exists()


def test_aggregate_of_missing_dir_is_one_line_error(tmp_path, capsys):
    assert aggregate.main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_aggregate_of_runs_without_evaluations_is_error(tmp_path, capsys):
    write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[])
    assert aggregate.main([str(tmp_path)]) == 2
    assert "none of the 1 runs has an evaluation" in capsys.readouterr().err
