"""Runs that survive a crash at any instant: kills at every checkpoint phase, damaged checkpoints, full disks.

Every test compares a run that was interrupted (an exception raised where a ``kill -9`` would strike,
which runs no clean-up either, or a real SIGKILL of a subprocess) and started again with the same config
against one uninterrupted run: ``metrics.jsonl`` (timings aside) and ``scores.jsonl`` must be identical
and the final parameters equal. The runs are 120 steps of the debug preset with a checkpoint every 40.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.training import TIMING_KEYS, Trainer, make_config
from hieros_lib.training._checkpoint import CheckpointStore

SHORT = (
    "run.steps=120",
    "run.checkpoint_every=40",
    "run.eval_every=80",
    "run.log_every=20",
    "run.plot_every=0",
    "run.media=false",
    "run.progress=false",
    "run.threads=1",
)


class Killed(BaseException):
    """Where a SIGKILL would strike: no ``except Exception`` catches it, no clean-up runs."""


def short(logdir: Path, *extra: str) -> Any:
    return make_config("debug", [f"logdir={logdir}", *SHORT, *extra])


def logs(logdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics], scores


def final_parameters(logdir: Path) -> dict[str, torch.Tensor]:
    store = CheckpointStore(logdir / "checkpoints")
    directory, damaged = store.find()
    assert directory is not None and not damaged
    state = store.load(directory)
    assert state["finished"]
    return dict(state["agent"])


def assert_same_run(logdir: Path, reference: Path) -> None:
    assert logs(logdir) == logs(reference)
    mine, theirs = final_parameters(logdir), final_parameters(reference)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def kill_at(trainer: Trainer, phase: str, checkpoint: int) -> None:
    """Make ``trainer`` die at ``phase`` of its ``checkpoint``-th checkpoint write (0-based)."""
    seen = {"count": -1}

    def hook(name: str) -> None:
        if name == "state":
            seen["count"] += 1
        if seen["count"] == checkpoint and name == phase:
            raise Killed(f"{phase} of checkpoint {checkpoint}")

    trainer.checkpoints.hook = hook


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("reference") / "run"
    assert Trainer(short(logdir)).run()["status"] == "finished"
    return logdir


@pytest.mark.parametrize(
    ("phase", "checkpoint"),
    [
        ("extra", 3),  # the final checkpoint, half written (before: the old one was deleted first)
        ("rename", 3),  # the final checkpoint in place, no pointer yet
        ("manifest", 1),  # a periodic one, complete but not renamed into place
        ("pointer", 1),  # a periodic one, before the older ones are pruned
    ],
)
def test_a_kill_during_a_checkpoint_loses_nothing(
    reference: Path, tmp_path: Path, phase: str, checkpoint: int
) -> None:
    logdir = tmp_path / "run"
    trainer = Trainer(short(logdir))
    kill_at(trainer, phase, checkpoint)
    with pytest.raises(Killed):
        trainer.run()
    assert Trainer(short(logdir)).run()["status"] == "finished"  # the same command again
    assert_same_run(logdir, reference)


def test_a_kill_before_the_first_checkpoint_starts_clean_without_duplicates(
    reference: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    trainer = Trainer(short(logdir))
    original = trainer._train

    def train_then_die(count: int) -> Any:
        if trainer.counters.env_steps >= 30:
            raise Killed("step 30")
        return original(count)

    trainer._train = train_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        trainer.run()
    assert logs(logdir)[0] and not (logdir / "checkpoints" / "latest").exists()
    assert Trainer(short(logdir)).run()["status"] == "finished"
    assert_same_run(logdir, reference)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run killed at step 101: checkpoints at 40 and 80, logs and TensorBoard events up to step 100."""
    logdir = tmp_path_factory.mktemp("interrupted") / "run"
    trainer = Trainer(short(logdir, "run.tensorboard=true"))
    original = trainer._train

    def train_then_die(count: int) -> Any:
        if trainer.counters.env_steps > 100:
            raise Killed("step 101")
        return original(count)

    trainer._train = train_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        trainer.run()
    assert logs(logdir)[0][-1]["step"] == 100
    with open(logdir / "metrics.jsonl", "a") as handle:  # and a line the kill cut in half
        handle.write('{"step": 101, "junk": 1')
    return logdir


def test_a_deleted_pointer_resumes_from_the_newest_checkpoint(
    reference: Path, interrupted: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    shutil.copytree(interrupted, logdir)
    (logdir / "checkpoints" / "latest").unlink()
    config_before = (logdir / "config.yaml").read_bytes()
    assert Trainer(short(logdir, "run.tensorboard=true")).run()["status"] == "finished"
    assert (logdir / "config.yaml").read_bytes() == config_before
    assert_same_run(logdir, reference)
    # TensorBoard: the events written after the checkpoint are purged, so every step appears once
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("level0/model/loss_total")]
    assert steps == sorted(set(steps)) == [40, 60, 80, 100, 120]


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(
    reference: Path, interrupted: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logdir = tmp_path / "run"
    shutil.copytree(interrupted, logdir)
    newest = logdir / "checkpoints" / (logdir / "checkpoints" / "latest").read_text()
    state = newest / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside a tensor record: torch.load would accept it
    state.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="hieros_lib.training"):
        assert Trainer(short(logdir, "run.tensorboard=true")).run()["status"] == "finished"
    assert f"{newest.name} is damaged" in caplog.text and "checksum" in caplog.text
    assert (logdir / "checkpoints" / f"damaged-{newest.name}").is_dir()  # set aside, not deleted
    assert_same_run(logdir, reference)


