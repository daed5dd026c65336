#!/usr/bin/env bash
# Create a virtual environment (if missing) and install hieros-lib into it in editable mode.
#
#   bash scripts/setup.sh [EXTRAS]        EXTRAS defaults to "dev" (tests, docs, lint, atari, triton, plot)
#
# Environment: PYTHON (interpreter for the venv, default python3), HIEROS_VENV (default .venv),
# HIEROS_CONSTRAINTS (pip constraints file, default constraints/cpu.txt, which pins the CPU build of torch;
# set it empty to skip it, e.g. on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-dev}"
python="${PYTHON:-python3}"
venv="${HIEROS_VENV:-.venv}"
constraints="${HIEROS_CONSTRAINTS-constraints/cpu.txt}"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
args=(--quiet --disable-pip-version-check)
if [ -n "$constraints" ]; then
  args+=(--constraint "$constraints")
fi
echo "setup: installing hieros-lib[$extras] into $venv${constraints:+ (constraints: $constraints)}"
"$venv/bin/python" -m pip install "${args[@]}" --editable ".[$extras]"
