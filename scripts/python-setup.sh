#!/usr/bin/env bash
# `npm run setup:python`: the one Python venv atflow's checks use, at .cache/python-venv (gitignored), from pip's
# configured index (this project's machines and CI have a local one). atflow never needs Python at run time; this
# venv serves
#   - the PyTorch peer of `atflow bench` (torch, numpy) and the reference AutoAttack it runs beside atflow's,
#   - the tests that compare with PyTorch (torch, safetensors: test/python-venv.ts),
#   - the tests that read the logs with each reader's obvious call (pandas, pyarrow, polars, duckdb, pytz:
#     test/logs/readers/log-readers.ts, test/docs/queries-as-printed.test.ts).
# Idempotent (exits at once when everything imports); serialised by a lock, so CI's call and a test that makes
# it on demand do not race. TORCH_PIP_ARGS picks another torch build, e.g.
# TORCH_PIP_ARGS="torch --index-url https://download.pytorch.org/whl/cpu".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/python-venv
PYTHON=${PYTHON:-python3}
# pytz: DuckDB's Python API needs it to hand TIMESTAMP WITH TIME ZONE values (epochs.time) to Python
PACKAGES=(numpy safetensors pandas pyarrow polars duckdb pytz)
IMPORTS='import torch, numpy, safetensors.torch, pandas, pyarrow, polars, duckdb, pytz'
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup:python: '$PYTHON' not found; install Python 3 with venv (apt-get install python3-venv) or set PYTHON=/path/to/python3" >&2
  exit 1
fi
mkdir -p .cache
exec 9>"$VENV.lock"
flock 9
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$IMPORTS" 2>/dev/null; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || { echo "setup:python: creating $VENV with $("$PYTHON" --version 2>&1)" >&2; "$PYTHON" -m venv "$VENV"; }
# --retries 0: the index is local; an unreachable extra index should cost nothing, not minutes of back-off
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --retries 0 --disable-pip-version-check ${TORCH_PIP_ARGS:-torch} "${PACKAGES[@]}"
"$VENV/bin/python" -c "$IMPORTS; print('setup:python: torch', torch.__version__, '· pandas', pandas.__version__, '· pyarrow', pyarrow.__version__, '· polars', polars.__version__, '· duckdb', duckdb.__version__, 'in $VENV')"
