"""Stopping a run cleanly: SIGINT and SIGTERM set a flag that the loop reads after each step."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StopSignal"]


class StopSignal:
    """A stop request, set by :meth:`request` or by SIGINT / SIGTERM while :meth:`handling` is active.

    The command line installs the handlers before it imports anything heavy, so a signal during start-up
    (imports, environment creation) is caught too: the run then stops before its first step, writing
    nothing.

    Examples:
        >>> stop = StopSignal()
        >>> stop.requested, stop.reason
        (False, None)
        >>> stop.request("enough")
        >>> stop.requested, stop.reason
        (True, 'enough')
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.reason is not None

    def request(self, reason: str = "requested") -> None:
        """Ask the run to stop after its current step (the first reason is kept)."""
        if self.reason is None:
            self.reason = reason

    @contextmanager
    def handling(self) -> Iterator[StopSignal]:
        """Turn SIGINT and SIGTERM into :meth:`request` inside the block (main thread only; elsewhere
        the block runs without handlers); the previous handlers are restored after it."""
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.request(signal.Signals(signum).name)
