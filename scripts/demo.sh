#!/usr/bin/env bash
# The README's main job: set up .venv (hieros-lib[train], CPU torch), then train Hieros with the cpu-demo
# preset (3 levels on the embedded Catch, about 10 minutes on two CPU cores) into runs/cpu-demo.
#
#   bash scripts/demo.sh [hieros-train arguments]     e.g. --logdir runs/mine run.seed=1
#
# The run directory receives config.yaml, metrics.jsonl, scores.jsonl, TensorBoard events, plots/*.png,
# media/*.gif, checkpoints/ and summary.json. Running the same command again resumes (or, once finished,
# leaves the run as it is). Environment: as scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh train
venv="${HIEROS_VENV:-.venv}"
if [ "$#" -eq 0 ]; then
  set -- --preset cpu-demo --logdir runs/cpu-demo
fi
exec "$venv/bin/hieros-train" "$@"
