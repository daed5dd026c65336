"""The whole agent, measured per part: where a Hieros training step spends its time, on CPU or GPU.

For each world model (used at every level) and each variant (eager, ``torch.compile``, bf16 autocast) it
builds a Hieros agent, fills every level's replay by acting on random observations, and times:

* per level, each phase of a training step: sampling the batch, the world-model update (loss, backward,
  clip, optimiser step), imagination (``horizon`` steps from all ``B * T`` posterior states) with the
  rewards, the actor-critic update, the autoencoder update, and within them the optimiser steps;
* ``Hieros.train_step`` over a full cycle of the cadence (level ``i`` trains every ``k**i`` calls);
* the acting step (``policy`` and ``HierosReplay.add``) for ``N`` environments across all levels;
* the loop's environment steps per second (``N`` acting steps and ``N * train_ratio`` training steps per
  iteration; environments themselves are not stepped: ``bench_envs.py`` measures them) and, on a GPU, the
  projected wall time of a 100k-step Atari run;
* host synchronisations per training step and per acting step (``hieros_lib.testing.count_host_syncs``;
  the ``.item()`` that non-fused optimisers call on their CPU step counters is not one, and is left out);
* peak GPU memory.

CPU figures are for ratios within one run (a part against the whole step, a world model against S5WM);
absolute times and the projection mean something only on the GPU the paper's numbers come from.

Usage::

    python benchmarks/bench_agent.py                                # tiny config, CPU, three world models
    python benchmarks/bench_agent.py --config paper --device cuda --variants eager compile bf16
    python benchmarks/bench_agent.py --json results/agent.json     # also write every figure
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hieros_lib.agents import Hieros, HierosConfig, HierosReplay, SubactorConfig
from hieros_lib.testing import count_host_syncs

VARIANTS = {
    "eager": {},
    "compile": {"compile": "default"},
    "bf16": {"autocast": "bfloat16"},
    "compile+bf16": {"compile": "default", "autocast": "bfloat16"},
}


def make_agent(config_name: str, world_model: str, variant: str, num_envs: int, device: str) -> Hieros:
    torch.manual_seed(0)
    options = {"world_model": world_model, **VARIANTS[variant]}
    if config_name == "paper":
        config = HierosConfig(level=SubactorConfig.paper(**options), replay_capacity=100_000)
        obs_shape = (64, 64, 3)
    else:  # the cpu-demo preset's agent
        config = HierosConfig(
            level=SubactorConfig.tiny(**options), batch_size=16, sequence_length=16, replay_capacity=100_000
        )
        obs_shape = (16, 16, 3)
    return Hieros(config, obs_shape=obs_shape, num_actions=6, num_envs=num_envs, device=device)


class Timer:
    """Wall time of blocks, synchronising the device before and after each."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.times: dict[str, list[float]] = defaultdict(list)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.sync()
        start = time.perf_counter()
        out = fn(*args)
        self.sync()
        self.times[name].append(time.perf_counter() - start)
        return out

    def wrap_optimizer_steps(self, agent: Hieros, level: int) -> None:
        for optimizer in agent.level(level)._optimizers.values():
            original = optimizer.step

            def step(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                return self(f"level{level}/optimiser steps", lambda: _original(*args, **kwargs))

            optimizer.step = step  # type: ignore[method-assign]

    def median_ms(self, name: str) -> float:
        return 1e3 * statistics.median(self.times[name])

    def mean_ms(self, name: str) -> float:
        return 1e3 * statistics.fmean(self.times[name])


def random_step(n: int, obs_shape: tuple[int, ...], t: int, generator: torch.Generator) -> dict[str, Any]:
    return {
        "obs": torch.randint(0, 256, (n, *obs_shape), generator=generator, dtype=torch.uint8),
        "reward": torch.randn(n, generator=generator),
        "is_first": torch.full((n,), t == 0),
        "is_last": torch.zeros(n, dtype=torch.bool),
        "is_terminal": torch.zeros(n, dtype=torch.bool),
    }


def act(
    agent: Hieros, replay: HierosReplay, step: dict[str, Any], state: Any, generator: torch.Generator
) -> Any:
    _, state, level_steps = agent.policy(step, state, generator=generator, validate=False)
    replay.add(level_steps)
    return state


def train_call(agent: Hieros, replay: HierosReplay, call: int, generator: torch.Generator) -> Any:
    """One training call as the trainer makes it: the due levels, one replay batch each."""
    due = agent.config.levels_due(call)
    device = agent.device
    batches = [
        replay.sample(i, device=device) if i in due and replay.ready(i) else None
        for i in range(len(agent.levels))
    ]
    return agent.train_step(batches, generator=generator, validate=False)


def count_syncs(agent: Hieros, fn: Callable[[], Any]) -> int:
    """Host synchronisations recorded while ``fn`` runs, less those inside optimiser steps (their step
    counters live on the CPU unless the optimiser is fused, so reading them does not wait for a GPU)."""
    inside = 0
    optimizers = [opt for level in agent.levels for opt in level._optimizers.values()]
    originals = [opt.step for opt in optimizers]
    with count_host_syncs() as calls:

        def counted(*args: Any, _original: Any, **kwargs: Any) -> Any:
            nonlocal inside
            before = len(calls)
            out = _original(*args, **kwargs)
            inside += len(calls) - before
            return out

        for opt, original in zip(optimizers, originals, strict=True):
            opt.step = functools.partial(counted, _original=original)  # type: ignore[method-assign]
        try:
            fn()
        finally:
            for opt, original in zip(optimizers, originals, strict=True):
                opt.step = original  # type: ignore[method-assign]
    return len(calls) - inside


def fill(
    agent: Hieros, replay: HierosReplay, timer: Timer, obs_shape: tuple[int, ...], device: torch.device
) -> int:
    """Act until every level's replay holds a sequence; returns the steps taken (acting is timed)."""
    config = agent.config
    steps = config.sequence_length * config.k ** (config.levels - 1) + config.k ** (config.levels - 1)
    cpu, gen = torch.Generator().manual_seed(0), torch.Generator(device=device).manual_seed(0)
    state = agent.initial_state()
    for t in range(steps):
        step = {k: v.to(device) for k, v in random_step(agent.num_envs, obs_shape, t, cpu).items()}

        state = timer("acting step", act, agent, replay, step, state, gen)
    assert all(replay.ready(i) for i in range(config.levels))
    step = {k: v.to(device) for k, v in random_step(agent.num_envs, obs_shape, 1, cpu).items()}
    syncs = count_syncs(agent, lambda: act(agent, replay, step, state, gen))
    timer.times["syncs per acting step"] = [float(syncs)]
    return steps


def measure(args: argparse.Namespace, world_model: str, variant: str) -> dict[str, Any]:
    device = torch.device(args.device)
    agent = make_agent(args.config, world_model, variant, args.envs, args.device)
    obs_shape = agent.level(0).obs_shape
    timer = Timer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    replay = HierosReplay(agent.config, num_envs=agent.num_envs, num_actions=agent.num_actions, seed=0)
    fill(agent, replay, timer, obs_shape, device)
    generator = torch.Generator(device=device).manual_seed(1)
    levels = agent.config.levels
    for i in range(levels):
        timer.wrap_optimizer_steps(agent, i)
    # every phase of every level, one after the other
    for repeat in range(args.warmup + args.repeats):
        if repeat == args.warmup:  # drop the warm-up (compilation, allocator growth)
            timer.times = defaultdict(
                list, {k: v for k, v in timer.times.items() if not k.startswith("level")}
            )
        for i in range(levels):
            level = agent.level(i)
            sample = functools.partial(replay.sample, i, device=device)
            batch = level._check_batch(timer(f"level{i}/sample", sample))
            out, _ = timer(f"level{i}/world model", level._update_world_model, batch, generator)
            imagined = timer(f"level{i}/imagination", level._imagine, out, batch, generator)
            timer(f"level{i}/actor-critic", level._update_actor_critic, *imagined.update)
            if level.autoencoder is not None:
                timer(f"level{i}/autoencoder", level._update_autoencoder, out, generator, imagined.deter)
    result: dict[str, Any] = {"world_model": world_model, "variant": variant, "levels": {}}
    parts = ["sample", "world model", "imagination", "actor-critic", "autoencoder"]
    for i in range(levels):
        figures = {p: timer.median_ms(f"level{i}/{p}") for p in parts if timer.times.get(f"level{i}/{p}")}
        # the optimiser steps ran inside the updates: their total per repeat
        figures["optimiser steps"] = 1e3 * sum(timer.times[f"level{i}/optimiser steps"]) / args.repeats
        result["levels"][i] = figures
    # Hieros.train_step over whole cycles of the cadence (the first cycle is a warm-up)
    cycle = agent.config.k ** (levels - 1)
    for call in range(cycle * (1 + args.cycles)):
        if call == cycle:
            timer.times.pop("train step", None)
        timer("train step", train_call, agent, replay, call, generator)
    syncs = count_syncs(agent, lambda: [train_call(agent, replay, call, generator) for call in range(cycle)])
    train_ms = timer.mean_ms("train step")
    act_ms = timer.median_ms("acting step")
    n = args.envs
    result.update(
        {
            "train_step_ms": train_ms,
            "acting_step_ms": act_ms,
            "env_steps_per_s": n / ((act_ms + n * args.train_ratio * train_ms) / 1e3),
            "syncs_per_train_step": syncs / cycle,
            "syncs_per_acting_step": timer.times["syncs per acting step"][0],
            "parameters": sum(p.numel() for p in agent.parameters()),
        }
    )
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["projected_100k_hours"] = 100_000 / result["env_steps_per_s"] / 3600
    return result


def report(results: list[dict[str, Any]], device: str) -> str:
    cuda = device.startswith("cuda")
    s5wm = {r["variant"]: r for r in results if r["world_model"] == "s5wm"}
    eager = {r["world_model"]: r for r in results if r["variant"] == "eager"}
    columns = [
        "world model",
        "variant",
        "train step ms",
        "vs S5WM",
        "vs eager",
        "acting ms",
        "env steps/s",
        "syncs / train step",
        "syncs / acting step",
        "parameters",
    ]
    if cuda:
        columns += ["peak GiB", "100k run h"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]

    def ratio(r: dict[str, Any], ref: dict[str, Any] | None) -> str:
        return f"{r['train_step_ms'] / ref['train_step_ms']:.2f}x" if ref else "-"

    for r in results:
        cells = [
            r["world_model"],
            r["variant"],
            f"{r['train_step_ms']:.1f}",
            ratio(r, s5wm.get(r["variant"])),
            ratio(r, eager.get(r["world_model"])),
            f"{r['acting_step_ms']:.2f}",
            f"{r['env_steps_per_s']:.1f}",
            f"{r['syncs_per_train_step']:.1f}",
            f"{r['syncs_per_acting_step']:.0f}",
            f"{r['parameters'] / 1e6:.2f}M",
        ]
        if cuda:
            cells += [f"{r['peak_memory_gib']:.2f}", f"{r['projected_100k_hours']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    phases = ["sample", "world model", "imagination", "actor-critic", "autoencoder", "optimiser steps"]
    lines += [
        "",
        "Per level: median ms of each phase of one update (share of the level's update); the optimiser",
        "steps are part of the updates.",
        "",
        "| world model | variant | level | " + " | ".join(phases) + " |",
        "|" + " --- |" * (3 + len(phases)),
    ]
    for r in results:
        for i, figures in r["levels"].items():
            total = sum(v for k, v in figures.items() if k != "optimiser steps")
            cells = [
                f"{figures[p]:.1f} ({100 * figures[p] / total:.0f}%)" if p in figures else "-" for p in phases
            ]
            lines.append(f"| {r['world_model']} | {r['variant']} | {i} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=["tiny", "paper"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--world-models", nargs="+", default=["s5wm", "rssm", "twm"])
    parser.add_argument("--variants", nargs="+", default=["eager"], choices=sorted(VARIANTS))
    parser.add_argument("--envs", type=int, default=1, help="N environments acted in")
    parser.add_argument("--train-ratio", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=1, help="cadence cycles of train_step timed")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    )
    print(f"# bench_agent: {args.config} config on {args.device} ({machine}), torch {torch.__version__}")
    results = []
    for world_model in args.world_models:
        for variant in args.variants:
            started = time.perf_counter()
            results.append(measure(args, world_model, variant))
            print(
                f"  measured {world_model} / {variant} in {time.perf_counter() - started:.0f} s", flush=True
            )
    print()
    print(report(results, args.device))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "machine": machine, "results": results},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
