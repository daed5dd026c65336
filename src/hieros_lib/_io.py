"""Atomic file writes, shared by replay files and training checkpoints (not a public module)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hieros_lib.errors import HierosError, check

__all__ = ["atomic_write", "describe_os_error", "fsync_directory"]


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
        fsync_directory(path.parent)
    except OSError as err:
        raise HierosError(f"{what}: could not write {str(path)!r}: {describe_os_error(err)}") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def describe_os_error(err: OSError) -> str:
    """A short reason for an operating-system error that names the full-disk and read-only cases."""
    if err.errno == errno.ENOSPC or err.errno == getattr(errno, "EDQUOT", -1):
        return f"no space left on the device ({err})"
    if err.errno == errno.EROFS:
        return f"the file system is read-only ({err})"
    return str(err)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (renames, new files) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; its renames need no directory sync
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # file systems without it
            raise
    finally:
        os.close(fd)
