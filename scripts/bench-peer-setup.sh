#!/usr/bin/env bash
# `npm run bench:peer-setup`: the PyTorch peer of `atflow bench` in a venv at .cache/bench-venv (gitignored),
# where the bench looks for it first. torch comes from pip's configured index; to pick another build set
# BENCH_TORCH_PIP_ARGS, e.g. BENCH_TORCH_PIP_ARGS="torch --index-url https://download.pytorch.org/whl/cpu".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/bench-venv
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bench:peer-setup: '$PYTHON' not found; install Python 3 (with venv) or set PYTHON=/path/to/python3" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "bench:peer-setup: creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install ${BENCH_TORCH_PIP_ARGS:-torch numpy}
"$VENV/bin/python" -c "import torch; print(f'bench:peer-setup: PyTorch {torch.__version__} ready in $VENV; atflow bench finds it there')"
