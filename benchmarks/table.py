"""Collect benchmarks/results/presets_<env>_<algo>.json into one Markdown table.

    python benchmarks/table.py            # prints the table used in the README's results section

Per env and learner, over the seeds run: the final greedy evaluation and the env steps to the
first periodic evaluation at or above the env's threshold, as median [interquartile range], and
how many seeds ended at or above the threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_iqr  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    print("| env | algo | budget (env steps) | final eval | steps to threshold | seeds >= threshold at end |")
    print("|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("presets_*.json")):
        data = json.loads(path.read_text())
        results, threshold = data["results"], data["threshold"]
        final = [r["final_eval"] for r in results]
        reached = [r["steps_to_threshold"] for r in results]
        ok = sum(value is not None and value >= threshold for value in final)
        never = sum(step is None for step in reached)
        steps = median_iqr(reached) + (f" ({never} never)" if never else "")
        print(
            f"| {data['env']} | {data['algo']} | {results[0]['total_steps']:,} | {median_iqr(final)} | {steps} | "
            f"{ok}/{len(results)} (threshold {threshold:g}) |"
        )


if __name__ == "__main__":
    main()
