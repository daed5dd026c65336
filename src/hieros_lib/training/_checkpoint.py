"""Checkpoints of a run that survive a crash at any instant: numbered, checksummed, never replaced in place.

Layout of ``<run>/checkpoints``::

    ckpt000003-step000000480/   state.pt, replay/*.npz, MANIFEST.json (written last)
    ckpt000004-step000000480/   the final checkpoint of the same step: a new name, never an overwrite
    latest                      the name of the newest checkpoint (a hint; see find())

A checkpoint is written into ``.tmp-ckpt.../``, every file synced; ``MANIFEST.json`` (the format, the
step, and the size and SHA-256 of every file) is written last; the directory is renamed into place and
synced; ``latest`` is replaced atomically; only then are checkpoints beyond the ``keep_last`` newest
removed. So at every instant the newest complete checkpoint is intact, and the one before it too.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hieros_lib._io import atomic_write, describe_os_error, fsync_directory
from hieros_lib.errors import HierosError, check_int

__all__ = ["FORMAT", "PHASES", "CheckpointStore"]

logger = logging.getLogger(__name__)

FORMAT = "hieros_lib.training/2"
"""The checkpoint format this version writes and reads (1: before numbered, checksummed checkpoints)."""

_MANIFEST = "MANIFEST.json"
_STATE = "state.pt"
_POINTER = "latest"
_NAME = re.compile(r"^ckpt(\d{6,})-step(\d{9,})$")
_LEGACY = re.compile(r"^step\d{9,}$")  # format 1
PHASES = ("state", "extra", "manifest", "rename", "pointer", "prune")
"""The phases of :meth:`CheckpointStore.save`, in order; a ``hook`` is called after each."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointStore:
    """The checkpoints of one run directory.

    Args:
        root: The ``checkpoints`` directory.
        keep_last: Complete checkpoints to keep (the newest first; at least 1).
        hook: Called with each phase name of :data:`PHASES` as :meth:`save` completes it (fault
            injection in tests and in ``benchmarks/kill_resume.py``).
    """

    def __init__(self, root: Path, *, keep_last: int = 2, hook: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.keep_last = check_int(keep_last, "keep_last", minimum=1)
        self.hook = hook

    # ------------------------------------------------------------------------------------ listing
    def _numbered(self) -> list[tuple[int, int, Path]]:
        """``(sequence, step, directory)`` of every numbered checkpoint directory, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                out.append((int(match.group(1)), int(match.group(2)), path))
        return sorted(out)

    def verify(self, directory: Path) -> str | None:
        """Why ``directory`` is not a complete, intact checkpoint of this format (None if it is)."""
        manifest = directory / _MANIFEST
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"{manifest} is missing (the checkpoint was not finished)"
        except (OSError, ValueError) as err:
            return f"{manifest} is unreadable ({err})"
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            return f"{manifest} is not of format {FORMAT!r}"
        files = content.get("files")
        if not isinstance(files, dict) or _STATE not in files:
            return f"{manifest} lists no {_STATE}"
        for name, entry in files.items():
            path = directory / name
            try:
                size = path.stat().st_size
            except OSError:
                return f"{path} is missing"
            if size != entry.get("size"):
                return f"{path} has {size} bytes, the manifest says {entry.get('size')}"
            if _sha256(path) != entry.get("sha256"):
                return f"{path} does not match its checksum (corrupt)"
        return None

    def find(self) -> tuple[Path | None, list[Path]]:
        """The newest complete checkpoint whose files match their checksums, and the damaged newer ones.

        The ``latest`` pointer is only a hint: a checkpoint renamed into place just before a crash, or one
        whose pointer was deleted, is found all the same. A damaged checkpoint is skipped with a warning
        that names the file, and the one before it is used.

        Returns:
            ``(directory, damaged)``: the checkpoint to resume from (None if there is none at all) and the
            damaged checkpoints newer than it (see :meth:`set_aside`).

        Raises:
            HierosError: If checkpoints exist but none is intact, or they are of an older format; the
                message names each problem (nothing is changed).
        """
        problems: list[str] = []
        damaged: list[Path] = []
        for _, _, directory in reversed(self._numbered()):
            problem = self.verify(directory)
            if problem is None:
                for name, reason in zip((d.name for d in damaged), problems, strict=True):
                    logger.warning("checkpoint %s is damaged: %s", name, reason)
                if damaged:
                    logger.warning("resuming from the checkpoint before it, %s", directory.name)
                return directory, damaged
            problems.append(problem)
            damaged.append(directory)
        names = [p.name for p in self.root.iterdir()] if self.root.is_dir() else []
        legacy = sorted(name for name in names if _LEGACY.match(name))
        if legacy:
            raise HierosError(
                f"checkpoint: {str(self.root / legacy[-1])!r} was written by an older hieros-lib (checkpoint "
                f"format 1); this version reads format {FORMAT!r}: resume it with the version that wrote "
                "it, or train into a new --logdir"
            )
        if problems:
            raise HierosError(
                f"checkpoint: no intact checkpoint in {str(self.root)!r}: " + "; ".join(problems)
            )
        return None, []

    # ------------------------------------------------------------------------------------ writing
    def _phase(self, name: str) -> None:
        if self.hook is not None:
            self.hook(name)

    def save(
        self,
        step: int,
        state: dict[str, Any],
        write_extra: Callable[[Path], object] | None = None,
    ) -> Path:
        """Write a new checkpoint of ``state`` at environment step ``step`` and make it the newest.

        Args:
            step: The environment step it holds.
            state: The state to ``torch.save`` (the ``format`` key is set here).
            write_extra: Writes further files into the directory it is given (the replays).

        Returns:
            The new checkpoint directory.

        Raises:
            HierosError: If it cannot be written (full or read-only disk, ...): the message says why; the
                checkpoints already there are untouched and the partial one is removed.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        numbered = self._numbered()
        sequence = numbered[-1][0] + 1 if numbered else 0
        name = f"ckpt{sequence:06d}-step{step:09d}"
        final, tmp = self.root / name, self.root / f".tmp-{name}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            buffer = io.BytesIO()
            torch.save({**state, "format": FORMAT}, buffer)
            atomic_write(tmp / _STATE, lambda handle: handle.write(buffer.getbuffer()), what="checkpoint")
            self._phase("state")
            if write_extra is not None:
                write_extra(tmp)
            self._phase("extra")
            files = {
                str(path.relative_to(tmp)): {"size": path.stat().st_size, "sha256": _sha256(path)}
                for path in sorted(tmp.rglob("*"))
                if path.is_file()
            }
            manifest = {"format": FORMAT, "step": step, "sequence": sequence, "files": files}
            text = json.dumps(manifest, indent=1).encode()
            atomic_write(tmp / _MANIFEST, lambda handle: handle.write(text), what="checkpoint manifest")
            for directory in {tmp, *(p.parent for p in tmp.rglob("*") if p.is_file())}:
                fsync_directory(directory)
            self._phase("manifest")
            os.replace(tmp, final)
            fsync_directory(self.root)
            self._phase("rename")
            atomic_write(
                self.root / _POINTER, lambda handle: handle.write(name.encode()), what="checkpoint pointer"
            )
            self._phase("pointer")
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HierosError(
                f"checkpoint: could not write {str(final)!r}: {describe_os_error(err)}; the previous "
                "checkpoints are intact"
            ) from err
        except HierosError as err:  # a file that could not be written (atomic_write names why)
            shutil.rmtree(tmp, ignore_errors=True)
            raise HierosError(f"{err}; the previous checkpoints are intact") from err
        self._prune(keep=final)
        self._phase("prune")
        logger.debug("checkpoint written: %s", final)
        return final

    def _prune(self, keep: Path) -> None:
        """Remove the checkpoints older than the ``keep_last`` newest complete ones (never ``keep``), and
        stale temporary directories."""
        numbered = self._numbered()
        complete = [sequence for sequence, _, d in numbered if (d / _MANIFEST).is_file()]
        oldest_kept = min(complete[-self.keep_last :])
        for sequence, _, directory in numbered:
            if sequence < oldest_kept and directory != keep:
                shutil.rmtree(directory, ignore_errors=True)
        for stale in self.root.glob(".tmp-ckpt*"):
            shutil.rmtree(stale, ignore_errors=True)

    def set_aside(self, directory: Path) -> Path:
        """Rename a damaged checkpoint to ``damaged-<name>`` (kept for inspection, never read or pruned)."""
        target = self.root / f"damaged-{directory.name}"
        os.replace(directory, target)
        logger.warning("the damaged checkpoint %s was renamed to %s", directory.name, target.name)
        return target

    # ------------------------------------------------------------------------------------ reading
    def load(self, directory: Path) -> dict[str, Any]:
        """Read ``state.pt`` of a checkpoint (on the CPU); :meth:`find` has verified its checksums.

        Raises:
            HierosError: If it cannot be read, or is not a checkpoint of this format.
        """
        path = directory / _STATE
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # unpickling raises anything; re-raised with context
            raise HierosError(
                f"checkpoint {str(path)!r}: expected a checkpoint of hieros-train, got {err!r}"
            ) from err
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise HierosError(f"checkpoint {str(path)!r}: expected a checkpoint of format {FORMAT!r}")
        return state
