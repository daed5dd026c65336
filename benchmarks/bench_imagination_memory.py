"""Memory of imagination at paper size: what the start states hold and how the peak grows with the horizon.

Each world model (paper presets, 64 x 64 images, 18 actions) observes a 16 x 64 batch without gradients,
takes all 1024 posterior states as start states and imagines 16 steps under a random policy, in a fresh
subprocess per case, reporting

* ``start MiB``: the bytes held by the 1024 start states;
* ``peak MiB``: the growth of the process's peak resident memory during imagination, over the memory
  held before it started;

for the library's imagination loop (one state alive at a time) and for the former behaviour, which kept
every imagined state (emulated by a policy that keeps each state it sees). CPU only; run with
``python benchmarks/bench_imagination_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

_CHILD = r"""
import json, resource, sys
import torch
from hieros_lib.world_models import make_world_model, map_state

name, keep, horizon = sys.argv[1], sys.argv[2] == "keep", int(sys.argv[3])
torch.manual_seed(0)
model = make_world_model(name, preset="paper", action_dim=18).eval()
B, T = 16, 64
g = torch.Generator().manual_seed(0)
obs = torch.randint(0, 256, (B, T, 64, 64, 3), generator=g, dtype=torch.uint8)
action = torch.nn.functional.one_hot(torch.randint(0, 18, (B, T), generator=g), 18).float()
first = torch.zeros(B, T, dtype=torch.bool)
first[:, 0] = True
reward = torch.zeros(B, T)

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

with torch.no_grad():
    observed = model.observe(obs, action, first, reward=reward, generator=g)
    start = model.start_states(observed)
    del observed
leaves = []
map_state(lambda x: leaves.append(x) or x, start)
start_mib = sum(x.numel() * x.element_size() for x in leaves) / 2**20
kept = []

def policy(step):
    if keep:
        kept.append(step.state)
    idx = torch.randint(0, 18, (step.features.shape[0],), generator=g)
    return torch.nn.functional.one_hot(idx, 18).float()

before = rss_mib()
with torch.no_grad():
    out = model.imagine(start, policy, horizon, generator=g, validate=False)
after = rss_mib()
print(json.dumps({"start_mib": start_mib, "peak_growth_mib": after - before}))
"""


def run_case(name: str, keep: bool, horizon: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, name, "keep" if keep else "drop", str(horizon)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["s5wm", "rssm", "twm"])
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_imagination_memory.json")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'model':<6} {'states kept':<12} {'start MiB':>10} {'peak growth MiB':>16}")
    for name in args.models:
        for keep in (True, False):
            row = {"model": name, "kept_every_state": keep, **run_case(name, keep, args.horizon)}
            rows.append(row)
            label = "every step" if keep else "one (now)"
            print(f"{name:<6} {label:<12} {row['start_mib']:>10.0f} {row['peak_growth_mib']:>16.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"horizon": args.horizon, "rows": rows, "maxrss_kib_parent":
                                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
