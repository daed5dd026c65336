"""Sweeps on a local Ray instance with two CPUs: a 2 x 2 sweep and its report, a killed worker retried and
resumed, a finished sweep rerun without training anything."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from hieros_lib.training import TIMING_KEYS, SweepSpec, make_config, sweep, sweep_main, train

SHORT = ("run.steps=80", "run.eval_every=40", "run.checkpoint_every=40", "run.log_every=20",
         "run.media=false", "run.plot_every=0")


def rows(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("sweep") / "catch"
    spec = SweepSpec(preset="debug", envs=("hieros:catch",), seeds=(0, 1),
                     variants={"one": ("agent.levels=1",), "two": ()}, overrides=SHORT)
    results = sweep(spec, directory, num_cpus=2, progress=False)
    return directory, results


def test_a_sweep_of_two_variants_and_two_seeds_and_its_report(
    swept: tuple[Path, list[dict[str, Any]]],
) -> None:
    directory, results = swept
    assert [(r["variant"], r["seed"], r["status"]) for r in results] == [
        ("one", 0, "finished"), ("one", 1, "finished"), ("two", 0, "finished"), ("two", 1, "finished")]
    assert (directory / "one" / "hieros-catch" / "seed1" / "checkpoints" / "latest").is_file()
    assert json.loads((directory / "sweep.json").read_text())["seeds"] == [0, 1]
    assert sweep_main(["report", str(directory)]) == 0
    report = json.loads((directory / "report" / "report.json").read_text())
    for variant in ("one", "two"):
        entry = report["envs"]["hieros:catch"][variant]
        finals = [r["summary"]["eval_return_mean"] for r in results if r["variant"] == variant]
        assert entry["finished"] == 2 and entry["mean"] == pytest.approx(sum(finals) / 2)
        assert entry["min"] == min(finals) and entry["max"] == max(finals)
    assert all(len(run["curve"]) == 2 for run in report["runs"])  # evaluations at steps 40 and 80
    assert (directory / "report" / "curves_hieros-catch.png").read_bytes()[:4] == b"\x89PNG"
    assert "| hieros:catch | two | 2 of 2 |" in (directory / "report" / "report.md").read_text()


def test_a_finished_sweep_rerun_trains_nothing(swept: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, _ = swept
    runs = [p for p in directory.rglob("*") if p.is_file() and "report" not in p.parts]
    before = {p: p.stat().st_mtime_ns for p in runs}
    spec = SweepSpec(preset="debug", envs=("hieros:catch",), seeds=(0, 1),
                     variants={"one": ("agent.levels=1",), "two": ()}, overrides=SHORT)
    started = time.time()
    results = sweep(spec, directory, num_cpus=2, progress=False)
    assert [r["status"] for r in results] == ["skipped"] * 4 and not ray.is_initialized()
    assert time.time() - started < 10
    assert {p: p.stat().st_mtime_ns for p in runs if p.name != "sweep.json"} == {
        p: t for p, t in before.items() if p.name != "sweep.json"}


def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    overrides = ("run.steps=160", "run.eval_every=80", "run.checkpoint_every=40", "run.log_every=20",
                 "run.media=false", "run.plot_every=0")
    spec = SweepSpec(preset="debug", envs=("hieros:catch",), seeds=(3,), overrides=overrides)
    directory = tmp_path / "sweep"
    logdir = directory / "default" / "hieros-catch" / "seed3"
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(results=sweep(spec, directory, num_cpus=2,
                                                                       progress=False)))
    thread.start()
    deadline, killed = time.time() + 240, None
    while time.time() < deadline and killed is None:
        pid = logdir / "worker.pid"
        if list((logdir / "checkpoints").glob("ckpt*/MANIFEST.json")) and pid.is_file():
            killed = int(pid.read_text())
            os.kill(killed, signal.SIGKILL)  # the worker dies mid-run, after a checkpoint
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None and not thread.is_alive()
    [result] = out["results"]
    assert result["status"] == "finished", result
    assert result["summary"]["resumed_at"] >= 40  # the retry resumed from the checkpoint, not from 0
    # and wrote what one uninterrupted run of the same config writes
    alone = tmp_path / "alone"
    config = make_config("debug", [*overrides, "env.spec=hieros:catch", "run.seed=3", "run.threads=1",
                                   "run.progress=false", f"logdir={alone}"])
    assert train(config)["status"] == "finished"
    assert rows(logdir / "metrics.jsonl") == rows(alone / "metrics.jsonl")
    assert rows(logdir / "scores.jsonl") == rows(alone / "scores.jsonl")


def test_bad_sweeps_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep_main(["run", str(tmp_path / "s"), "--preset", "nope", "--envs", "hieros:catch",
                       "--seeds", "0"]) == 2
    assert "preset" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert sweep_main(["report", str(tmp_path)]) == 2
