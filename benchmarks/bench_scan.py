"""Time the resettable linear scan and the S5 layer on CPU: forward + backward, in one run, as ratios.

Compares ``linear_scan`` backends ``sequential`` (the reference loop), ``parallel`` (chunked, custom adjoint)
and ``auto`` with ``torch.cumsum`` forward + backward on the same complex64 tensor (the memory-bound floor),
then a full S5 layer at the Hieros shape. Every figure is the median of ``--repeats`` timed runs after one
warm-up; the methods of one row are timed round-robin so that load from other processes hits them
alike. Each row also reports the minor page faults per call (Unix): a call that gets fresh memory from the
kernel pays for zeroing every 4 KiB page of its outputs, which at these sizes can cost more than the
arithmetic. ``--tuned-malloc`` re-runs the script with glibc's allocator told to keep freed memory
(``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``), the usual CPU tuning, so that the
algorithms are compared without that cost. Writes ``benchmarks/results/bench_scan.json``.

Usage::

    python benchmarks/bench_scan.py              # the table in docs/benchmarks.md
    python benchmarks/bench_scan.py --sweep      # short sequences: where "auto" switches backends
    python benchmarks/bench_scan.py --tuned-malloc   # the same, with freed memory kept by glibc
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hieros_lib.ssm import S5, linear_scan

try:
    import resource
except ImportError:  # not on Unix: page faults are not counted
    resource = None  # type: ignore[assignment]

SHAPES = [(16, 64, 128), (16, 64, 1024), (8, 1024, 256), (4, 4096, 256)]
SWEEP_SHAPES = [(1, 16), (16, 128), (16, 1024)]
SWEEP_LENGTHS = [1, 2, 4, 8, 16, 32, 64, 128]
# glibc tunables for --tuned-malloc: serve every allocation from the heap and never give freed memory back,
# so that a call reuses the pages of the previous one instead of faulting in fresh zeroed pages.
TUNED_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def minor_faults() -> int:
    """Minor page faults of this process so far (0 where the ``resource`` module is unavailable)."""
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def median_times(
    fns: dict[str, Callable[[], object]], repeats: dict[str, int], faults: dict[str, float] | None = None
) -> dict[str, float]:
    """Median wall time in seconds of every ``fns[name]()``, after one warm-up run each.

    The functions are timed round-robin (one run of each per round), so that load from other processes on
    a shared machine falls on all of them alike and the ratios stay meaningful. If ``faults`` is given, it
    receives the mean number of minor page faults per timed call of each function.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    fault_counts: dict[str, int] = dict.fromkeys(fns, 0)
    for round_ in range(max(repeats.values())):
        for name, fn in fns.items():
            if round_ >= repeats[name]:
                continue
            before = minor_faults()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            fault_counts[name] += minor_faults() - before
    if faults is not None:
        faults.update({name: fault_counts[name] / len(times[name]) for name in fns})
    return {name: statistics.median(values) for name, values in times.items()}


