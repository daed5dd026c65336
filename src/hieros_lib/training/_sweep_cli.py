"""The command line of sweeps: ``hieros-sweep run DIR ...`` and ``hieros-sweep report DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hieros_lib.errors import HierosError

__all__ = ["sweep_main"]

_EPILOG = """\
examples:
  # 2 variants x 3 seeds on the embedded Catch, on this machine (a local Ray instance)
  hieros-sweep run sweeps/catch --preset catch-flat --envs hieros:catch --seeds 0 1 2 \\
      --variant flat agent.levels=1 --variant hieros agent.levels=3

  # the Atari 100k table: 26 games x 5 seeds, four runs per GPU, on a running Ray cluster
  hieros-sweep run sweeps/atari --preset atari100k --envs atari100k --seeds 0 1 2 3 4 \\
      --cpus-per-run 2 --gpus-per-run 0.25 --address auto

  # redraw the report from finished runs (also of run directories made without a sweep)
  hieros-sweep report sweeps/catch

Running the same command again skips finished runs and resumes unfinished ones from their checkpoints.

exit status: 0 every run finished; 1 some run failed or diverged (the others are done); 2 bad arguments.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hieros-sweep",
        description="Run many training runs (variants x environments x seeds) on Ray, then report them.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a sweep, then write its report")
    run.add_argument("directory", help="the sweep directory")
    run.add_argument("--preset", required=True, help="the preset of every run (see hieros-train --help)")
    run.add_argument("--envs", nargs="+", required=True,
                     help="environment specs (hieros:catch, atari:Pong, gym:...), or atari100k (26 games)")
    run.add_argument("--seeds", nargs="+", type=int, required=True, help="run seeds")
    run.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "OVERRIDE"),
                     help="a named variant and its overrides (repeat for each variant)")
    run.add_argument("--set", nargs="+", default=[], metavar="OVERRIDE", help="overrides of every run")
    run.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto); default: local")
    run.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance")
    run.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs per run (also its torch threads)")
    run.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run (0.25: 4 runs per GPU)")
    run.add_argument("--max-retries", type=int, default=3, help="retries of a run whose worker died")
    run.add_argument("--threshold", type=float, default=None, help="report when each run first reached it")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    report = commands.add_parser("report", help="write the report of finished runs")
    report.add_argument("directory", help="a sweep directory, or any directory of run directories")
    report.add_argument("--threshold", type=float, default=None, help="report when each run first reached it")
    return parser


def sweep_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hieros-sweep``; returns the exit code (0 all finished, 1 some failed, 2 bad arguments)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    try:
        from hieros_lib.training._report import sweep_report
        from hieros_lib.training._sweep import SweepSpec, sweep

        failed = 0
        if args.command == "run":
            variants = {item[0]: tuple(item[1:]) for item in args.variant}
            spec = SweepSpec(preset=args.preset, envs=tuple(args.envs), seeds=tuple(args.seeds),
                             variants=variants, overrides=tuple(args.set))
            results = sweep(spec, args.directory, address=args.address, num_cpus=args.num_cpus,
                                cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                                max_retries=args.max_retries, progress=not args.quiet)
            failed = sum(r["status"] not in ("finished", "skipped") for r in results)
        report = sweep_report(args.directory, threshold=args.threshold)
    except HierosError as err:
        sys.stderr.write(f"hieros-sweep: error: {err}\n")
        return 2
    sys.stdout.write(report["text"])
    if failed:
        sys.stderr.write(f"hieros-sweep: {failed} run(s) did not finish (see above and report/report.md)\n")
    return 1 if failed else 0
