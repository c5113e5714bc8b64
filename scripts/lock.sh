#!/usr/bin/env bash
# Re-lock the environment: install pyproject.toml with every extra into a new virtual environment,
# newest versions allowed, and write the exact versions to requirements/lock.txt, which
# scripts/bootstrap.sh installs. Run it after changing dependencies in pyproject.toml, then run
# the tests and the reference run (docs/tracking.md) in an environment made from the new lock.
# `scripts/lock.sh --keep` adds what is new (a dependency added to pyproject.toml) and keeps
# every version already locked; without it, everything moves to the newest versions allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --upgrade pip
# The CPU build of torch first (a bare `torch` requirement can pull a multi-GB CUDA build).
"$tmp/venv/bin/pip" install -q "torch==2.13.0"
keep=()
[ "${1:-}" = "--keep" ] && keep=(-c requirements/lock.txt)
"$tmp/venv/bin/pip" install -q "${keep[@]}" -e ".[dev,bench,lightgbm,postgres]"
{
  echo "# Exact versions of every package of epochstack and its extras (dev, bench, lightgbm,"
  echo "# postgres), installed by scripts/bootstrap.sh as pip constraints. Made by scripts/lock.sh"
  echo "# on $("$tmp/venv/bin/python" -c 'import platform; print(platform.system(), platform.machine(), "Python", platform.python_version())')."
  "$tmp/venv/bin/pip" freeze --all --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/' | LC_ALL=C sort -f
} >requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -c '==' requirements/lock.txt) packages)"
