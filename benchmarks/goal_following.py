"""Goal following: does one level reach the cells its subgoals stand for? (issue 21, section 2)

Trains a level of Hieros with the subgoal reward only on reward-free ``hieros:rooms``
(:func:`hieros_lib.training.goal_following`) for every seed, the same with subgoals in the standardised
space of ``h`` (``subgoal_space="standardized"``), and the same level with the subgoal reward weight 0
(it still sees its subgoals) as the ablation, and the standardised space with Director's adaptive
KL weight (``autoencoder_kl_target=10``), then prints and writes the success rates of the
level (sampling its actions, and taking its modes) against uniformly random actions, and the diagnostics
of the subgoal space. One torch thread per run; ``--jobs`` runs at once.

Usage::

    python benchmarks/goal_following.py --seeds 0 1 2 --steps 3000 --jobs 2 \\
        --out benchmarks/results/goal_following.json
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "subgoal reward": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0},
    "standardized": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0, "subgoal_space": "standardized"},
    "subgoal weight 0": {"extrinsic_weight": 1.0, "subgoal_weight": 0.0},  # no reward at all in Rooms
    # Director's adaptive KL weight (10 nats of code) on top of the standardised space
    "standardized + adaptive KL": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0,
                                   "subgoal_space": "standardized", "autoencoder_kl_target": 10.0},
}


def one(variant: str, seed: int, steps: int, trials: int) -> dict[str, Any]:
    import torch

    from hieros_lib.agents import SubactorConfig
    from hieros_lib.training import GoalFollowingConfig, goal_following

    torch.set_num_threads(1)
    level = SubactorConfig.tiny(autoencoder=True, **VARIANTS[variant])
    start = time.perf_counter()
    result = goal_following(GoalFollowingConfig(steps=steps, seed=seed, trials=trials, level=level))
    seconds = time.perf_counter() - start
    return {"variant": variant, "seed": seed, "steps": steps, "seconds": seconds, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write every result here (JSON)")
    args = parser.parse_args(argv)
    tasks = [(v, s, args.steps, args.trials) for v in args.variants for s in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, *zip(*tasks, strict=True)))
    print("| variant | seed | agent (sampled) | agent (mode) | random | distinct codes | reward ranking "
          "| minutes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        d = r["diagnostics"]
        print(f"| {r['variant']} | {r['seed']} | {r['agent']:.2f} | {r['greedy']:.2f} | {r['random']:.2f} "
              f"| {d['distinct_codes']} of {d['cells']} | {d['reward_ranking']:.3f} "
              f"| {r['seconds'] / 60:.1f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
