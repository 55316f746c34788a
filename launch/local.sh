#!/usr/bin/env bash
# One process on this machine, every local device (CPU, or all GPUs of the box).
#   launch/local.sh --config=experiments/configs/mnist_lebm.py --workdir=runs/mnist
# Extra flags go to experiments.main. PYTHON picks the interpreter (default: .venv's, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" -m experiments.main "$@"
