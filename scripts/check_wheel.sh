#!/usr/bin/env bash
# Build the wheel and the sdist, install the wheel into a fresh virtual environment with only the core
# dependencies, and import every subpackage there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HIEROS_VENV:-.venv}"
constraints="${HIEROS_CONSTRAINTS-constraints/cpu.txt}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$venv/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
ls "$work/dist"
python3 -m venv "$work/venv"
args=(--quiet --disable-pip-version-check)
[ -n "$constraints" ] && args+=(--constraint "$(realpath "$constraints")")
"$work/venv/bin/python" -m pip install "${args[@]}" "$work"/dist/hieros_lib-*.whl
cd "$work"
check_imports() {
"$work/venv/bin/python" - "$1" <<'PY'
import importlib, sys
names = ["ssm", "replay", "nn", "world_models", "hrl", "agents", "envs", "metrics", "training"]
for name in names:
    importlib.import_module(f"hieros_lib.{name}")
optional = {"gymnasium", "triton", "matplotlib", "ale_py", "cv2", "omegaconf", "tqdm", "PIL", "tensorboard"}
heavy = sorted(optional & set(sys.modules))
assert not heavy, heavy
import hieros_lib
print(f"{sys.argv[1]} OK: hieros_lib {hieros_lib.__version__} and its {len(names)} subpackages import with core deps only")
PY
}
check_imports wheel
# The sdist must build and install too (same venv: its dependencies are already there).
"$work/venv/bin/python" -m pip install "${args[@]}" --force-reinstall --no-deps "$work"/dist/hieros_lib-*.tar.gz
check_imports sdist
