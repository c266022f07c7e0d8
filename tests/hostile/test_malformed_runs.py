"""aggregate.py and plot.py on run directories that are not what train.py writes, and on text that
matplotlib would parse: each mistake is one line naming the file (exit code 2), a summary.json that
is not an object counts as no summary, and plot text is always literal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dqn_family import aggregate, plot
from dqn_family.analysis.curves import learning_curves
from dqn_family.analysis.plots import plot_aggregates, plot_learning_curves, save_figure
from dqn_family.analysis.runs import final_score, find_runs, read_run
from dqn_family.analysis.summary import summarize
from dqn_family.configs import UserError
from tests.analysis.synthetic_runs import linear_evals, write_run

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_config(run_dir: Path, text: str) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(text)
    return run_dir


@pytest.mark.parametrize(
    "config, message",
    [
        ("env_id: CartPole-v1\nseed: abc\n", "seed must be an integer >= 0, got 'abc'"),
        ("env_id: CartPole-v1\nseed: [1, 2]\n", r"seed must be an integer >= 0, got \[1, 2\]"),
        ("env_id: CartPole-v1\nseed: .inf\n", "seed must be an integer >= 0, got inf"),
        ("env_id: CartPole-v1\nseed: null\n", "seed must be an integer >= 0, got None"),
        ("env_id: CartPole-v1\nseed: -3\n", "seed must be an integer >= 0, got -3"),
        ("env_id: CartPole-v1\nseed: true\n", "seed must be an integer >= 0, got True"),
        ("env_id: null\n", "env_id must be a non-empty printable string of at most 256 characters, got None"),
        ("env_id: [a]\n", r"env_id must be a non-empty printable string .*, got \['a'\]"),
        ("env_id: CartPole-v1\nalgo: 7\n", "algo must be a non-empty printable string .*, got 7"),
        ('env_id: "a\\x1b[2J"\n', "env_id must be a non-empty printable string"),
        (f"env_id: {'x' * 300}\n", "env_id must be a non-empty printable string of at most 256 characters"),
        (f"env_id: CartPole-v1\nalgo: {'x' * 200}\nseed: x{'y' * 5000}\n", "seed must be an integer >= 0, got 'xyyy"),
    ],
)
def test_read_run_malformed_field_is_user_error_naming_file(tmp_path, config, message):
    run_dir = write_config(tmp_path / "run", config)
    with pytest.raises(UserError) as caught:
        read_run(run_dir)
    text = str(caught.value)
    assert text.startswith(f"{run_dir / 'config.yaml'}: ") and len(text) < 300
    assert re.search(message, text), text


@pytest.mark.parametrize("main, prog", [(aggregate.main, "aggregate.py"), (plot.main, "plot.py")])
def test_cli_on_run_with_malformed_seed_exits_2_with_one_line(tmp_path, capsys, main, prog):
    write_config(tmp_path / "runs" / "bad", "env_id: CartPole-v1\nalgo: dqn\nseed: abc\n")
    argv = [str(tmp_path / "runs")] + (["--out", str(tmp_path / "figures")] if prog == "plot.py" else [])
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"{prog}: error: ") and "seed must be an integer" in error
    assert not (tmp_path / "figures").exists()


def test_aggregate_cli_subprocess_malformed_seed_is_one_line_without_traceback(tmp_path):
    write_config(tmp_path / "runs" / "bad", "env_id: CartPole-v1\nseed: .inf\n")
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "aggregate.py"), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and "seed must be an integer >= 0, got inf" in completed.stderr


@pytest.mark.parametrize(
    "summary",
    [
        "[1, 2]",
        '"text"',
        "null",
        "3",
        '{"final_eval_mean_return": [1]}',
        '{"final_eval_mean_return": true}',
        "{" * 100_000,
    ],
)
def test_final_score_of_summary_that_is_not_an_object_falls_back_to_logged_evaluations(tmp_path, summary):
    run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[(100, 3.0), (200, 5.0)])
    (run_dir / "summary.json").write_text(summary)
    assert final_score(read_run(run_dir)) == 5.0


def test_aggregate_with_list_summary_uses_the_last_evaluation(tmp_path, capsys):
    for seed, last in ((1, 2.0), (2, 4.0)):
        run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=seed, evals=[(100, last)])
        (run_dir / "summary.json").write_text("[1, 2]")
    assert aggregate.main([str(tmp_path), "--resamples", "100"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("CartPole-v1"))
    assert row.split()[:4] == ["CartPole-v1", "dqn", "2", "3.0"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--resamples", "10000000000"], "--resamples must be >= 100 and <= 1,000,000, got 10000000000"),
        (["--bootstrap-seed", "-1"], "--bootstrap-seed must be >= 0 and <= 4,294,967,295, got -1"),
        (
            ["--bootstrap-seed", str(2**64)],
            "--bootstrap-seed must be >= 0 and <= 4,294,967,295, got 18446744073709551616",
        ),
    ],
)
def test_aggregate_out_of_range_option_is_one_line(tmp_path, capsys, argv, message):
    write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[], final=1.0)
    assert aggregate.main([str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err == f"aggregate.py: error: {message}\n"


def dollar_runs(root: Path) -> None:
    for seed in (1, 2):
        write_run(root, env_id="my$env", algo="dq$n", seed=seed, evals=linear_evals(0.1, seed), final=seed)


def test_plot_cli_title_and_names_with_dollars_are_drawn_literally(tmp_path, capsys):
    dollar_runs(tmp_path / "runs")
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "figures"), "--title", r"$\frac{a$"]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "results_aggregates.png",
        "results_aggregates.svg",
        "results_curves.png",
        "results_curves.svg",
        "results_curves_my_env.png",
        "results_curves_my_env.svg",
    ]


def test_plot_figures_keep_dollar_text_literal(tmp_path):
    dollar_runs(tmp_path / "runs")
    runs = find_runs([tmp_path / "runs"])
    figure = plot_learning_curves(learning_curves(runs, "eval/mean_return"), title="$x$ costs $5")["my$env"]
    texts = [figure._suptitle, *figure.axes[0].texts, figure.axes[0].title, *figure.axes[0].get_legend().texts]
    assert figure._suptitle.get_text().startswith("$x$ costs $5")
    assert all(not text.get_parse_math() and not text.get_usetex() for text in texts)
    bars = plot_aggregates(summarize(runs, n_resamples=100)[0], title="$")
    assert [label.get_text() for label in bars.axes[0].get_xticklabels()] == ["dq$n\n(2 seeds)"]
    save_figure(bars, tmp_path / "out", "bars")  # draws the tick labels: no mathtext error


def test_plot_env_id_with_path_characters_stays_in_out_folder(tmp_path):
    for seed in (1, 2):
        run = write_run(tmp_path / "runs", env_id="x", algo="dqn", seed=seed, evals=linear_evals(0.1, seed))
        (run / "config.yaml").write_text(yaml.safe_dump({"env_id": "../..\\evil|", "algo": "dqn", "seed": seed}))
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "figures")]) == 0
    assert "results_curves_.._.._evil_.png" in {p.name for p in (tmp_path / "figures").iterdir()}
