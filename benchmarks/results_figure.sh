#!/usr/bin/env bash
# The results figure: DQN vs Rainbow on CartPole-v1, Acrobot-v1 and LunarLander-v3, 5 seeds each,
# every run with its env's preset from configs/ (30 runs; hours on a 2-core machine).
#
#     bash benchmarks/results_figure.sh
#
# writes the runs to runs/results_figure/ and, to docs/figures/:
#   dqn_vs_rainbow_curves.png/.svg          learning curves, the three envs side by side
#   dqn_vs_rainbow_curves_<env>.png/.svg    one figure per env
#   dqn_vs_rainbow_aggregates.png/.svg      IQM of the final evaluation with 95% bootstrap CIs
#   dqn_vs_rainbow.json                     aggregate.py's table as JSON
#
# If a run fails, the script stops before plotting (multirun.py lists the failed runs and their
# logs). Interrupted or failed? Run it again: --skip-finished keeps the finished runs (delete an
# unfinished run's directory first; multirun.py names it). Every variable below can be set from the environment,
# and further arguments go to multirun.py, e.g. a quick check of the pipeline:
#
#     ENVS=CartPole-v1 SEEDS="1 2" NAME=pipeline_check TITLE="Pipeline check only" ROOT=/tmp/check \
#         bash benchmarks/results_figure.sh --set total_steps=3000 eval_frequency=500
set -euo pipefail
cd "$(dirname "$0")/.."

ENVS=${ENVS:-"CartPole-v1 Acrobot-v1 LunarLander-v3"}
ALGOS=${ALGOS:-"dqn rainbow"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
WORKERS=${WORKERS:-2}
ROOT=${ROOT:-runs/results_figure}
OUT=${OUT:-docs/figures}
NAME=${NAME:-dqn_vs_rainbow}
TITLE=${TITLE:-"DQN vs Rainbow, each env's preset (configs/)"}

# Word splitting of the lists is intended: each env, algo and seed is one argument.
# shellcheck disable=SC2086
python multirun.py --envs $ENVS --algos $ALGOS --seeds $SEEDS --workers "$WORKERS" --root "$ROOT" \
    --skip-finished "$@"
python aggregate.py "$ROOT" --json "$OUT/$NAME.json"
python plot.py "$ROOT" --out "$OUT" --name "$NAME" --title "$TITLE"
