"""The run directory: its paths, the checks before a run writes anything, and its logs cut to a checkpoint."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from hieros_lib._io import atomic_write, describe_os_error
from hieros_lib.errors import HierosError
from hieros_lib.training._config import TrainConfig, config_from_yaml, config_to_yaml

__all__ = ["LOG_FILES", "RunDirectory", "config_differences"]

logger = logging.getLogger(__name__)

LOG_FILES = ("metrics.jsonl", "scores.jsonl")
"""The append-only logs of a run; a checkpoint records their sizes, a resume cuts them back to those."""

# Fields of the config that may differ when a run is resumed: they change no result.
RESUMABLE = ("logdir", "run.steps", "run.progress", "run.tensorboard", "run.keep_last")

_MEDIA_STEP = re.compile(r"step(\d+)\.gif$")


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(config).items():
        if hasattr(value, "__dataclass_fields__"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(mine: TrainConfig, theirs: TrainConfig) -> list[str]:
    """The dotted keys in which two configs differ, except those a resume may change (:data:`RESUMABLE`)."""
    a, b = _flat(mine), _flat(theirs)
    return sorted(k for k in {*a, *b} if a.get(k) != b.get(k) and k not in RESUMABLE)


class RunDirectory:
    """The files of one run (see the training guide's table of the run directory).

    Args:
        path: The run directory (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.summary_path = self.path / "summary.json"
        self.checkpoints = self.path / "checkpoints"
        self.plots = self.path / "plots"
        self.media = self.path / "media"
        self.tensorboard = self.path / "tensorboard"

    def preflight(self, *, need_bytes: int) -> None:
        """Create every directory the run writes and check each is writable, and that the disk has room.

        Raises:
            HierosError: Naming the directory that cannot be written, or the space missing; nothing of
                the run's files is changed.
        """
        for directory in (self.path, self.checkpoints, self.plots, self.media, self.tensorboard):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                probe = directory / f".write-test-{os.getpid()}"
                probe.write_bytes(b"ok")
                probe.unlink()
            except OSError as err:
                what = "logdir" if directory == self.path else f"logdir ({directory.name}/)"
                raise HierosError(
                    f"{what}: expected a writable directory, got {str(directory)!r} "
                    f"({describe_os_error(err)})"
                ) from err
        free = shutil.disk_usage(self.path).free
        if free < need_bytes:
            raise HierosError(
                f"logdir: expected at least {need_bytes / 2**20:.0f} MiB free for {str(self.path)!r} "
                f"(checkpoints hold the replay), got {free / 2**20:.0f} MiB"
            )

    # ------------------------------------------------------------------------------------ config
    def read_config(self) -> TrainConfig | None:
        """The stored ``config.yaml`` (None if there is none).

        Raises:
            HierosError: If it is not a valid training config.
        """
        if not self.config_path.is_file():
            return None
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise HierosError(f"config.yaml: could not read {str(self.config_path)!r}: {err}") from err
        return config_from_yaml(text, source=str(self.config_path))

    def write_config(self, config: TrainConfig) -> None:
        """Write ``config.yaml`` (atomically)."""
        text = config_to_yaml(config).encode()
        atomic_write(self.config_path, lambda handle: handle.write(text), what="config.yaml")

    # ------------------------------------------------------------------------------------ logs
    def log_sizes(self) -> dict[str, int]:
        """The current sizes of the logs (what a checkpoint covers)."""
        paths = {name: self.path / name for name in LOG_FILES}
        return {name: path.stat().st_size if path.is_file() else 0 for name, path in paths.items()}

    def start_clean(self) -> None:
        """Remove what an earlier attempt without a checkpoint wrote: logs, TensorBoard events, media,
        plots and summary (a run with no checkpoint starts from step 0 and writes them again)."""
        for name in (*LOG_FILES, "summary.json"):
            (self.path / name).unlink(missing_ok=True)
        for directory in (self.tensorboard, self.media, self.plots):
            if directory.is_dir():
                shutil.rmtree(directory)
            directory.mkdir(parents=True, exist_ok=True)

    def cut_to(self, sizes: dict[str, int], step: int, *, finished: bool) -> None:
        """Cut the logs back to what a checkpoint at ``step`` covers.

        The JSON lines written after the checkpoint are dropped (a line cut by a crash too); GIFs of later
        steps are removed; ``summary.json`` is removed unless the checkpoint is the finished run's.
        TensorBoard events after ``step`` are dropped by the writer (``purge_step``).
        """
        for name in LOG_FILES:
            path = self.path / name
            size = int(sizes.get(name, 0))
            if path.is_file() and path.stat().st_size > size:
                with open(path, "r+b") as handle:
                    handle.truncate(size)
            elif size > 0 and (not path.is_file() or path.stat().st_size < size):
                logger.warning("%s is shorter than its checkpoint recorded: lines were lost", path)
        if self.media.is_dir():
            for gif in self.media.iterdir():
                match = _MEDIA_STEP.search(gif.name)
                if match and int(match.group(1)) > step:
                    gif.unlink()
        if not finished:
            self.summary_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------ summary
    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (atomically)."""
        text = json.dumps(summary, indent=2).encode()
        atomic_write(self.summary_path, lambda handle: handle.write(text), what="summary.json")
