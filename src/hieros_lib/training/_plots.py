"""Plots of a run, drawn from its ``scores.jsonl`` and ``metrics.jsonl`` (matplotlib, imported lazily)."""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from hieros_lib._io import atomic_write

__all__ = ["draw_plots", "read_jsonl", "save_figure"]

logger = logging.getLogger(__name__)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (an incomplete last line, from a crash, is skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def save_figure(figure: Any, path: Path) -> None:
    """Write a matplotlib figure as a PNG, atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), what="plot")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def draw_plots(directory: Path, *, title: str, reference: dict[str, float] | None = None) -> list[Path]:
    """Write ``plots/returns.png``, ``plots/world_model.png``, ``plots/rewards.png`` and, where they apply,
    ``plots/subgoals.png`` and ``plots/exploration.png``.

    * returns: every training episode's return over environment steps, their running mean, and the
      evaluation returns (mean and range per evaluation); the environment's random and optimal returns
      as lines when known (``reference``);
    * world_model: each level's world-model losses (total, observation, reward, KL) over steps;
    * rewards: each level's mean imagined reward per term (extrinsic, subgoal, novelty) over steps;
    * subgoals (runs with more than one level): per level that receives subgoals, the cosine of its
      state to the held subgoal at the start and the end of each window;
    * exploration (environments whose steps carry a cell): the distinct cells visited.

    Returns:
        The files written (none without matplotlib).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("no plots: pip install matplotlib (part of hieros-lib[train])")
        return []
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    scores = read_jsonl(directory / "scores.jsonl")
    metrics = read_jsonl(directory / "metrics.jsonl")
    # returns
    figure, axis = plt.subplots(figsize=(7, 4))
    train = [(row["step"], row["return"]) for row in scores if row.get("mode") == "train"]
    if train:
        steps, returns = np.array(train, dtype=np.float64).T
        axis.scatter(steps, returns, s=6, alpha=0.35, color="tab:blue", label="training episodes")
        window = max(1, min(20, len(returns) // 5))
        running = np.convolve(returns, np.ones(window) / window, mode="valid")
        axis.plot(steps[window - 1 :], running, color="tab:blue", label=f"running mean ({window})")
    evals: dict[int, list[float]] = {}
    for row in scores:
        if row.get("mode") == "eval":
            evals.setdefault(int(row["step"]), []).append(float(row["return"]))
    if evals:
        points = sorted(evals)
        means = [float(np.mean(evals[p])) for p in points]
        low = [min(evals[p]) for p in points]
        high = [max(evals[p]) for p in points]
        axis.errorbar(
            points,
            means,
            yerr=[np.subtract(means, low), np.subtract(high, means)],
            fmt="o-",
            color="tab:red",
            capsize=3,
            label="evaluation (mean, range)",
        )
    for name, value in (reference or {}).items():
        axis.axhline(value, linestyle="--", color="grey", linewidth=1)
        axis.annotate(name, xy=(0.01, value), xycoords=("axes fraction", "data"), textcoords="offset points",
                      xytext=(0, 2), fontsize=8, color="grey")
    axis.set_xlabel("environment steps")
    axis.set_ylabel("episode return")
    axis.set_title(f"{title}: episode return")
    if train or evals:
        axis.legend(fontsize=8)
    save_figure(figure, plots / "returns.png")
    plt.close(figure)
    written.append(plots / "returns.png")
    # world-model losses and reward terms, per level
    levels = sorted({key.split("/")[0] for row in metrics for key in row if key.startswith("level")})
    for name, keys, ylabel in (
        ("world_model", ("model/loss_total", "model/loss_obs", "model/loss_reward", "model/kl_dyn"), "loss"),
        ("rewards", ("reward/extrinsic", "reward/subgoal", "reward/novelty"), "mean imagined reward"),
    ):
        figure, axes = plt.subplots(
            1, max(1, len(levels)), figsize=(4 * max(1, len(levels)), 3.6), squeeze=False,
            layout="constrained",  # room for the title and every axis label, no overlaps
        )
        for axis, level in zip(axes[0], levels or ["level0"], strict=False):
            for key in keys:
                full = f"{level}/{key}"
                series = [(float(row["step"]), _number(row[full])) for row in metrics if full in row]
                if series:
                    xs, ys = np.array(series).T
                    axis.plot(xs, ys, label=key.split("/")[1])
            axis.set_title(f"{level}")
            axis.set_xlabel("environment steps")
            axis.set_ylabel(ylabel)
            if name == "world_model":
                axis.set_yscale("log")
            if axis.lines:
                axis.legend(fontsize=7)
        figure.suptitle(f"{title}: {'world-model losses' if name == 'world_model' else 'reward terms'}")
        save_figure(figure, plots / f"{name}.png")
        plt.close(figure)
        written.append(plots / f"{name}.png")
    written += _draw_subgoals(plt, metrics, plots, title)
    written += _draw_exploration(plt, metrics, plots, title)
    return written


def _draw_subgoals(plt: Any, metrics: list[dict[str, Any]], plots: Path, title: str) -> list[Path]:
    """``subgoals.png``: per level that receives subgoals, the cosine of its state to the held subgoal at
    the start and at the end of each window (the mean over the windows of each log line)."""
    levels = sorted({key.split("/")[1] for row in metrics for key in row if key.startswith("subgoal/")})
    if not levels:
        return []
    figure, axes = plt.subplots(1, len(levels), figsize=(4.5 * len(levels), 3.6), squeeze=False,
                                layout="constrained")
    for axis, level in zip(axes[0], levels, strict=True):
        for name, style in (("cos_start", "--"), ("cos_end", "-")):
            key = f"subgoal/{level}/{name}"
            series = [(float(row["step"]), _number(row[key])) for row in metrics if key in row]
            if series:
                xs, ys = np.array(series).T
                label = "window start" if name == "cos_start" else "window end"
                axis.plot(xs, ys, style, label=label)
        axis.set_title(f"{level}: cosine of h to its decoded subgoal")
        axis.set_xlabel("environment steps")
        axis.set_ylabel("cosine")
        axis.legend(fontsize=7)
    figure.suptitle(f"{title}: subgoal achievement (end above start: the level moves to its subgoals)")
    save_figure(figure, plots / "subgoals.png")
    plt.close(figure)
    return [plots / "subgoals.png"]


def _draw_exploration(plt: Any, metrics: list[dict[str, Any]], plots: Path, title: str) -> list[Path]:
    """``exploration.png``: the distinct cells visited over environment steps (environments with cells)."""
    series = [(float(row["step"]), float(row["explore/cells_visited"])) for row in metrics
              if "explore/cells_visited" in row]
    if not series:
        return []
    figure, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
    xs, ys = np.array(series).T
    axis.plot(xs, ys)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("distinct cells visited")
    axis.set_title(f"{title}: exploration")
    save_figure(figure, plots / "exploration.png")
    plt.close(figure)
    return [plots / "exploration.png"]
