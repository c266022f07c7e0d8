#!/usr/bin/env bash
# The GPU path end to end in under 8 minutes on one GPU (benchmarks/gpu_check.py says what it checks):
#   bash benchmarks/gpu_check.sh [extra gpu_check.py flags]
# Writes benchmarks/results/gpu_check.json. Fails fast, with one line, where there is no CUDA or no ale-py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check.sh: error: CUDA is not available to torch here (no GPU, or a CPU-only torch build); nothing was run. For the CPU smoke version: $PYTHON benchmarks/gpu_check.py --device cpu --dry" >&2
    exit 2
fi
if ! "$PYTHON" -c "import ale_py" 2>/dev/null; then
    echo "gpu_check.sh: error: ale-py is missing (ALE/Breakout-v5 is part of the check): pip install -e \".[atari]\"" >&2
    exit 2
fi
exec timeout 470 "$PYTHON" benchmarks/gpu_check.py --device cuda "$@"
