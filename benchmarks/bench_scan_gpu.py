"""Benchmark the Triton scan kernel on a GPU: effective bandwidth against the device's copy bandwidth.

In one run:

1. the device's copy bandwidth: a large device-to-device copy (1 GiB), bytes read + bytes written per
   second, the best of several timed copies;
2. for each shape ``(B, T, P)`` in (8, 4096, 256), (32, 16384, 128) and the Hieros shape (16, 64, 128):
   ``linear_scan`` with ``backend="triton"`` and ``backend="parallel"`` (pure PyTorch), complex64 ``b``,
   a ``(P,)`` complex ``a``, random resets and an initial state, forward alone and backward alone
   (gradients of ``a``, ``b`` and the initial state from a random upstream gradient).

Effective bandwidth counts the bytes the scan must move at least: forward 16 bytes per element (read
``b``, write the state, complex64), backward 24 (read the upstream gradient and the previous state, write
the gradient of ``b``); ``a``, resets and the initial / final states are left out (small). Targets from
issue 4: forward >= 80% and backward >= 70% of the copy bandwidth at the two large shapes, and >= 10x the
PyTorch scan.

Times are medians over repeats measured with CUDA events after warm-up. Before timing, the kernel is
checked against the PyTorch scan on each shape (states, final state and all gradients).

Usage::

    python benchmarks/bench_scan_gpu.py            # writes benchmarks/results/bench_scan_gpu.json
    python benchmarks/bench_scan_gpu.py --quick    # fewer repeats

Needs a CUDA device and triton (``pip install hieros-lib[triton]``); without them it says so and exits.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hieros_lib.ssm import linear_scan

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = ((8, 4096, 256), (32, 16384, 128), (16, 64, 128))
LARGE = {(8, 4096, 256), (32, 16384, 128)}
FWD_BYTES, BWD_BYTES = 16, 24  # per (b, t, p) element, complex64
TARGET_FWD, TARGET_BWD, TARGET_SPEEDUP = 0.80, 0.70, 10.0


def _time_ms(fn: Callable[[], Any], warmup: int, repeats: int) -> float:
    """Median milliseconds of ``fn()`` measured with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_bandwidth(device: torch.device, repeats: int) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + bytes written), best of ``repeats``."""
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end))
    del src, dst
    torch.cuda.empty_cache()
    return 2 * n / (best * 1e-3) / 1e9


def _inputs(shape: tuple[int, int, int], device: torch.device) -> dict[str, torch.Tensor]:
    B, T, P = shape
    g = torch.Generator(device=device).manual_seed(0)
    mag = 0.9 + 0.1 * torch.rand(P, generator=g, device=device)
    phase = torch.rand(P, generator=g, device=device) * 6.28
    a = torch.polar(mag, phase)
    b = torch.randn(B, T, P, generator=g, device=device, dtype=torch.complex64)
    h0 = torch.randn(B, P, generator=g, device=device, dtype=torch.complex64)
    reset = torch.rand(B, T, generator=g, device=device) < 0.01
    return {"a": a, "b": b, "h0": h0, "reset": reset}


def _check(x: dict[str, torch.Tensor]) -> None:
    """The kernel equals the PyTorch scan on this shape: states, final state, every gradient."""
    results = []
    for backend in ("triton", "parallel"):
        a, b, h0 = (x[k].clone().requires_grad_() for k in ("a", "b", "h0"))
        states, final = linear_scan(a, b, reset=x["reset"], initial_state=h0, backend=backend)
        gen = torch.Generator(device=b.device).manual_seed(1)
        up = torch.randn(states.shape, generator=gen, device=b.device, dtype=states.dtype)
        grads = torch.autograd.grad((states * up.conj()).real.sum() + final.abs().sum(), (a, b, h0))
        results.append((states.detach(), final.detach(), *grads))
        del states, final, grads, up
    for name, got, want in zip(("states", "final", "grad a", "grad b", "grad h0"), *results):
        scale = want.abs().max().clamp_min(1.0)
        err = ((got - want).abs().max() / scale).item()
        if err > 1e-3:
            raise SystemExit(f"bench_scan_gpu: kernel and PyTorch scan differ in {name} ({err:.2e})")


def bench_shape(
    shape: tuple[int, int, int], device: torch.device, warmup: int, repeats: int
) -> dict[str, Any]:
    B, T, P = shape
    x = _inputs(shape, device)
    _check(x)
    elems = B * T * P
    row: dict[str, Any] = {"shape": list(shape), "elements": elems}
    for backend in ("triton", "parallel"):
        a, b, h0 = (x[k].clone().requires_grad_() for k in ("a", "b", "h0"))

        def forward(
            a: torch.Tensor = a, b: torch.Tensor = b, h0: torch.Tensor = h0, backend: Any = backend
        ) -> Any:
            with torch.no_grad():
                return linear_scan(a, b, reset=x["reset"], initial_state=h0, backend=backend)

        try:
            fwd_ms = _time_ms(forward, warmup, repeats)
            states, final = linear_scan(a, b, reset=x["reset"], initial_state=h0, backend=backend)
            d_states, d_final = torch.randn_like(states), torch.randn_like(final)

            def backward(
                states: torch.Tensor = states,
                final: torch.Tensor = final,
                inputs: tuple[torch.Tensor, ...] = (a, b, h0),
                ups: tuple[torch.Tensor, ...] = (d_states, d_final),
            ) -> Any:
                return torch.autograd.grad((states, final), inputs, ups, retain_graph=True)

            bwd_ms = _time_ms(backward, warmup, repeats)
            del states, final, d_states, d_final
        except torch.cuda.OutOfMemoryError:
            print(f"  {backend} at {shape}: out of GPU memory, not timed")
            fwd_ms = bwd_ms = float("nan")
        torch.cuda.empty_cache()
        row[backend] = {
            "forward_ms": fwd_ms,
            "backward_ms": bwd_ms,
            "forward_GBps": FWD_BYTES * elems / (fwd_ms * 1e-3) / 1e9,
            "backward_GBps": BWD_BYTES * elems / (bwd_ms * 1e-3) / 1e9,
        }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_scan_gpu.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_scan_gpu: no CUDA device found; this benchmark needs a GPU (nothing was measured).")
        return 2
    try:
        import triton
    except ImportError:
        print("bench_scan_gpu: triton is not installed; run `pip install hieros-lib[triton]`.")
        return 2
    device = torch.device("cuda")
    warmup, repeats = (2, 5) if args.quick else (5, 20)
    name = torch.cuda.get_device_name(device)
    copy = copy_bandwidth(device, repeats)
    print(f"device: {name}; copy bandwidth (read + write): {copy:.0f} GB/s")
    rows = [bench_shape(shape, device, warmup, repeats) for shape in SHAPES]

    header = (
        "| (B, T, P) | pass | triton ms | triton GB/s | % of copy | target | PyTorch ms | PyTorch GB/s "
        "| speed-up |"
    )
    print()
    print(header)
    print("|" + "---|" * 9)
    for row in rows:
        shape = tuple(row["shape"])
        for pass_, target in (("forward", TARGET_FWD), ("backward", TARGET_BWD)):
            tri, ref = row["triton"], row["parallel"]
            frac = tri[f"{pass_}_GBps"] / copy
            speedup = ref[f"{pass_}_ms"] / tri[f"{pass_}_ms"]
            met = frac >= target and speedup >= TARGET_SPEEDUP
            target_text = (f">= {target:.0%}: " + ("met" if met else "missed")) if shape in LARGE else "-"
            row["triton"][f"{pass_}_fraction_of_copy"] = frac
            row[f"{pass_}_speedup"] = speedup
            print(
                f"| {shape} | {pass_} | {tri[f'{pass_}_ms']:.3f} | {tri[f'{pass_}_GBps']:.0f} | {frac:.0%} "
                f"| {target_text} | {ref[f'{pass_}_ms']:.3f} | {ref[f'{pass_}_GBps']:.0f} | {speedup:.1f}x |"
            )
    result = {
        "device": name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "copy_GBps": copy,
        "bytes_per_element": {"forward": FWD_BYTES, "backward": BWD_BYTES},
        "targets": {"forward": TARGET_FWD, "backward": TARGET_BWD, "speedup": TARGET_SPEEDUP},
        "repeats": repeats,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
