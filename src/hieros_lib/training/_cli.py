"""The command line: ``hieros-train [--preset NAME] [--logdir DIR] [key=value ...]``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hieros_lib.errors import HierosError

__all__ = ["main"]

_EPILOG = """\
presets:
  cpu-demo    Hieros (3 levels) on the embedded Catch, CPU sizes, about 10 minutes on two cores (default)
  catch-flat  the single-level agent on Catch (the CI learning check)
  pinpad      Hieros (3 levels) on PinPad with three pads; pinpad-flat: one level
  atari100k   the paper's configuration on the Atari 100k protocol (set the game: env.spec=atari:Breakout)
  debug       seconds, for tests

overrides are dotted keys of the config (written to <logdir>/config.yaml), for example:
  run.steps=20000 run.seed=3 agent.levels=1 env.spec=gym:CartPole-v1 env.num_envs=4
  agent.level.world_model=rssm agent.level.horizon=16 run.device=cuda

running the same command again with the same --logdir resumes the run from its last checkpoint.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hieros-train``; returns the exit code (0 finished, 1 diverged, 2 bad arguments, 130 stopped).

    Bad command lines and configs print one line naming the problem, without a traceback.
    """
    parser = argparse.ArgumentParser(
        prog="hieros-train",
        description="Train Hieros (or the single-level agent) and write a run directory.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="cpu-demo", help="a preset (default: cpu-demo)")
    parser.add_argument("--logdir", default=None, help="run directory (default: runs/<preset>-seed<seed>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        from hieros_lib.training._config import make_config
        from hieros_lib.training._loop import train

        overrides = list(args.overrides)
        if args.quiet:
            overrides.append("run.progress=false")
        config = make_config(args.preset, overrides)
        if args.logdir is not None:
            config.logdir = args.logdir
        elif not any(item.startswith("logdir=") for item in overrides):
            config.logdir = f"runs/{args.preset}-seed{config.run.seed}"
        summary = train(config)
    except HierosError as err:
        sys.stderr.write(f"hieros-train: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("hieros-train: interrupted\n")
        return 130
    if summary["status"] == "stopped":
        sys.stderr.write(f"hieros-train: stopped ({summary['reason']}); run the same command to resume\n")
        return 130
    if summary["status"] == "diverged":
        sys.stderr.write(f"hieros-train: stopped: {summary['reason']} (checkpoint written)\n")
        return 1
    sys.stderr.write(
        f"hieros-train: finished: eval return {summary['eval_return_mean']:.2f} "
        f"(over {summary['eval_episodes']} episodes); results in {config.logdir}\n"
    )
    return 0
