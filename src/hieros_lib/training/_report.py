"""The report of a sweep: final returns over seeds, the Atari 100k aggregates, learning curves."""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieros_lib._games import atari_game
from hieros_lib._io import atomic_write
from hieros_lib.errors import HierosError, check_int
from hieros_lib.metrics import (
    human_normalized_score,
    iqm,
    mean,
    median,
    optimality_gap,
    performance_profile,
    stratified_bootstrap_ci,
)

__all__ = ["RunRecord", "collect_runs", "sweep_report"]

logger = logging.getLogger(__name__)

AGGREGATES = {"mean": mean, "median": median, "iqm": iqm, "optimality_gap": optimality_gap}
"""The Atari 100k aggregates of the Hieros paper's Table 1, over human-normalised scores."""


@dataclass
class RunRecord:
    """What the report reads from one run directory.

    Attributes:
        variant: The variant (the first directory below the sweep directory; the relative path of the
            run's parent for directories laid out otherwise).
        env: The environment spec (from ``config.yaml``).
        seed: The run's seed.
        logdir: The run directory.
        status: ``summary.json``'s status (``"running"`` without one).
        final: The final evaluation return (None if the run has not finished).
        curve: ``(step, evaluation return)`` pairs from ``metrics.jsonl``.
        seconds: Training seconds (``summary.json``).
        reference: The environment's random and optimal returns where known
            (:func:`~hieros_lib.training.reference_returns`).
        cells: ``(step, distinct cells visited so far)`` pairs, for environments whose steps carry the
            agent's cell (:class:`~hieros_lib.envs.Rooms`); empty otherwise.
        first_reward_step: The environment step of the first non-zero training reward (None: never).
    """

    variant: str
    env: str
    seed: int
    logdir: Path
    status: str
    final: float | None
    curve: list[tuple[int, float]] = field(default_factory=list)
    seconds: float | None = None
    reference: dict[str, float] = field(default_factory=dict)
    cells: list[tuple[int, int]] = field(default_factory=list)
    first_reward_step: int | None = None


