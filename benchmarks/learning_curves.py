"""Learning curves over seeds: run ``hieros-train`` for every (variant, seed) and plot the evaluations.

Each run is a separate ``hieros-train`` process with its own run directory under ``--root``; finished runs
are not repeated (their ``summary.json`` is read), so the script can be re-run to add seeds or to redraw.
With ``--jobs 2`` two runs share the machine, each with one torch thread (the per-run wall time in the
table is then about 1.7 times what one run alone with two threads takes; ``--jobs 1`` gives the latter).

Usage::

    python benchmarks/learning_curves.py --preset catch-flat --seeds 0 1 2 \\
        --variants s5wm=agent.level.world_model=s5wm rssm=agent.level.world_model=rssm \\
        --set run.steps=3000 run.eval_every=250 --jobs 2 --out docs/_static/catch_curves.png

It prints, per variant, the final evaluation return of every seed and the first evaluation at which each
seed reached ``--threshold`` (if given), and writes the plot (mean over seeds, shaded min to max, every
seed as a thin line) and a JSON file beside it. ``--plot-only`` trains nothing and draws the runs that have
finished.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent / "results" / "learning"


def finished(logdir: Path) -> bool:
    summary = logdir / "summary.json"
    return summary.is_file() and json.loads(summary.read_text()).get("status") == "finished"


def run_one(preset: str, logdir: Path, overrides: list[str], threads: int) -> dict[str, Any]:
    summary = logdir / "summary.json"
    if finished(logdir):
        return json.loads(summary.read_text())
    command = [
        sys.executable,
        "-m",
        "hieros_lib.training",
        "--preset",
        preset,
        "--logdir",
        str(logdir),
        "--quiet",
        f"run.threads={threads}",
        "run.media=false",
        *overrides,
    ]
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    data = json.loads(summary.read_text())
    data["wall_seconds"] = time.time() - started
    summary.write_text(json.dumps(data, indent=2))
    return data


def eval_curve(logdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean eval return per evaluation) from a run's scores.jsonl."""
    points: dict[int, list[float]] = {}
    for line in (logdir / "scores.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["mode"] == "eval":
            points.setdefault(int(row["step"]), []).append(float(row["return"]))
    steps = np.array(sorted(points))
    return steps, np.array([np.mean(points[s]) for s in steps])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["default="],
        help="name=override[,override...] (an empty override list is the preset itself)",
    )
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--plot-only", action="store_true", help="train nothing: draw the finished runs, skip the others"
    )
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--reference", type=float, nargs=2, default=None, metavar=("RANDOM", "OPTIMAL"))
    parser.add_argument("--out", type=Path, default=None, help="the plot (PNG); JSON beside it")
    args = parser.parse_args(argv)
    variants = {}
    for item in args.variants:
        name, _, rest = item.partition("=")
        variants[name] = [o for o in rest.split(",") if o]
    jobs = []
    for name, overrides in variants.items():
        for seed in args.seeds:
            logdir = args.root / args.preset / name / f"seed{seed}"
            if args.plot_only and not finished(logdir):
                print(f"{name} seed {seed}: no finished run in {logdir}, left out")
                continue
            jobs.append((name, seed, logdir, [*args.set, *overrides, f"run.seed={seed}"]))
    threads = 1 if args.jobs > 1 else max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(args.jobs) as pool:
        summaries = list(pool.map(lambda job: run_one(args.preset, job[2], job[3], threads), jobs))
    results: dict[str, Any] = {}
    for (name, seed, logdir, _), summary in zip(jobs, summaries, strict=True):
        steps, curve = eval_curve(logdir)
        reached = None
        if args.threshold is not None:
            hits = np.nonzero(curve >= args.threshold)[0]
            reached = int(steps[hits[0]]) if hits.size else None
        results.setdefault(name, []).append(
            {
                "seed": seed,
                "steps": steps.tolist(),
                "eval_returns": curve.tolist(),
                "final_eval": summary["eval_return_mean"],
                "train_seconds": summary.get("train_seconds"),
                "wall_seconds": summary.get("wall_seconds"),
                "reached_threshold_at": reached,
            }
        )
    print(f"{'variant':<10} {'seed':>4} {'final eval':>10} {'train s':>8} {'threshold at':>13}")
    for name, rows in results.items():
        for row in rows:
            print(
                f"{name:<10} {row['seed']:>4} {row['final_eval']:>10.2f} {row['train_seconds'] or 0:>8.0f} "
                f"{row['reached_threshold_at'] if row['reached_threshold_at'] is not None else '-':>13}"
            )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(
            json.dumps(
                {"preset": args.preset, "set": args.set, "variants": variants, "results": results}, indent=2
            )
        )
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6.5, 4))
        for index, (name, rows) in enumerate(results.items()):
            colour = f"C{index}"
            length = min(len(r["steps"]) for r in rows)
            steps = np.array(rows[0]["steps"][:length])
            curves = np.array([r["eval_returns"][:length] for r in rows])
            for curve in curves:
                axis.plot(steps, curve, color=colour, linewidth=0.6, alpha=0.5)
            axis.plot(steps, curves.mean(0), color=colour, linewidth=2, label=f"{name} (mean of {len(rows)})")
            axis.fill_between(steps, curves.min(0), curves.max(0), color=colour, alpha=0.15)
        if args.reference is not None:
            for label, value in zip(("random", "optimal"), args.reference, strict=True):
                axis.axhline(value, linestyle="--", color="grey", linewidth=1)
                axis.annotate(
                    label,
                    xy=(0.01, value),
                    xycoords=("axes fraction", "data"),
                    fontsize=8,
                    color="grey",
                    textcoords="offset points",
                    xytext=(0, 2),
                )
        if args.threshold is not None:
            axis.axhline(args.threshold, linestyle=":", color="black", linewidth=1)
        axis.set_xlabel("environment steps")
        axis.set_ylabel("evaluation return")
        axis.set_title(f"{args.preset}: evaluation return over seeds")
        axis.legend(fontsize=8)
        figure.savefig(args.out, dpi=110, bbox_inches="tight")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
