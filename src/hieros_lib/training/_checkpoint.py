"""Checkpoints of a run: written into a fresh directory, then made current by one atomic rename."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from hieros_lib._io import atomic_write
from hieros_lib.errors import HierosError

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)

_POINTER = "latest"  # a small file naming the current checkpoint directory
_STATE = "state.pt"


def save_checkpoint(root: Path, name: str, state: dict[str, Any], write_extra: Any = None) -> Path:
    """Write a checkpoint ``root/name`` and make it the current one.

    Everything is written into ``root/name.tmp`` first (``state.pt`` through a synced temporary file,
    then whatever ``write_extra(directory)`` writes, e.g. the replays); the directory is renamed to
    ``root/name`` and the pointer file ``root/latest`` is replaced atomically. A crash at any point leaves
    the previous checkpoint and pointer as they were. Older checkpoint directories are removed last.

    Returns:
        The checkpoint directory.

    Raises:
        HierosError: If the checkpoint cannot be written.
    """
    root.mkdir(parents=True, exist_ok=True)
    final, tmp = root / name, root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(tmp / _STATE, lambda handle: handle.write(buffer.getvalue()), what="checkpoint")
        if write_extra is not None:
            write_extra(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write(root / _POINTER, lambda handle: handle.write(name.encode()), what="checkpoint pointer")
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HierosError(f"checkpoint: could not write {str(final)!r}: {err}") from err
    for other in root.iterdir():  # older checkpoints, now that the new one is current
        if other.is_dir() and other.name != name and not other.name.endswith(".tmp"):
            shutil.rmtree(other, ignore_errors=True)
    logger.debug("checkpoint written: %s", final)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The current checkpoint directory under ``root``, or None if there is none.

    Raises:
        HierosError: If the pointer names a checkpoint that is missing (a damaged run directory).
    """
    pointer = root / _POINTER
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    directory = root / name
    if not (directory / _STATE).is_file():
        raise HierosError(f"checkpoint: {str(pointer)!r} names {name!r}, which is missing or incomplete")
    return directory


def load_checkpoint(directory: Path) -> dict[str, Any]:
    """Read ``state.pt`` of a checkpoint directory (on the CPU).

    Raises:
        HierosError: If the file is unreadable or not a checkpoint of this trainer.
    """
    path = directory / _STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, ImportError, AttributeError) as err:
        raise HierosError(
            f"checkpoint {str(path)!r}: expected a checkpoint of hieros-train, got {err!r}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != "hieros_lib.training/1":
        raise HierosError(f"checkpoint {str(path)!r}: expected a checkpoint of hieros-train (format 1)")
    return state
