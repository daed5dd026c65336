"""The same seed gives the same run: metrics.jsonl and scores.jsonl against a stored reference.

The reference was written before the trainer and ``Hieros`` were split into their parts (issue 20), so this
test holds the split to "behaviour unchanged": every loss, metric and episode of a 240-step debug run,
bit for bit. Floating-point results can differ between CPUs with other instruction sets; the reference
was written on the CI's machine type, x86_64 with 2 cores and torch 2.13 CPU (the thread count is fixed
by the overrides).

    python tests/training/test_reference.py --write    # regenerate after a change of results on purpose
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hieros_lib.training import TIMING_KEYS, make_config, train

REFERENCE = Path(__file__).parent / "data" / "debug_reference.json"


def run_reference(logdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    reference = json.loads(REFERENCE.read_text())
    config = make_config("debug", [f"logdir={logdir}", "run.progress=false", *reference["overrides"]])
    assert train(config)["status"] == "finished"
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics], scores


# Metrics added since the reference was written (they measure, and change nothing of the run).
ADDED = ("subgoal/",)


def test_the_debug_run_matches_the_stored_reference(tmp_path: Path) -> None:
    reference = json.loads(REFERENCE.read_text())
    metrics, scores = run_reference(tmp_path / "run")
    assert len(metrics) == len(reference["metrics"])
    for row, expected in zip(metrics, reference["metrics"], strict=True):
        keys = {*expected, *(k for k in row if not k.startswith(ADDED))}
        differences = {k: (row.get(k), expected.get(k)) for k in keys if row.get(k) != expected.get(k)}
        assert not differences, differences
    assert scores == reference["scores"]


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        stored = json.loads(REFERENCE.read_text())
        stored["metrics"], stored["scores"] = run_reference(Path(directory) / "run")
        REFERENCE.write_text(json.dumps(stored, indent=0))
