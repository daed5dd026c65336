"""The trainer on the newer action and environment kinds: continuous actions (Pendulum, stopped and
resumed) and the exploration gridworld (cells visited, subgoal achievement, their plots and report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hieros_lib.training import TIMING_KEYS, Trainer, make_config, sweep_report, train


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics]


def pendulum(logdir: Path) -> Any:
    # the debug preset's tiny levels and schedule on Pendulum (its preset options do not apply there)
    return make_config("debug", [f"logdir={logdir}", "run.progress=false", "env.spec=gym:Pendulum-v1",
                                 "env.options={action_repeat: 2}", "run.steps=160"])


def test_a_continuous_run_trains_resumes_and_acts_in_bounds(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    summary = train(pendulum(whole))
    assert summary["status"] == "finished" and summary["env_steps"] == 160
    metrics = rows(whole / "metrics.jsonl")
    assert any("level0/actor/std" in m for m in metrics)  # the bounded normal's deviation is logged
    assert all(np.isfinite(m["level0/actor/loss"]) for m in metrics if "level0/actor/loss" in m)
    scores = rows(whole / "scores.jsonl")
    assert all(-16.3 * 100 <= s["return"] <= 0 for s in scores)  # Pendulum's reward is in [-16.3, 0]
    # stopped at the first checkpoint and run again: the same logs as the uninterrupted run
    stopped = tmp_path / "stopped"
    trainer = Trainer(pendulum(stopped))
    original = trainer._checkpoint

    def checkpoint_then_stop() -> None:
        original()
        trainer.request_stop("test")

    trainer._checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    assert trainer.run()["status"] == "stopped"
    assert Trainer(pendulum(stopped)).run()["status"] == "finished"
    # a Gymnasium environment cannot save its state, so the resumed run starts a new episode: the logs
    # equal the uninterrupted run's up to the checkpoint and go on from there without a repeated step
    resumed = without_timing(rows(stopped / "metrics.jsonl"))
    before = [m for m in without_timing(metrics) if m["step"] <= 120]
    assert resumed[: len(before)] == before
    assert [m["step"] for m in resumed if "updates" in m] == [m["step"] for m in metrics if "updates" in m]


def test_the_gridworld_run_measures_exploration_and_subgoals(tmp_path: Path) -> None:
    logdir = tmp_path / "hieros" / "hieros-rooms" / "seed0"
    config = make_config("debug", [f"logdir={logdir}", "run.progress=false", "env.spec=hieros:rooms",
                                   "env.image_size=16", "env.options={length: 40}"])
    summary = train(config)
    assert summary["status"] == "finished"
    metrics = rows(logdir / "metrics.jsonl")
    cells = [m["explore/cells_visited"] for m in metrics if "explore/cells_visited" in m]
    assert cells and cells == sorted(cells) and 1 < cells[-1] <= 156 and summary["cells_visited"] == cells[-1]
    train_scores = [s for s in rows(logdir / "scores.jsonl") if s["mode"] == "train"]
    assert train_scores and all(1 <= s["cells"] <= 41 for s in train_scores)  # 40 moves and the start
    # level 0 follows level 1's subgoals: the cosine to the held subgoal at a window's start and end
    achievement = [m for m in metrics if "subgoal/level0/cos_end" in m]
    assert achievement and all(-1 <= m["subgoal/level0/cos_end"] <= 1 for m in achievement)
    for name in ("subgoals.png", "exploration.png"):
        assert (logdir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = sweep_report(tmp_path, reps=10)
    entry = report["envs"]["hieros:rooms"]["hieros"]
    assert entry["cells"]["mean"] == cells[-1] and "first_reward_step" in entry
    assert "## Exploration" in report["text"]
    assert (tmp_path / "report" / "exploration_hieros-rooms.png").is_file()
