"""plot.py: the files it writes from synthetic runs, and its errors."""

from __future__ import annotations

import sys

from dqn_family import plot
from tests.analysis.synthetic_runs import linear_evals, write_run


def test_plot_writes_curves_and_aggregates_as_png_and_svg(tmp_path):
    for algo, slope in (("dqn", 0.1), ("rainbow", 0.2)):
        for seed in (1, 2):
            write_run(
                tmp_path / "runs",
                env_id="CartPole-v1",
                algo=algo,
                seed=seed,
                evals=linear_evals(slope, seed),
                final=slope * 1000 + seed,
            )
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "figures"), "--name", "check"]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "check_aggregates.png",
        "check_aggregates.svg",
        "check_curves.png",
        "check_curves.svg",
        "check_curves_CartPole-v1.png",
        "check_curves_CartPole-v1.svg",
    ]


def test_plot_of_tag_no_run_logged_is_one_line_error(tmp_path, capsys):
    write_run(tmp_path / "runs", env_id="CartPole-v1", algo="dqn", seed=1, evals=linear_evals(0.1, 0))
    assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / "figures"), "--tag", "losses/nothing"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "losses/nothing" in error


def test_plot_with_bad_name_is_one_line_error(tmp_path, capsys):
    assert plot.main([str(tmp_path), "--out", str(tmp_path / "figures"), "--name", "a/b"]) == 2
    assert "--name" in capsys.readouterr().err


def test_plot_without_matplotlib_says_which_extra_to_install(tmp_path, monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import matplotlib...` fail
    monkeypatch.delitem(sys.modules, "dqn_family.analysis.plots", raising=False)
    assert plot.main([str(tmp_path), "--out", str(tmp_path / "figures")]) == 2
    assert capsys.readouterr().err == (
        "plot.py: error: plot.py needs matplotlib, which is not installed; install it with: pip install -e '.[plots]'\n"
    )
