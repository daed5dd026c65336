"""The scan benchmark's own machinery: round-robin medians, page-fault counts and the step functions."""

from __future__ import annotations

import importlib.util
import mmap
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scan.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _touch_fresh_pages(pages: int) -> None:
    """Map ``pages`` new anonymous pages and write to each: one minor fault per page."""
    size = pages * mmap.PAGESIZE
    with mmap.mmap(-1, size) as buffer:
        if hasattr(mmap, "MADV_NOHUGEPAGE"):  # huge pages would fault once per 2 MiB
            buffer.madvise(mmap.MADV_NOHUGEPAGE)
        for offset in range(0, size, mmap.PAGESIZE):
            buffer[offset] = 1


def test_median_times_counts_calls_and_reports_faults_per_function(bench: ModuleType) -> None:
    calls = {"touch": 0, "idle": 0}

    def touch() -> None:
        calls["touch"] += 1
        _touch_fresh_pages(1024)

    def idle() -> None:
        calls["idle"] += 1

    faults: dict[str, float] = {}
    times = bench.median_times({"touch": touch, "idle": idle}, {"touch": 4, "idle": 2}, faults)
    assert calls == {"touch": 5, "idle": 3}  # one warm-up each, then the requested repeats
    assert set(times) == set(faults) == {"touch", "idle"}
    assert all(t >= 0 for t in times.values())
    if sys.platform.startswith("linux"):
        assert faults["touch"] >= 512 > faults["idle"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="minor page faults are counted on Linux")
def test_minor_faults_sees_the_pages_of_a_fresh_mapping(bench: ModuleType) -> None:
    pages = 2048
    before = bench.minor_faults()
    _touch_fresh_pages(pages)
    assert bench.minor_faults() - before >= pages // 2


def test_scan_and_cumsum_steps_run_forward_and_backward(bench: ModuleType) -> None:
    problem = bench.scan_problem(2, 20, 3)
    for step in (bench.scan_step(problem, "parallel"), bench.cumsum_step(problem)):
        problem["b"].grad = None
        step()
        assert problem["b"].grad is not None and torch.isfinite(torch.view_as_real(problem["b"].grad)).all()
    assert problem["a"].grad is not None


def test_cli_offers_the_tuned_allocator() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    assert "--tuned-malloc" in result.stdout
