#!/usr/bin/env bash
# Set up the development environment, then run every check CI runs:
# lint (ruff), type check (mypy on src/), the test suite with doctests (pytest), the docs build (-W).
#
#   bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh dev
venv="${HIEROS_VENV:-.venv}"
py="$venv/bin/python"

step() { printf '\n==> %s\n' "$*"; }

step "ruff (lint)"
"$py" -m ruff check src tests benchmarks examples docs/conf.py

step "mypy (types, src/)"
"$py" -m mypy

step "pytest (tests, doctests in docstrings and docs pages)"
set +e
"$py" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi

step "sphinx (docs, warnings are errors)"
rm -rf docs/_build/html
"$py" -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "all checks passed"
