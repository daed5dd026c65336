#!/usr/bin/env bash
# Every check that needs a GPU, in one run of under 10 minutes on one H100 / H200 (issue 16):
#
#   1. the `gpu` tests: the Triton scan on CUDA, inductor-compiled training equal to eager, no device
#      synchronisation while acting (at most 150 s);
#   2. benchmarks/bench_scan_gpu.py: copy bandwidth, the Triton scan's forward / backward bandwidth against
#      the PyTorch scan (at most 90 s);
#   3. benchmarks/bench_agent.py at the paper's configuration (3 levels, appendix E): per-part timings,
#      acting, environment steps per second, peak memory and the projected wall time of a 100k-step Atari
#      run, for S5WM, RSSM and TWM at every level, eager and bf16 (at most 200 s);
#   4. the same for S5WM with torch.compile (inductor compiles for a minute or two; at most 150 s).
#
# It uses the machine's own python3 with torch and triton (no installation: the library runs from src/),
# and writes logs and JSON to $OUT (or benchmarks/results/gpu). Each step runs under its own time limit,
# and a failing step does not stop the others.
#
#   bash scripts/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results/gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
status=0

step() {
  local name="$1" limit="$2"
  shift 2
  printf '\n==> %s (at most %s s)\n' "$name" "$limit"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "--> $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -eq 0 ] || status=1
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/machine.txt"
"$py" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$out/machine.txt"

step gpu_tests 150 "$py" -m pytest -q -m gpu -p no:cacheprovider tests/ssm tests/agents
step bench_scan_gpu 90 "$py" benchmarks/bench_scan_gpu.py --out "$out/bench_scan_gpu.json"
step bench_agent 200 "$py" benchmarks/bench_agent.py --config paper --device cuda --variants eager bf16 \
  --repeats 5 --json "$out/bench_agent.json"
step bench_agent_compile 150 "$py" benchmarks/bench_agent.py --config paper --device cuda \
  --world-models s5wm --variants eager compile --repeats 5 --json "$out/bench_agent_compile.json"
exit "$status"
