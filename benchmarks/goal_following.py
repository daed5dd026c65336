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
        --out benchmarks/results/goal_following.json --plot goal_following.png
    python benchmarks/goal_following.py --from-json a.json b.json --plot goal_following.png
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


def one(variant: str, seed: int, steps: int, trials: int, image_size: int, warmup: int,
        model_pretrain: int) -> dict[str, Any]:
    import torch

    from hieros_lib.agents import SubactorConfig
    from hieros_lib.training import GoalFollowingConfig, goal_following

    torch.set_num_threads(1)
    options = dict(VARIANTS[variant])
    codes = options.pop("codes", "autoencoder")
    level = SubactorConfig.tiny(autoencoder=True, world_model_overrides={"image_size": image_size}, **options)
    start = time.perf_counter()
    config = GoalFollowingConfig(steps=steps, seed=seed, trials=trials, level=level, codes=codes,
                                 image_size=image_size, warmup=warmup, model_pretrain=model_pretrain)
    result = goal_following(config)
    seconds = time.perf_counter() - start
    return {"variant": variant, "seed": seed, "steps": steps, "image_size": image_size, "warmup": warmup,
            "model_pretrain": model_pretrain, "seconds": seconds, **result}


def label(r: dict[str, Any]) -> str:
    """A result's variant with its non-default settings."""
    extras = [f"{r['model_pretrain']} WM updates first"] if r.get("model_pretrain") else []
    if r.get("image_size", 16) != 16:
        extras.append(f"{r['image_size']} px")
    return r["variant"] + (f" ({', '.join(extras)})" if extras else "")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Success rate per seed of each variant: the level sampling, the level's modes, random actions."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SystemExit("the plot needs matplotlib: pip install 'hieros-lib[plot]'") from err
    groups = list(dict.fromkeys(label(r) for r in results))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.9 * len(groups)))
    styles = {"agent": ("o", "tab:blue", "level (sampled)"), "greedy": ("s", "tab:green", "level (mode)"),
              "random": ("x", "tab:gray", "random actions")}
    for row, group in enumerate(groups):
        chosen = [r for r in results if label(r) == group]
        for offset, (key, (marker, color, name)) in zip((-0.2, 0.0, 0.2), styles.items(), strict=True):
            values = [r[key] for r in chosen]
            ax.scatter(values, [row + offset] * len(values), marker=marker, color=color,
                       label=name if row == 0 else None)
            ax.plot([sum(values) / len(values)] * 2, [row + offset - 0.08, row + offset + 0.08], color=color)
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_xlabel("share of goal windows reached (| = mean over seeds)")
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=16,
                        help="side of the observations (16: the agent is one pixel; 32: 2 x 2)")
    parser.add_argument("--warmup", type=int, default=300, help="steps before the first update")
    parser.add_argument("--model-pretrain", type=int, default=0,
                        help="updates of the world model alone after the warm-up (4000: it sees the agent)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write every result here (JSON)")
    parser.add_argument("--plot", type=Path, default=None, help="draw the success rates here (PNG)")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="draw --plot from these saved results instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        if args.plot is None:
            parser.error("--from-json needs --plot")
        plot([r for f in args.from_json for r in json.loads(f.read_text())], args.plot)
        return 0
    tasks = [(v, s, args.steps, args.trials, args.image_size, args.warmup, args.model_pretrain)
             for v in args.variants for s in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, *zip(*tasks, strict=True)))
    print("| variant | seed | agent (sampled) | agent (mode) | random | distinct codes | reward ranking "
          "| positions: reconstructed / predicted / stay | minutes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        d = r["diagnostics"]
        p = d["positions"]
        print(f"| {r['variant']} | {r['seed']} | {r['agent']:.2f} | {r['greedy']:.2f} | {r['random']:.2f} "
              f"| {d['distinct_codes']} of {d['cells']} | {d['reward_ranking']:.3f} "
              f"| {p['reconstructed']:.2f} / {p['predicted']:.2f} / {p['stay']:.2f} "
              f"| {r['seconds'] / 60:.1f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    if args.plot is not None:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
