"""Learning curves over seeds: a thin caller of ``hieros-sweep`` that keeps this script's old options.

Every (variant, seed) is one run of the trainer in ``<root>/<preset>/<variant>/<env>/seed<k>``, run as a
task of :func:`hieros_lib.training.sweep` on a local Ray instance with ``--jobs`` CPUs (one torch thread
per run); finished runs are not repeated. The report (``report/report.md``, ``report.json`` and a figure
per environment: the mean over seeds, shaded min to max, every seed as a thin line, the random and
optimal returns) is written by :func:`hieros_lib.training.sweep_report`; ``--out`` copies the figure and
the numbers there.

Usage::

    python benchmarks/learning_curves.py --preset catch-flat --seeds 0 1 2 \\
        --variants s5wm=agent.level.world_model=s5wm rssm=agent.level.world_model=rssm \\
        --set run.steps=3000 run.eval_every=250 --jobs 2 --out docs/_static/catch_curves.png

is the same as::

    hieros-sweep run benchmarks/results/learning/catch-flat --preset catch-flat --envs hieros:catch \\
        --seeds 0 1 2 --variant s5wm agent.level.world_model=s5wm \\
        --variant rssm agent.level.world_model=rssm --set run.steps=3000 run.eval_every=250 --num-cpus 2

``--plot-only`` trains nothing and reports the runs that have finished.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from hieros_lib.training import SweepSpec, make_config, sweep, sweep_report
from hieros_lib.training._sweep import env_slug

ROOT = Path(__file__).resolve().parent / "results" / "learning"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True)
    parser.add_argument("--env", default=None, help="environment spec (default: the preset's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["default="],
                        help="name=override[,override...] (an empty override list is the preset itself)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (CPUs of the local Ray instance)")
    parser.add_argument("--plot-only", action="store_true", help="train nothing: report the finished runs")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="copy the figure here (PNG; JSON beside it)")
    args = parser.parse_args(argv)
    variants = {}
    for item in args.variants:
        name, _, rest = item.partition("=")
        variants[name] = tuple(o for o in rest.split(",") if o)
    env = args.env or make_config(args.preset).env.spec
    directory = args.root / args.preset
    if not args.plot_only:
        spec = SweepSpec(preset=args.preset, envs=(env,), seeds=tuple(args.seeds), variants=variants,
                         overrides=tuple(args.set))
        sweep(spec, directory, num_cpus=args.jobs)
    report = sweep_report(directory, threshold=args.threshold)
    print(report["text"])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / "report" / f"curves_{env_slug(env)}.png", args.out)
        runs = [r for r in report["runs"] if r["env"] == env]
        args.out.with_suffix(".json").write_text(json.dumps({"preset": args.preset, "set": args.set,
                                                             "variants": variants, "runs": runs}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
