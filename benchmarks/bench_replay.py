"""Benchmark the replay samplers: draw time against the number of items, and the paper's figure 13.

Part 1 times one batch of 16 start indices for n = 10^3 ... 10^6 items with each sampler (uniform, TWM's
visit-count softmax, ETBS). ETBS is O(1) per draw, so its time must stay flat: the script checks that the
time at n = 10^6 is within 2x of the time at n = 10^3. TWM recomputes a softmax over all items, O(n).

Part 2 is the balance experiment of the Hieros paper's figure 13: add one item, then draw one, until
4000 items are stored; count how often each item was drawn (averaged over several seeds). It prints the
mean draws per item for the oldest 10%, the middle 80% and the newest 10% of the items, and plots the
counts. Besides uniform, TWM (temperature 20) and ETBS (0.3 and 1.0) it shows the net effect of the
official Hieros code's ETBS as described in our research notes (the CDF scaled by the capacity, which
comes down to drawing index ~ 0.3 (n - 1) + 0.7 U[0, n)), to make the difference visible.

Usage::

    python benchmarks/bench_replay.py            # writes benchmarks/results/bench_replay.json and .png
    python benchmarks/bench_replay.py --quick    # fewer repeats, for a smoke test

Matplotlib is needed only for the plot (``pip install hieros-lib[plot]``); ``--no-plot`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hieros_lib.replay import ETBSampler, Sampler, TimeBalancedSampler, UniformSampler

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (10**3, 10**4, 10**5, 10**6)
BATCH = 16

SAMPLERS: dict[str, Callable[[int], Sampler]] = {
    "uniform": lambda seed: UniformSampler(generator=seed),
    "twm_t20": lambda seed: TimeBalancedSampler(temperature=20.0, generator=seed),
    "etbs_t0.3": lambda seed: ETBSampler(temperature=0.3, generator=seed),
}


class OfficialCodeNetEffect:
    """Not the official code: its net effect as our research notes describe it (not a library class).

    The official code applies the CDF to a uniform draw and scales the result by the buffer capacity
    (1e6) instead of the current size n, so that term is clipped to n - 1 almost always; what remains is
    index ~ tau (n - 1) + (1 - tau) U[0, n): the newest 70% uniformly, the oldest 30% almost never.
    """

    def __init__(self, temperature: float, seed: int) -> None:
        self.temperature = temperature
        self._rng = np.random.default_rng(seed)

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        u = self._rng.random(batch_size)
        idx = np.floor(self.temperature * (num_items - 1) + (1 - self.temperature) * u * num_items)
        return np.clip(idx, 0, num_items - 1).astype(np.int64)

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Any) -> None:
        pass


BALANCE: dict[str, Callable[[int], Sampler]] = {
    "uniform": lambda seed: UniformSampler(generator=seed),
    "twm_t20": lambda seed: TimeBalancedSampler(temperature=20.0, generator=seed),
    "etbs_t0.3": lambda seed: ETBSampler(temperature=0.3, generator=seed),
    "etbs_t1.0": lambda seed: ETBSampler(temperature=1.0, generator=seed),
    "official_code_t0.3": lambda seed: OfficialCodeNetEffect(0.3, seed),
}


def time_draws(repeats: int) -> dict[str, dict[int, float]]:
    """Median seconds per ``sample(n, 16)`` call, per sampler and size."""
    out: dict[str, dict[int, float]] = {}
    for name, make in SAMPLERS.items():
        out[name] = {}
        for n in SIZES:
            sampler = make(0)
            sampler.on_insert(n, n)
            timer = timeit.Timer(lambda s=sampler, n=n: s.sample(n, BATCH))
            number, _ = timer.autorange()
            runs = timer.repeat(repeat=repeats, number=number)
            out[name][n] = statistics.median(runs) / number
    return out


def balance_experiment(final_size: int, repeats: int) -> dict[str, np.ndarray]:
    """Mean draw count per item after 'add one, draw one' up to ``final_size`` items, over ``repeats``."""
    counts = {}
    for name, make in BALANCE.items():
        total = np.zeros(final_size)
        for seed in range(repeats):
            sampler = make(seed)
            for n in range(1, final_size + 1):
                sampler.on_insert(1, n)
                total[sampler.sample(n, 1)[0]] += 1
        counts[name] = total / repeats
    return counts


def summarize(counts: np.ndarray) -> dict[str, float]:
    tenth = counts.shape[0] // 10
    return {
        "oldest_10pct": float(counts[:tenth].mean()),
        "middle_80pct": float(counts[tenth:-tenth].mean()),
        "newest_10pct": float(counts[-tenth:].mean()),
        "oldest_over_newest": float(counts[:tenth].mean() / counts[-tenth:].mean()),
        "coefficient_of_variation": float(counts.std() / counts.mean()),
    }


def plot(counts: dict[str, np.ndarray], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "the plot needs matplotlib: pip install 'hieros-lib[plot]' (or pass --no-plot)"
        ) from err
    fig, ax = plt.subplots(figsize=(8, 4.5))
    window = 41
    kernel = np.ones(window) / window
    for name, c in counts.items():
        smooth = np.convolve(np.pad(c, window // 2, mode="edge"), kernel, mode="valid")
        ax.plot(np.arange(1, c.shape[0] + 1), smooth, label=name, lw=1.4)
    ax.set_xlabel("item i (1 = oldest)")
    ax.set_ylabel(f"times drawn (mean over seeds, moving average {window})")
    ax.set_title("Add one item, draw one, up to 4000 items (Hieros paper, figure 13)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    parser.add_argument("--no-plot", action="store_true", help="skip the matplotlib figure")
    parser.add_argument("--final-size", type=int, default=4000)
    args = parser.parse_args(argv)
    timing_repeats = 3 if args.quick else 7
    balance_repeats = 2 if args.quick else 20
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} logical CPUs".strip()
    print(f"machine: {machine}; python {sys.version.split()[0]}; numpy {np.__version__}")

    start = time.perf_counter()
    times = time_draws(timing_repeats)
    print(f"\nTime to draw a batch of {BATCH} start indices (median, microseconds)")
    header = "| sampler | " + " | ".join(f"n = 1e{int(np.log10(n))}" for n in SIZES) + " | 1e6 / 1e3 |"
    print(header)
    print("|" + "---|" * (len(SIZES) + 2))
    for name, row in times.items():
        cells = " | ".join(f"{row[n] * 1e6:.1f}" for n in SIZES)
        print(f"| {name} | {cells} | {row[SIZES[-1]] / row[SIZES[0]]:.2f}x |")
    etbs_ratio = times["etbs_t0.3"][SIZES[-1]] / times["etbs_t0.3"][SIZES[0]]
    flat = etbs_ratio <= 2.0
    print(f"ETBS flat (time at 1e6 within 2x of 1e3): {'yes' if flat else 'NO'} ({etbs_ratio:.2f}x)")

    counts = balance_experiment(args.final_size, balance_repeats)
    summary = {name: summarize(c) for name, c in counts.items()}
    print(f"\nBalance (figure 13): add one, draw one, up to {args.final_size} items; mean draws per item,")
    print(f"averaged over {balance_repeats} seeds")
    print("| sampler | oldest 10% | middle 80% | newest 10% | oldest / newest | CV of counts |")
    print("|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(
            f"| {name} | {s['oldest_10pct']:.3f} | {s['middle_80pct']:.3f} | {s['newest_10pct']:.3f} | "
            f"{s['oldest_over_newest']:.1f} | {s['coefficient_of_variation']:.2f} |"
        )
    results = {
        "machine": machine,
        "numpy": np.__version__,
        "batch_size": BATCH,
        "draw_seconds": {name: {str(n): t for n, t in row.items()} for name, row in times.items()},
        "etbs_ratio_1e6_over_1e3": etbs_ratio,
        "etbs_flat": flat,
        "balance": {
            "final_size": args.final_size,
            "repeats": balance_repeats,
            "summary": summary,
            "counts": {name: c.tolist() for name, c in counts.items()},
        },
        "wall_seconds": time.perf_counter() - start,
    }
    (RESULTS / "bench_replay.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {RESULTS / 'bench_replay.json'}")
    if not args.no_plot:
        plot(counts, RESULTS / "bench_replay_figure13.png")
        print(f"wrote {RESULTS / 'bench_replay_figure13.png'}")
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
