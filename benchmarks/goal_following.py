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
    # the official code's autoencoder data: the imagined h of each update instead of the replay's
    "standardized + imagined AE": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0,
                                   "subgoal_space": "standardized", "autoencoder_data": "imagined"},
    "imagined AE": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0, "autoencoder_data": "imagined"},
    # Director's goal input: the decoded subgoal (in h space) instead of the one-hot code
    "standardized + decoded input": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0,
                                     "subgoal_space": "standardized", "goal_input": "decoded"},
    # diagnostics without the autoencoder: each cell its own code, decoded to the h the level had there
    "cell codes": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0, "codes": "cells"},
    "standardized cell codes": {"extrinsic_weight": 0.0, "subgoal_weight": 1.0,
                                "subgoal_space": "standardized", "codes": "cells"},
}


def one(variant: str, seed: int, steps: int, trials: int, image_size: int) -> dict[str, Any]:
    import torch

    from hieros_lib.agents import SubactorConfig
    from hieros_lib.training import GoalFollowingConfig, goal_following

    torch.set_num_threads(1)
    options = dict(VARIANTS[variant])
    codes = options.pop("codes", "autoencoder")
    level = SubactorConfig.tiny(autoencoder=True, world_model_overrides={"image_size": image_size}, **options)
    start = time.perf_counter()
    config = GoalFollowingConfig(steps=steps, seed=seed, trials=trials, level=level, codes=codes,
                                 image_size=image_size)
    result = goal_following(config)
    seconds = time.perf_counter() - start
    return {"variant": variant, "seed": seed, "steps": steps, "image_size": image_size, "seconds": seconds,
            **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=16,
                        help="side of the observations (16: the agent is one pixel; 32: 2 x 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write every result here (JSON)")
    args = parser.parse_args(argv)
    tasks = [(v, s, args.steps, args.trials, args.image_size) for v in args.variants for s in args.seeds]
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
