"""The same seed gives the same run: metrics.jsonl and scores.jsonl against a stored reference.

The reference was written before the trainer and ``Hieros`` were split into their parts (issue 20), so this
test holds the split to "behaviour unchanged": every loss, metric and episode of a 240-step debug run,
bit for bit. Floating-point results differ between CPUs with other instruction sets, and the CI has run on
more than one machine type (x86_64, 2 cores, torch 2.13 CPU; the thread count is fixed by the overrides),
so ``data/`` holds one reference per machine type seen (each says where it was written), and a run must
equal one of them bit for bit.

    python tests/training/test_reference.py --write [FILE]  # regenerate (default debug_reference.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hieros_lib.training import TIMING_KEYS, make_config, train

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "debug_reference.json"
REFERENCES = sorted(DATA.glob("debug_reference*.json"))


def run_reference(logdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    reference = json.loads(REFERENCE.read_text())
    config = make_config("debug", [f"logdir={logdir}", "run.progress=false", *reference["overrides"]])
    assert train(config)["status"] == "finished"
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics], scores


# Metrics added since the reference was written (they measure, and change nothing of the run).
ADDED = ("subgoal/",)


def differences(
    metrics: list[dict[str, Any]], scores: list[dict[str, Any]], reference: dict[str, Any]
) -> dict[str, Any]:
    """What differs from one stored reference (empty if nothing): the first differing metrics row, or the
    row counts, or the scores."""
    if len(metrics) != len(reference["metrics"]):
        return {"metrics rows": (len(metrics), len(reference["metrics"]))}
    for index, (row, expected) in enumerate(zip(metrics, reference["metrics"], strict=True)):
        keys = {*expected, *(k for k in row if not k.startswith(ADDED))}
        found = {k: (row.get(k), expected.get(k)) for k in keys if row.get(k) != expected.get(k)}
        if found:
            return {"metrics row": index, **found}
    return {} if scores == reference["scores"] else {"scores": (scores, reference["scores"])}


def test_the_debug_run_matches_the_stored_reference(tmp_path: Path) -> None:
    references = {path.name: json.loads(path.read_text()) for path in REFERENCES}
    assert "debug_reference.json" in references
    overrides = {tuple(r["overrides"]) for r in references.values()}
    assert len(overrides) == 1, overrides  # every reference is the same run
    metrics, scores = run_reference(tmp_path / "run")
    found = {name: differences(metrics, scores, r) for name, r in references.items()}
    assert any(not d for d in found.values()), found


if __name__ == "__main__" and sys.argv[1:2] == ["--write"]:
    import tempfile

    target = DATA / sys.argv[2] if len(sys.argv) > 2 else REFERENCE
    with tempfile.TemporaryDirectory() as directory:
        stored = json.loads((target if target.exists() else REFERENCE).read_text())
        stored["metrics"], stored["scores"] = run_reference(Path(directory) / "run")
        target.write_text(json.dumps(stored, indent=0))
