"""What Ray costs a sweep: the same runs one after another in one process, then as a sweep.

1. ``sequential``: the 2 x 3 runs (variants ``one`` = 1 level and ``two`` = 2 levels, seeds 0 1 2, the
   debug preset, one torch thread each) by :func:`hieros_lib.training.train` in this process, one after
   another: the cost of the runs alone.
2. ``sweep, 1 CPU``: the same runs as a sweep on a local Ray instance with one CPU, so they also run one
   after another: (its wall time - the sequential one) / runs is Ray's overhead per run (start-up of the
   instance and of the worker processes included).
3. ``sweep, 2 CPUs``: the same runs on two CPUs (two at a time): its wall time against the sum of the runs'
   own times.

    python benchmarks/bench_sweep.py --json bench_sweep.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from hieros_lib.training import SweepSpec, make_config, sweep, train

VARIANTS = {"one": ("agent.levels=1",), "two": ()}
OVERRIDES = ("run.media=false", "run.plot_every=0", "run.tensorboard=false")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = SweepSpec(preset="debug", envs=("hieros:catch",), seeds=tuple(args.seeds), variants=VARIANTS,
                     overrides=OVERRIDES)
    runs = len(VARIANTS) * len(args.seeds)
    root = Path(tempfile.mkdtemp(prefix="bench_sweep-"))
    figures: dict[str, float] = {}
    try:
        started = time.time()
        run_seconds = []
        for variant, extra in VARIANTS.items():
            for seed in args.seeds:
                logdir = root / "seq" / variant / str(seed)
                config = make_config("debug", [*OVERRIDES, *extra, f"run.seed={seed}", "run.threads=1",
                                               "run.progress=false", f"logdir={logdir}"])
                t = time.time()
                train(config)
                run_seconds.append(time.time() - t)
        figures["sequential_seconds"] = time.time() - started
        for cpus in (1, 2):
            started = time.time()
            results = sweep(spec, root / f"sweep{cpus}", num_cpus=cpus, progress=False)
            figures[f"sweep_{cpus}cpu_seconds"] = time.time() - started
            assert all(r["status"] == "finished" for r in results), results
            if cpus == 2:
                figures["sum_of_run_seconds_2cpu"] = sum(r["summary"]["wall_seconds"] for r in results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["runs"] = runs
    figures["mean_run_seconds_sequential"] = sum(run_seconds) / runs
    overhead = figures["sweep_1cpu_seconds"] - figures["sequential_seconds"]
    figures["ray_overhead_per_run_seconds"] = overhead / runs
    figures["speedup_2cpu_vs_sequential"] = figures["sequential_seconds"] / figures["sweep_2cpu_seconds"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(f"# bench_sweep: {runs} debug runs (2 variants x {len(args.seeds)} seeds), {machine}\n")
    print("| what | wall s | per run s |\n| --- | --- | --- |")
    print(f"| sequential, in one process | {figures['sequential_seconds']:.1f} | "
          f"{figures['sequential_seconds'] / runs:.1f} |")
    print(f"| sweep, 1 CPU (one after another) | {figures['sweep_1cpu_seconds']:.1f} | "
          f"{figures['sweep_1cpu_seconds'] / runs:.1f} |")
    print(f"| sweep, 2 CPUs (two at a time) | {figures['sweep_2cpu_seconds']:.1f} | "
          f"{figures['sweep_2cpu_seconds'] / runs:.1f} |")
    print(f"\nRay's overhead per run: {figures['ray_overhead_per_run_seconds']:.2f} s; "
          f"the 2-CPU sweep took {figures['sweep_2cpu_seconds']:.1f} s against "
          f"{figures['sum_of_run_seconds_2cpu']:.1f} s for the sum of its runs "
          f"({figures['speedup_2cpu_vs_sequential']:.2f}x faster than one after another)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, **figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
