#!/usr/bin/env bash
# The results figure: DQN vs Rainbow on CartPole-v1, Acrobot-v1 and LunarLander-v3, 5 seeds each,
# every run with its env's preset from configs/.
#
#     bash benchmarks/results_figure.sh            # draw from the committed results files
#     RERUN=1 bash benchmarks/results_figure.sh    # train all 30 runs again first (hours on 2 cores)
#
# The runs are benchmarks/presets.py's: each (env, algo) pair is trained over 5 seeds by
#     python benchmarks/presets.py --env ENV --algo ALGO
# which writes benchmarks/results/presets_<env>_<algo>.json with every seed's periodic greedy
# evaluations and final evaluation (the same numbers the run directories' TensorBoard logs hold).
# A missing results file is made that way; RERUN=1 remakes them all. Then, to docs/figures/:
#   dqn_vs_rainbow_curves.png/.svg          learning curves, the three envs side by side
#   dqn_vs_rainbow_curves_<env>.png/.svg    one figure per env
#   dqn_vs_rainbow_aggregates.png/.svg      IQM of the final evaluation with 95% bootstrap CIs
#   dqn_vs_rainbow.json                     aggregate.py's table as JSON
#
# Every variable below can be set from the environment, e.g. the whole family:
#     ALGOS="dqn c51 qrdqn rainbow" NAME=dqn_family bash benchmarks/results_figure.sh
# plot.py and aggregate.py also take run directories (e.g. multirun.py's --root) instead of
# results files.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVS=${ENVS:-"CartPole-v1 Acrobot-v1 LunarLander-v3"}
ALGOS=${ALGOS:-"dqn rainbow"}
RESULTS=${RESULTS:-benchmarks/results}
OUT=${OUT:-docs/figures}
NAME=${NAME:-dqn_vs_rainbow}
TITLE=${TITLE:-"Each env's preset (configs/), greedy evaluation"}
RERUN=${RERUN:-0}

files=()
for env in $ENVS; do
    for algo in $ALGOS; do
        file="$RESULTS/presets_${env//\//_}_${algo}.json"
        if [[ "$RERUN" == 1 || ! -f "$file" ]]; then
            python benchmarks/presets.py --env "$env" --algo "$algo" --out "$file"
        fi
        files+=("$file")
    done
done
python aggregate.py "${files[@]}" --json "$OUT/$NAME.json"
python plot.py "${files[@]}" --out "$OUT" --name "$NAME" --title "$TITLE"