def collect_runs(directory: str | os.PathLike[str]) -> list[RunRecord]:
    """Every run directory under ``directory`` (any depth; a run directory holds ``config.yaml``).

    Works on directories written by :func:`~hieros_lib.training.sweep` (``<variant>/<env>/seed<k>``) and
    on run directories made without it, e.g. by ``hieros-train`` in a loop.
    """
    from hieros_lib.training._config import config_from_yaml
    from hieros_lib.training._loop import reference_returns

    directory = Path(directory)
    records = []
    for config_path in sorted(directory.rglob("config.yaml")):
        logdir = config_path.parent
        if "report" in logdir.relative_to(directory).parts[:1]:
            continue
        config = config_from_yaml(config_path.read_text(encoding="utf-8"), source=str(config_path))
        relative = logdir.relative_to(directory)
        variant = relative.parts[0] if len(relative.parts) >= 3 else (relative.parent.as_posix() or "default")
        summary: dict[str, Any] = {}
        if (logdir / "summary.json").is_file():
            summary = json.loads((logdir / "summary.json").read_text(encoding="utf-8"))
        curve, cells = [], []
        if (logdir / "metrics.jsonl").is_file():
            for line in (logdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a line cut by a crash (the next resume drops it)
                    continue
                if isinstance(row.get("eval/return"), (int, float)):
                    curve.append((int(row["step"]), float(row["eval/return"])))
                if isinstance(row.get("explore/cells_visited"), int):
                    cells.append((int(row["step"]), int(row["explore/cells_visited"])))
        status = str(summary.get("status", "running"))
        final = float(summary["eval_return_mean"]) if status == "finished" else None
        reference = reference_returns(config.env.spec, dict(config.env.options))
        records.append(
            RunRecord(variant, config.env.spec, config.run.seed, logdir, status, final, curve,
                      summary.get("train_seconds"), reference, cells, summary.get("first_reward_step"))
        )
    return records


def _finals(records: list[RunRecord]) -> dict[str, dict[str, dict[int, float]]]:
    """env -> variant -> seed -> final return (finished runs only)."""
    out: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.final is not None:
            out[r.env][r.variant][r.seed] = r.final
    return out


def _atari(finals: dict[str, dict[str, dict[int, float]]], reps: int, seed: int) -> dict[str, Any]:
    """Per variant, the human-normalised aggregates over the Atari games with stratified-bootstrap 95%
    intervals, on the seeds every game has."""
    games = {env: atari_game(env.split(":", 1)[1]) for env in finals if env.startswith("atari:")}
    if not games:
        return {}
    variants = sorted({v for env in games for v in finals[env]})
    out: dict[str, Any] = {}
    for variant in variants:
        per_game = {env: finals[env].get(variant, {}) for env in games}
        seeds = sorted(set.intersection(*(set(s) for s in per_game.values())))
        if not seeds:
            continue
        matrix = np.array(
            [[human_normalized_score(games[env], per_game[env][s]) for env in sorted(games)] for s in seeds]
        )
        aggregates = {}
        for name, statistic in AGGREGATES.items():
            point, low, high = stratified_bootstrap_ci(matrix, statistic, reps=reps, generator=seed)
            aggregates[name] = {"value": point, "low": low, "high": high}
        out[variant] = {
            "games": len(games),
            "seeds": seeds,
            "aggregates": aggregates,
            "hns": {env: matrix[:, j].tolist() for j, env in enumerate(sorted(games))},
        }
    return out


def sweep_report(
    directory: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    reps: int = 10_000,
    seed: int = 0,
    plots: bool = True,
) -> dict[str, Any]:
    """Write the report of the runs under ``directory`` into ``directory/report`` and return it.

    * ``report.json``: every number: per run its status, final return and curve; per environment and
      variant the final evaluation return over seeds (mean, min, max, count); on Atari, per variant the
      human-normalised mean, median, IQM and optimality gap with stratified-bootstrap 95% intervals
      (:func:`~hieros_lib.metrics.stratified_bootstrap_ci`, ``reps`` resamples, seeded by ``seed``) on
      the seeds every game has, the paper's Table 1;
    * ``report.md``: the same as tables (also the return value's ``"text"``);
    * ``curves_<env>.png``: the evaluation return over environment steps, mean over seeds with the band
      from min to max, one colour per variant; ``profile.png`` (Atari): the performance profiles;
    * for environments whose steps carry the agent's cell (:class:`~hieros_lib.envs.Rooms`): the
      distinct cells visited in training at the end (mean, min, max over seeds) and the step of the
      first reward of every run, and ``exploration_<env>.png``, the cells visited over environment
      steps drawn like the curves.

    Args:
        directory: A sweep directory, or any directory holding run directories.
        threshold: Also report the first evaluation step at which each run reached this return.
        reps: Bootstrap resamples.
        seed: Seed of the bootstrap.
        plots: Draw the figures (needs matplotlib).

    Raises:
        HierosError: If ``directory`` holds no run directory.
    """
    directory = Path(directory)
    reps = check_int(reps, "reps", minimum=1)
    records = collect_runs(directory)
    if not records:
        raise HierosError(f"report: expected run directories (with config.yaml) under {str(directory)!r}")
    finals = _finals(records)
    table: dict[str, dict[str, Any]] = {}
    for env in sorted({r.env for r in records}):
        table[env] = {}
        for variant in sorted({r.variant for r in records if r.env == env}):
            runs = [r for r in records if r.env == env and r.variant == variant]
            values = [r.final for r in runs if r.final is not None]
            entry: dict[str, Any] = {
                "runs": len(runs),
                "finished": len(values),
                "seeds": {str(r.seed): r.final for r in runs},
            }
            if values:
                entry.update(mean=float(np.mean(values)), min=float(np.min(values)),
                             max=float(np.max(values)))
            explored = [r.cells[-1][1] for r in runs if r.final is not None and r.cells]
            if explored:  # environments that expose the agent's cell: exploration over seeds
                entry["cells"] = {"mean": float(np.mean(explored)), "min": int(np.min(explored)),
                                  "max": int(np.max(explored))}
                entry["first_reward_step"] = {str(r.seed): r.first_reward_step for r in runs
                                              if r.final is not None}
            if threshold is not None:
                entry["first_step_at_threshold"] = {
                    str(r.seed): next((step for step, value in r.curve if value >= threshold), None)
                    for r in runs
                }
            table[env][variant] = entry
    atari = _atari(finals, reps, seed)
    report: dict[str, Any] = {
        "directory": str(directory),
        "threshold": threshold,
        "runs": [
            {"variant": r.variant, "env": r.env, "seed": r.seed, "logdir": str(r.logdir), "status": r.status,
             "final": r.final, "train_seconds": r.seconds, "curve": r.curve, "cells": r.cells,
             "first_reward_step": r.first_reward_step}
            for r in records
        ],
        "envs": table,
        "atari100k": atari,
    }
    text = _markdown(report)
    report["text"] = text
    out = directory / "report"
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({k: v for k, v in report.items() if k != "text"}, indent=1).encode()
    atomic_write(out / "report.json", lambda handle: handle.write(payload), what="report.json")
    atomic_write(out / "report.md", lambda handle: handle.write(text.encode()), what="report.md")
    if plots:
        report["figures"] = [str(p) for p in _draw(records, atari, out, threshold)]
    return report


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# Sweep report: {report['directory']}", ""]
    statuses: dict[str, int] = defaultdict(int)
    for run in report["runs"]:
        statuses[run["status"]] += 1
    lines += ["Runs: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())), ""]
    lines += ["## Final evaluation return over seeds", "",
              "| environment | variant | seeds finished | mean | min | max |",
              "| --- | --- | --- | --- | --- | --- |"]
    for env, variants in report["envs"].items():
        for variant, e in variants.items():
            if "mean" in e:
                lines.append(f"| {env} | {variant} | {e['finished']} of {e['runs']} | {e['mean']:.2f} | "
                             f"{e['min']:.2f} | {e['max']:.2f} |")
            else:
                lines.append(f"| {env} | {variant} | 0 of {e['runs']} | - | - | - |")
    explored = [(env, variant, e) for env, variants in report["envs"].items()
                for variant, e in variants.items() if "cells" in e]
    if explored:
        lines += ["", "## Exploration: distinct cells visited in training, first reward", "",
                  "| environment | variant | cells (mean) | min | max | first reward step per seed |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for env, variant, e in explored:
            firsts = ", ".join(f"{v if v is not None else 'never'}" for v in e["first_reward_step"].values())
            c = e["cells"]
            lines.append(f"| {env} | {variant} | {c['mean']:.1f} | {c['min']} | {c['max']} | {firsts} |")
    if report["threshold"] is not None:
        lines += ["", f"First evaluation step at which a run reached {report['threshold']}:", ""]
        for env, variants in report["envs"].items():
            for variant, e in variants.items():
                steps = ", ".join(f"seed {s}: {v if v is not None else 'never'}"
                                  for s, v in e["first_step_at_threshold"].items())
                lines.append(f"- {env} / {variant}: {steps}")
    if report["atari100k"]:
        names = list(AGGREGATES)
        lines += ["", "## Atari 100k, human-normalised (95% stratified-bootstrap intervals)", "",
                  "| variant | games x seeds | " + " | ".join(names) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
        for variant, a in report["atari100k"].items():
            cells = [f"{a['aggregates'][n]['value']:.3f} [{a['aggregates'][n]['low']:.3f}, "
                     f"{a['aggregates'][n]['high']:.3f}]" for n in names]
            lines.append(f"| {variant} | {a['games']} x {len(a['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _draw_env(axes: Any, records: list[RunRecord], kind: str) -> bool:
    """Per variant, the mean over seeds (band from min to max, every seed as a thin line) of the
    evaluation return (``kind="curves"``) or the cells visited (``"exploration"``); False if none."""
    drawn = False
    for index, variant in enumerate(sorted({r.variant for r in records})):
        curves = [dict(r.curve if kind == "curves" else r.cells) for r in records if r.variant == variant]
        curves = [c for c in curves if c]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        if not steps:
            continue
        values = np.array([[c[s] for s in steps] for c in curves], dtype=float)
        colour = f"C{index}"
        for seed_values in values:  # every seed as a thin line
            axes.plot(steps, seed_values, color=colour, linewidth=0.6, alpha=0.5)
        axes.plot(steps, values.mean(0), color=colour, linewidth=2, label=f"{variant} ({len(curves)} seeds)")
        axes.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.15, linewidth=0)
        drawn = True
    return drawn


def _draw(records: list[RunRecord], atari: dict[str, Any], out: Path, threshold: float | None) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("no report figures: pip install matplotlib (part of hieros-lib[train])")
        return []
    from hieros_lib.training._plots import save_figure
    from hieros_lib.training._sweep import env_slug

    written = []
    for env in sorted({r.env for r in records}):
        for kind in ("curves", "exploration"):
            figure, axes = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
            drawn = _draw_env(axes, [r for r in records if r.env == env], kind)
            if kind == "curves":
                reference = next((r.reference for r in records if r.env == env and r.reference), {})
                lines = {**reference, **({"threshold": threshold} if threshold is not None else {})}
                for label, value in lines.items():
                    axes.axhline(value, linestyle=":" if label == "threshold" else "--", color="grey",
                                 linewidth=1)
                    axes.annotate(label, xy=(0.01, value), xycoords=("axes fraction", "data"), fontsize=8,
                                  color="grey", textcoords="offset points", xytext=(0, 2))
            axes.set_xlabel("environment steps")
            axes.set_ylabel("evaluation return" if kind == "curves" else "distinct cells visited in training")
            axes.set_title(f"{env}: mean over seeds, band from min to max")
            if drawn:
                axes.legend(loc="best", fontsize="small")
            path = out / f"{kind}_{env_slug(env)}.png"
            if drawn or kind == "curves":
                save_figure(figure, path)
                written.append(path)
            plt.close(figure)
    if atari:
        figure, axes = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
        taus = np.linspace(0.0, 2.0, 81)
        for index, (variant, a) in enumerate(atari.items()):
            matrix = np.array([a["hns"][env] for env in sorted(a["hns"])]).T
            axes.plot(taus, performance_profile(matrix, taus), color=f"C{index}", label=variant)
        axes.set_xlabel("human-normalised score tau")
        axes.set_ylabel("fraction of runs with score > tau")
        axes.set_title("Atari 100k performance profile")
        axes.legend(loc="best", fontsize="small")
        path = out / "profile.png"
        save_figure(figure, path)
        plt.close(figure)
        written.append(path)
    return written
