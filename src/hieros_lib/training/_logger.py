"""What a run writes as it goes: JSON lines, TensorBoard events and a progress bar."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hieros_lib._io import describe_os_error
from hieros_lib._tree import to_host
from hieros_lib.errors import HierosError

__all__ = ["MetricMeans", "RunLogger"]

logger = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON-safe scalars: floats stay floats (NaN / inf as strings), tensors become numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricMeans:
    """Means of named scalar tensors between two log lines, accumulated where the tensors live.

    :meth:`add` adds each value to a float64 sum on its own device (no host synchronisation);
    :meth:`result` reads every sum in one device-to-host copy, once per log line. The sums equal those of
    Python floats added in the same order (float64 additions of the same values).
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: Mapping[str, torch.Tensor]) -> None:
        """Add one value per name (0-d tensors, or numbers)."""
        for key, value in values.items():
            value = torch.as_tensor(value).detach().to(torch.float64)
            total = self.sums.get(key)
            self.sums[key] = value.clone() if total is None else total + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def result(self) -> dict[str, float]:
        """The means since the last call (then empty)."""
        host = to_host(self.sums)
        out = {key: float(host[key]) / self.counts[key] for key in self.sums}
        self.sums, self.counts = {}, {}
        return out

    def state_dict(self) -> dict[str, Any]:
        """The running sums (on the CPU) and counts, for checkpoints."""
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | None = None) -> None:
        """Restore :meth:`state_dict` (sums onto ``device``)."""
        self.sums = {k: torch.as_tensor(v, dtype=torch.float64).to(device) for k, v in state["sums"].items()}
        self.counts = {k: int(v) for k, v in state["counts"].items()}


class RunLogger:
    """Appends ``metrics.jsonl`` and ``scores.jsonl``, mirrors scalars to TensorBoard, drives a progress bar.

    Every line is flushed as it is written. A write the operating system refuses (a full or read-only
    disk) raises :class:`~hieros_lib.errors.HierosError` saying so; the run's last checkpoint is intact
    then, and running the same command again cuts the logs back to it.

    Args:
        directory: The run directory.
        total_steps: Environment steps of the run (the progress bar's total).
        tensorboard: Write TensorBoard events under ``directory/tensorboard`` (needs ``tensorboard``).
        progress: Show a tqdm progress bar (needs ``tqdm``).
        initial_step: Where a resumed run starts: TensorBoard drops the events after it that an
            interrupted attempt wrote (``purge_step``).
    """

    def __init__(
        self,
        directory: Path,
        *,
        total_steps: int,
        tensorboard: bool,
        progress: bool,
        initial_step: int = 0,
    ) -> None:
        self.directory = directory
        try:
            self._metrics = open(directory / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            self._scores = open(directory / "scores.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            reason = describe_os_error(err)
            raise HierosError(f"logs: could not open them in {str(directory)!r}: {reason}") from err
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning(
                    "TensorBoard events are off: pip install tensorboard (part of hieros-lib[train])"
                )
            else:
                purge = {"purge_step": initial_step + 1} if initial_step else {}
                self._writer = SummaryWriter(str(directory / "tensorboard"), **purge)
        self._bar: Any = None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                logger.warning("no progress bar: pip install tqdm (part of hieros-lib[train])")
            else:
                self._bar = tqdm(
                    total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True, smoothing=0.05
                )

    @property
    def bar(self) -> Any:
        """The tqdm progress bar, or None."""
        return self._bar

    def _append(self, handle: Any, row: dict[str, Any]) -> None:
        try:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
        except OSError as err:
            raise HierosError(
                f"logs: could not write {handle.name!r}: {describe_os_error(err)}; the last checkpoint is "
                "intact: free the disk and run the same command to resume"
            ) from err

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (and TensorBoard scalars) at environment step ``step``."""
        row = {"step": step, **{k: _clean(v) for k, v in sorted(values.items())}}
        self._append(self._metrics, row)
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, step)

    def score(self, step: int, mode: str, episode_return: float, length: int, **extra: Any) -> None:
        """One line of ``scores.jsonl``: an episode of ``mode`` (``"train"`` or ``"eval"``)."""
        row = {"step": step, "mode": mode, "return": float(episode_return), "length": int(length), **extra}
        self._append(self._scores, row)
        if self._writer is not None:
            self._writer.add_scalar(f"{mode}/return", float(episode_return), step)

    def progress(self, steps: int, **postfix: Any) -> None:
        """Advance the progress bar by ``steps`` and show ``postfix`` (fps, returns)."""
        if self._bar is not None:
            self._bar.update(steps)
            shown = {k: _clean(v) for k, v in postfix.items() if v is not None}
            if shown:
                self._bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        """Flush and close everything (a failing flush of a full disk is logged, not raised: closing
        follows a stop, and the logs are cut back to the checkpoint on resume)."""
        for handle in (self._metrics, self._scores):
            try:
                handle.close()
            except OSError as err:
                logger.warning("closing %s: %s", handle.name, describe_os_error(err))
        if self._writer is not None:
            self._writer.close()
        if self._bar is not None:
            self._bar.close()
