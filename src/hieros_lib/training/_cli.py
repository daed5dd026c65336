"""The command line: ``hieros-train [--preset NAME] [--logdir DIR] [key=value ...]``.

This module imports nothing heavy at the top: :func:`main` installs its signal handlers first, so a
SIGTERM or Ctrl-C during start-up (imports, environments) stops the run cleanly too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hieros_lib.errors import HierosError

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    0: "finished (or already finished)",
    1: "diverged: too many non-finite updates, or NaN actions; the last intact checkpoint is kept",
    2: "bad arguments or config, an unusable run directory or checkpoint, or a full / read-only disk",
    130: "stopped by a signal (SIGINT, SIGTERM); run the same command to resume",
}
"""Exit status of ``hieros-train`` -> meaning."""

_EPILOG = """\
presets:
  cpu-demo     Hieros (3 levels) on the embedded Catch, CPU sizes, about 10 minutes on two cores (default)
  catch-flat   the single-level agent on Catch (the CI learning check), about 5 minutes
  pinpad       Hieros (3 levels) on PinPad with three pads, CPU sizes
  pinpad-flat  the same with one level
  atari100k    the paper's configuration on the Atari 100k protocol (set the game: env.spec=atari:Breakout)
  pendulum     the single-level agent with continuous actions on gym:Pendulum-v1, about 10 minutes
  dmc-vision   the paper's Hieros on dmc:walker-walk from pixels (DreamerV3's DMC settings; needs [dmc])
  debug        240 steps of a tiny agent, for tests (about 15 seconds on two cores)

overrides are dotted keys of the config (written to <logdir>/config.yaml), for example:
  run.steps=20000 run.seed=3 agent.levels=1 env.spec=gym:CartPole-v1 env.num_envs=4
  agent.level.world_model=rssm agent.level.horizon=16 run.device=cuda 'env.options={}'
options and overrides may come in any order.

running the same command again with the same --logdir resumes the run from its newest intact checkpoint.

exit status:
{codes}
"""


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="hieros-train",
        description="Train Hieros (or the single-level agent) and write a run directory.",
        epilog=_EPILOG.replace("{codes}", codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="cpu-demo", help="a preset (default: cpu-demo)")
    parser.add_argument("--logdir", default=None, help="run directory (default: runs/<preset>-seed<seed>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hieros-train``; returns the exit code (:data:`~hieros_lib.training.EXIT_CODES`).

    Bad command lines and configs print one line naming the problem, without a traceback.
    """
    from hieros_lib.training._signals import StopSignal

    stop = StopSignal()
    with stop.handling():
        args = _parser().parse_intermixed_args(argv)
        logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
        try:
            from hieros_lib.training._config import make_config
            from hieros_lib.training._loop import Trainer

            overrides = list(args.overrides)
            if args.quiet:
                overrides.append("run.progress=false")
            config = make_config(args.preset, overrides)
            if args.logdir is not None:
                config.logdir = args.logdir
            elif not any(item.startswith("logdir=") for item in overrides):
                config.logdir = f"runs/{args.preset}-seed{config.run.seed}"
            if stop.requested:  # a signal during start-up: nothing written yet, nothing to resume
                sys.stderr.write(f"hieros-train: stopped during start-up ({stop.reason}); nothing written\n")
                return 130
            summary = Trainer(config, stop=stop).run()
        except HierosError as err:
            sys.stderr.write(f"hieros-train: error: {err}\n")
            return 2
        except KeyboardInterrupt:  # a second Ctrl-C, or one before the handlers took over
            sys.stderr.write("hieros-train: interrupted\n")
            return 130
    if summary["status"] == "stopped":
        started = summary.get("started", True)
        where = f"at step {summary['env_steps']}" if started else "before the first step"
        sys.stderr.write(
            f"hieros-train: stopped {where} ({summary['reason']}); run the same command to resume\n"
        )
        return 130
    if summary["status"] == "diverged":
        sys.stderr.write(
            f"hieros-train: diverged at step {summary['env_steps']}: {summary['reason']} (the last intact "
            "checkpoint is kept; see summary.json)\n"
        )
        return 1
    episodes = summary["eval_episodes"]
    sys.stderr.write(
        f"hieros-train: finished: eval return {summary['eval_return_mean']:.2f} "
        f"(over {episodes} episode{'' if episodes == 1 else 's'}, {summary.get('eval_mode', 'greedy')} "
        f"actions); results in {config.logdir}\n"
    )
    return 0
