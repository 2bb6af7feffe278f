#!/usr/bin/env bash
# `npm run setup:log-readers`: pandas, pyarrow, polars and duckdb (the readers the README promises) in a venv
# at .cache/log-readers-venv (gitignored), from pip's configured index (this project's machines and CI have a
# local one). Only the tests that read the logs with each reader's obvious call use it
# (test/logs/log-readers.test.ts); atflow never needs Python at run time. Idempotent; serialised by a lock,
# so CI's call and a test that creates it on demand do not race.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/log-readers-venv
PYTHON=${PYTHON:-python3}
# pytz: DuckDB's Python API needs it to hand TIMESTAMP WITH TIME ZONE values (epochs.time) to Python
PACKAGES=(pandas pyarrow polars duckdb pytz)
IMPORTS='import pandas, pyarrow, polars, duckdb, pytz'
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup:log-readers: '$PYTHON' not found; install Python 3 with venv (apt-get install python3-venv) or set PYTHON=/path/to/python3" >&2
  exit 1
fi
mkdir -p .cache
exec 9>.cache/log-readers-venv.lock
flock 9
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$IMPORTS" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# --retries 0: the index is local; an unreachable extra index should cost nothing, not minutes of back-off
"$VENV/bin/python" -m pip install --quiet --retries 0 "${PACKAGES[@]}"
"$VENV/bin/python" -c "$IMPORTS; print('setup:log-readers: pandas', pandas.__version__, '· pyarrow', pyarrow.__version__, '· polars', polars.__version__, '· duckdb', duckdb.__version__, 'in $VENV')"
