"""Benchmark the environment adapter against the raw Gymnasium vector environments it wraps.

For each environment (the embedded Catch and PinPad, and Atari Pong when ale-py is installed) and each
setting (1, 4 and 8 environments, in-process ``SyncVectorEnv`` and subprocess ``AsyncVectorEnv``) it times
random-action steps through

* ``raw``: the Gymnasium vector environment alone (``vector.step(actions)``), and
* ``adapter``: :class:`hieros_lib.envs.GymAdapter` around the same vector environment,

interleaved round by round in one run, and reports environment steps per second and the adapter's
overhead (``raw / adapter`` time, 1.00 = none). Embedded games are also timed without Gymnasium at all
(``core``: the NumPy game's own ``step``), which is the floor.

Usage::

    python benchmarks/bench_envs.py            # writes benchmarks/results/bench_envs.json
    python benchmarks/bench_envs.py --quick    # fewer steps, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hieros_lib.envs import Catch, GymAdapter, PinPad, make_atari100k, make_env

RESULTS = Path(__file__).resolve().parent / "results"

SPECS: dict[str, Callable[..., GymAdapter]] = {
    "hieros:catch (64x64)": lambda **kw: make_env("hieros:catch", image_size=64, **kw),
    "hieros:pinpad-three (64x64)": lambda **kw: make_env("hieros:pinpad-three", image_size=64, **kw),
    "atari:Pong (64x64)": lambda **kw: make_atari100k("Pong", **kw),
}
CORES: dict[str, Callable[[], Any]] = {
    "hieros:catch (64x64)": lambda: Catch(image_size=64, seed=0),
    "hieros:pinpad-three (64x64)": lambda: PinPad("three", image_size=64, seed=0),
}


def time_steps(step: Callable[[np.ndarray], Any], num_envs: int, actions: int, steps: int) -> float:
    """Seconds per call of ``step`` with random actions (after 20 warm-up calls)."""
    rng = np.random.default_rng(0)
    batches = rng.integers(0, actions, size=(steps + 20, num_envs))
    for a in batches[:20]:
        step(a)
    start = time.perf_counter()
    for a in batches[20:]:
        step(a)
    return (time.perf_counter() - start) / steps


def bench_setting(name: str, num_envs: int, asynchronous: bool, steps: int, rounds: int) -> dict[str, Any]:
    adapter = SPECS[name](seed=0, num_envs=num_envs, asynchronous=asynchronous)
    adapter.reset()
    raw = adapter.env  # the vector environment the adapter wraps
    actions = adapter.num_actions
    raw_times, adapter_times = [], []
    for _ in range(rounds):  # round robin, so load from elsewhere falls on both alike
        raw_times.append(time_steps(lambda a: raw.step(a), num_envs, actions, steps))
        adapter_times.append(time_steps(adapter.step, num_envs, actions, steps))
    adapter.close()
    raw_s, adapter_s = min(raw_times), min(adapter_times)
    return {
        "env": name,
        "num_envs": num_envs,
        "mode": "async" if asynchronous else "sync",
        "raw_steps_per_s": num_envs / raw_s,
        "adapter_steps_per_s": num_envs / adapter_s,
        "overhead": adapter_s / raw_s,
    }


def bench_core(name: str, steps: int) -> float:
    core = CORES[name]()
    core.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, core.num_actions, size=steps)
    start = time.perf_counter()
    for a in actions:
        if core.step(int(a))[3]:
            core.reset()
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_envs.json")
    args = parser.parse_args(argv)
    steps, rounds = (50, 1) if args.quick else (400, 3)
    try:
        import ale_py  # noqa: F401
    except ImportError:
        print("ale-py is not installed: Atari is skipped (pip install 'hieros-lib[atari]')")
        SPECS.pop("atari:Pong (64x64)")
    rows = []
    print(f"{'environment':<30} {'N':>3} {'mode':>5} {'raw steps/s':>12} {'adapter':>12} {'overhead':>9}")
    for name in SPECS:
        for num_envs in (1, 4, 8):
            for asynchronous in (False, True):
                row = bench_setting(name, num_envs, asynchronous, steps, rounds)
                rows.append(row)
                print(
                    f"{name:<30} {num_envs:>3} {row['mode']:>5} {row['raw_steps_per_s']:>12,.0f} "
                    f"{row['adapter_steps_per_s']:>12,.0f} {row['overhead']:>8.2f}x"
                )
    cores = {name: bench_core(name, steps * 20) for name in CORES}
    for name, rate in cores.items():
        print(f"{name:<30} core game alone (no Gymnasium): {rate:,.0f} steps/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
    args.out.write_text(json.dumps({"machine": machine, "rows": rows, "core_steps_per_s": cores}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