def scan_problem(batch: int, length: int, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """An S5-like scan: time-invariant complex decay ``(P,)``, complex64 input, 2% resets."""
    g = torch.Generator().manual_seed(seed)
    mag = 0.9 + 0.1 * torch.rand(width, generator=g)
    a = torch.polar(mag, torch.rand(width, generator=g) * 6.28).requires_grad_()
    b = torch.randn(batch, length, width, generator=g, dtype=torch.complex64).requires_grad_()
    reset = torch.rand(batch, length, generator=g) < 0.02
    return {"a": a, "b": b, "reset": reset}


def scan_step(problem: dict[str, torch.Tensor], backend: str) -> Callable[[], None]:
    """One forward + backward of ``linear_scan`` with a fixed random upstream gradient."""
    a, b, reset = problem["a"], problem["b"], problem["reset"]
    upstream = torch.randn(b.shape, dtype=b.dtype, generator=torch.Generator().manual_seed(1))

    def step() -> None:
        a.grad = b.grad = None
        states, _ = linear_scan(a, b, reset=reset, backend=backend)  # type: ignore[arg-type]
        states.backward(upstream)

    return step


def cumsum_step(problem: dict[str, torch.Tensor]) -> Callable[[], None]:
    """One forward + backward of ``torch.cumsum`` over time on the same tensor (the memory-bound floor)."""
    b = problem["b"]
    upstream = torch.randn(b.shape, dtype=b.dtype, generator=torch.Generator().manual_seed(1))

    def step() -> None:
        b.grad = None
        b.cumsum(1).backward(upstream)

    return step


def s5_step(batch: int, length: int, d_model: int, p: int, backend: str) -> Callable[[], None]:
    """One forward + backward of an S5 layer with ``P = p`` modes (``conj_sym=False``, J = 4)."""
    layer = S5(
        d_model,
        p,
        blocks=4,
        conj_sym=False,
        backend=backend,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(0),
    )
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, length, d_model, generator=g)
    reset = torch.rand(batch, length, generator=g) < 0.02

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        y, _ = layer(x, reset=reset)
        y.square().mean().backward()

    return step


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "malloc_env": {name: os.environ.get(name) for name in (*TUNED_MALLOC_ENV, "LD_PRELOAD")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--slow-repeats", type=int, default=3, help="repeats for the sequential loop at T >= 1024"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--sweep", action="store_true", help="short-sequence sweep for the auto threshold")
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="re-run with glibc keeping freed memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_scan.json")
    args = parser.parse_args()
    if args.tuned_malloc and any(os.environ.get(k) != v for k, v in TUNED_MALLOC_ENV.items()):
        # glibc reads its tunables at start-up, so they can only take effect in a fresh process.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **TUNED_MALLOC_ENV})
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    print(f"# {info}")
    results: dict[str, object] = {"machine": info, "scan": [], "s5": [], "sweep": []}
    if args.sweep:
        print(f"{'(B, T, P)':>16} {'sequential ms':>14} {'parallel ms':>12} {'seq/par':>8}")
        for batch, width in SWEEP_SHAPES:
            for length in SWEEP_LENGTHS:
                problem = scan_problem(batch, length, width)
                fns = {name: scan_step(problem, name) for name in ("sequential", "parallel")}
                t = median_times(fns, dict.fromkeys(fns, args.repeats))
                seq, par = t["sequential"], t["parallel"]
                row = {"shape": [batch, length, width], "sequential_s": seq, "parallel_s": par}
                results["sweep"].append(row)  # type: ignore[attr-defined]
                print(f"{(batch, length, width)!s:>16} {seq * 1e3:14.3f} {par * 1e3:12.3f} {seq / par:8.2f}")
    else:
        print(
            f"{'(B, T, P)':>16} {'seq ms':>10} {'par ms':>9} {'auto ms':>9} {'cumsum ms':>10} "
            f"{'seq/par':>8} {'par/cumsum':>10}   page faults per call (seq, par, cumsum)"
        )
        for batch, length, width in SHAPES:
            problem = scan_problem(batch, length, width)
            fns = {name: scan_step(problem, name) for name in ("sequential", "parallel", "auto")}
            fns["cumsum"] = cumsum_step(problem)
            repeats = dict.fromkeys(fns, args.repeats)
            if length >= 1024:
                repeats["sequential"] = args.slow_repeats
            faults: dict[str, float] = {}
            t = median_times(fns, repeats, faults)
            seq, par, auto, floor = t["sequential"], t["parallel"], t["auto"], t["cumsum"]
            row = {
                "shape": [batch, length, width],
                "sequential_s": seq,
                "parallel_s": par,
                "auto_s": auto,
                "cumsum_s": floor,
                "page_faults_per_call": faults,
            }
            results["scan"].append(row)  # type: ignore[attr-defined]
            print(
                f"{(batch, length, width)!s:>16} {seq * 1e3:10.2f} {par * 1e3:9.2f} {auto * 1e3:9.2f} "
                f"{floor * 1e3:10.2f} {seq / par:8.1f} {par / floor:10.2f}   "
                f"{faults['sequential']:.0f}, {faults['parallel']:.0f}, {faults['cumsum']:.0f}"
            )
        batch, length, d_model, p = 16, 64, 256, 128
        fns = {name: s5_step(batch, length, d_model, p, name) for name in ("sequential", "parallel", "auto")}
        t = median_times(fns, dict.fromkeys(fns, args.repeats))
        seq, par, auto = t["sequential"], t["parallel"], t["auto"]
        results["s5"].append(  # type: ignore[attr-defined]
            {"shape": [batch, length, d_model, p], "sequential_s": seq, "parallel_s": par, "auto_s": auto}
        )
        print(
            f"S5 layer (B={batch}, T={length}, H={d_model}, P={p}) fwd+bwd: sequential {seq * 1e3:.2f} ms, "
            f"parallel {par * 1e3:.2f} ms, auto {auto * 1e3:.2f} ms, seq/par {seq / par:.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
