"""Kill training runs with SIGKILL and check that resuming loses and duplicates nothing.

One uninterrupted run of the debug preset (240 steps, a checkpoint every 40) is the reference. Then each
trial starts the same run in a fresh directory as a subprocess and kills it with SIGKILL:

* at ``--random`` random moments (uniform over the reference's wall time, start-up included), and
* at every phase of the checkpoint writer (``hieros_lib.training._checkpoint.PHASES``: state written,
  replays written, manifest written, renamed into place, pointer written, older ones pruned) of the
  checkpoints listed in ``--checkpoints`` (0 is the first; the last one of the run is the final
  checkpoint, written under a new name beside the periodic one of the same step),

then runs the same command again to the end and compares its ``metrics.jsonl`` (timing keys aside),
``scores.jsonl`` and final parameters with the reference's. It prints one line per trial and a
summary, and writes JSON.

    python benchmarks/kill_resume.py --random 20 --json kill_resume.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import torch

from hieros_lib.training import TIMING_KEYS
from hieros_lib.training._checkpoint import PHASES, CheckpointStore

OVERRIDES = (
    "run.checkpoint_every=40",
    "run.media=false",
    "run.plot_every=0",
    "run.threads=1",
    "run.progress=false",
)


def command(logdir: Path) -> list[str]:
    preset = ["--preset", "debug", "--logdir", str(logdir)]
    return [sys.executable, "-m", "hieros_lib.training", *preset, *OVERRIDES]


def phase_killer(logdir: Path, phase: str, checkpoint: int) -> list[str]:
    """A run that kills itself with SIGKILL at ``phase`` of its ``checkpoint``-th checkpoint write."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from hieros_lib.training import Trainer, make_config
        trainer = Trainer(make_config("debug", ["logdir={logdir}", *{OVERRIDES!r}]))
        seen = {{"n": -1}}
        def hook(name):
            seen["n"] += name == "state"
            if seen["n"] == {checkpoint} and name == {phase!r}:
                os.kill(os.getpid(), signal.SIGKILL)
        trainer.checkpoints.hook = hook
        trainer.run()
        """
    )
    return [sys.executable, "-c", script]


def outcome(logdir: Path) -> dict[str, Any]:
    """The logs and final parameters of a finished run."""
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    store = CheckpointStore(logdir / "checkpoints")
    directory, _ = store.find()
    assert directory is not None
    state = store.load(directory)
    return {
        "metrics": [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics],
        "scores": scores,
        "finished": bool(state["finished"]),
        "parameters": state["agent"],
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two outcomes (empty: identical)."""
    out = [key for key in ("metrics", "scores", "finished") if a[key] != b[key]]
    pa, pb = a["parameters"], b["parameters"]
    if pa.keys() != pb.keys() or not all(torch.equal(pa[k], pb[k]) for k in pa):
        out.append("parameters")
    return out


def trial(
    name: str, killer: list[str] | None, delay: float, logdir: Path, reference: dict[str, Any]
) -> dict[str, Any]:
    started = time.time()
    if killer is not None:  # it kills itself at a checkpoint phase
        first = subprocess.run(killer, capture_output=True, text=True)
        killed = first.returncode == -signal.SIGKILL
    else:
        process = subprocess.Popen(command(logdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        killed = process.wait() == -signal.SIGKILL  # False if it had already finished
    again = subprocess.run(command(logdir), capture_output=True, text=True)
    differences = ["resume failed: " + again.stderr.strip()[-300:]] if again.returncode != 0 else []
    if not differences:
        differences = same(outcome(logdir), reference)
    result = {"trial": name, "killed": killed, "identical": not differences, "differences": differences,
              "seconds": round(time.time() - started, 1)}
    line = f"{name:<34} killed={killed!s:<5} identical={not differences!s:<5} {' '.join(differences)}"
    print(line, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--random", type=int, default=20, help="kills at random moments")
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[1, 6],
                        help="checkpoints whose every phase is hit (6: the final one of the debug run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random moments")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill_resume-"))
    try:
        started = time.time()
        subprocess.run(command(root / "reference"), check=True, capture_output=True)
        duration = time.time() - started
        reference = outcome(root / "reference")
        print(f"reference run: {duration:.1f} s; {len(reference['metrics'])} metric lines, "
              f"{len(reference['scores'])} episodes", flush=True)
        results = []
        for index in range(args.random):
            delay = rng.uniform(0.0, duration)
            name = f"random {index:2d} at {delay:5.2f} s"
            results.append(trial(name, None, delay, root / f"random{index}", reference))
        for checkpoint in args.checkpoints:
            for phase in PHASES:
                logdir = root / f"phase-{checkpoint}-{phase}"
                name = f"checkpoint {checkpoint}, phase {phase}"
                results.append(trial(name, phase_killer(logdir, phase, checkpoint), 0.0, logdir, reference))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    killed = [r for r in results if r["killed"]]
    identical = [r for r in killed if r["identical"]]
    print(f"\n{len(identical)} of {len(killed)} killed runs resumed to the reference's logs and parameters "
          f"({len(results) - len(killed)} trials finished before the kill)")
    if args.json:
        args.json.write_text(json.dumps({"reference_seconds": duration, "trials": results}, indent=1))
    return 0 if len(identical) == len(killed) else 1


if __name__ == "__main__":
    sys.exit(main())
