"""Atomic file writes, shared by replay files and training checkpoints (not a public module)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hieros_lib.errors import HierosError, check

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *, what: str) -> None:
    """Write a file so that ``path`` holds either its old content or the complete new one, never a part.

    ``write`` fills a temporary file in the same directory; it is flushed, synced to disk and renamed over
    ``path`` (an atomic replace on POSIX and Windows). On any failure the temporary file is removed and
    ``path`` is untouched.

    Args:
        path: The file to write.
        write: Called with the open binary temporary file.
        what: What is being written, for error messages (e.g. ``"replay file"``).

    Raises:
        HierosError: If ``path`` is a directory, or the operating system refuses the write (missing
            directory, no permission, disk full). Other exceptions from ``write`` propagate unchanged.
    """
    path = Path(path)
    check(not path.is_dir(), what, "a file path, not a directory", got=str(path))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise HierosError(f"{what}: could not write {str(path)!r}: {err}") from err
    finally:
        if tmp.exists():
            tmp.unlink()