def test_no_intact_checkpoint_stops_with_one_line_and_touches_nothing(
    interrupted: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    shutil.copytree(interrupted, logdir)
    for state in (logdir / "checkpoints").glob("*/state.pt"):
        data = bytearray(state.read_bytes())
        data[:16] = b"\0" * 16  # the header: a raw UnpicklingError before
        state.write_bytes(bytes(data))
    before = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    result = run_cli("--preset", "debug", "--logdir", str(logdir), *SHORT, "run.tensorboard=true")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no intact checkpoint" in lines[0] and "state.pt" in lines[0], lines
    assert {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()} == before


def test_a_real_sigkill_during_a_checkpoint_write(reference: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import os, signal
        from hieros_lib.training import Trainer, make_config
        trainer = Trainer(make_config("debug", ["logdir={logdir}", *{SHORT!r}]))
        count = {{"n": 0}}
        def hook(phase):
            count["n"] += phase == "state"
            if count["n"] == 2 and phase == "extra":  # replays half written, at step 80
                os.kill(os.getpid(), signal.SIGKILL)
        trainer.checkpoints.hook = hook
        trainer.run()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert list((logdir / "checkpoints").glob(".tmp-ckpt*"))  # the half-written one is still there
    assert Trainer(short(logdir)).run()["status"] == "finished"
    assert_same_run(logdir, reference)


def test_unwritable_directories_are_found_before_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logdir = tmp_path / "run"
    real = Path.write_bytes

    def read_only(self: Path, data: bytes) -> int:
        if self.parent.name == "checkpoints":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(HierosError, match=r"logdir \(checkpoints/\).*read-only"):
        Trainer(short(logdir))
    assert not (logdir / "config.yaml").exists() and not (logdir / "metrics.jsonl").exists()


def test_a_full_disk_stops_the_run_with_a_message_and_keeps_the_checkpoints(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hieros_lib.training import _checkpoint
    from hieros_lib.training._logger import RunLogger

    # 1. the second checkpoint's state.pt hits a full disk
    logdir = tmp_path / "checkpoint"
    writes = {"state.pt": 0}
    real_write = _checkpoint.atomic_write

    def full_on_second(path: Path, write: Any, *, what: str) -> None:
        if path.name == "state.pt":
            writes["state.pt"] += 1
            if writes["state.pt"] == 2:
                def enospc(handle: Any) -> None:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(path, enospc, what=what)
        return real_write(path, write, what=what)

    monkeypatch.setattr(_checkpoint, "atomic_write", full_on_second)
    with pytest.raises(HierosError, match=r"no space left on the device.*previous checkpoints are intact"):
        Trainer(short(logdir)).run()
    monkeypatch.setattr(_checkpoint, "atomic_write", real_write)
    directory, _ = CheckpointStore(logdir / "checkpoints").find()
    assert directory is not None and directory.name == "ckpt000000-step000000040"
    assert not list((logdir / "checkpoints").glob(".tmp-*"))  # the partial one is removed
    assert Trainer(short(logdir)).run()["status"] == "finished"
    assert_same_run(logdir, reference)

    # 2. the metrics log hits a full disk (before any checkpoint)
    logdir = tmp_path / "log"

    class FullFile:
        name = str(logdir / "metrics.jsonl")

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            pass

    opened = RunLogger.__init__

    def with_full_metrics(self: RunLogger, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        self._metrics.close()
        self._metrics = FullFile()

    monkeypatch.setattr(RunLogger, "__init__", with_full_metrics)
    with pytest.raises(HierosError, match=r"no space left on the device.*run the same command to resume"):
        Trainer(short(logdir)).run()
    monkeypatch.setattr(RunLogger, "__init__", opened)
    assert Trainer(short(logdir)).run()["status"] == "finished"
    assert_same_run(logdir, reference)


def test_sigterm_during_start_up_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hieros_lib.training import _config, main

    original = _config.make_config

    def signal_while_starting(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # as if it came during the imports
        return original(*args, **kwargs)

    monkeypatch.setattr(_config, "make_config", signal_while_starting)
    assert main(["--preset", "debug", "--logdir", str(tmp_path / "run"), "--quiet"]) == 130
    assert not list((tmp_path / "run").rglob("*.jsonl")) and not (tmp_path / "run" / "config.yaml").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hieros_lib.training", *args]
    return subprocess.run(command, capture_output=True, text=True)
