#!/usr/bin/env bash
# Create .venv (once) and install epochstack with the given extras, e.g. `bash scripts/bootstrap.sh dev`,
# at the exact versions of requirements/lock.txt (made by scripts/lock.sh), so every machine runs
# what the tests and the reference run used. Safe to re-run: it reinstalls only when
# pyproject.toml or the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
lock=requirements/lock.txt
export DO_NOT_TRACK=1 KEDRO_DISABLE_TELEMETRY=true PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.epochstack-$(cat pyproject.toml "$lock" | sha1sum | cut -c1-12)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -c "$lock" --upgrade pip
  # Pin torch first: a bare `torch` requirement can pull a multi-GB CUDA build.
  .venv/bin/pip install -q -c "$lock" "torch==2.13.0"
  .venv/bin/pip install -q -c "$lock" -e ".[${extras}]"
  rm -f .venv/.epochstack-*
  touch "$stamp"
fi
# No analytics, no telemetry prompts.
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "epochstack environment ready: .venv (extras: ${extras}, versions of ${lock})"
