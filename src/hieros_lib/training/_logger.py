"""What a run writes as it goes: JSON lines, TensorBoard events and a progress bar."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["RunLogger"]

logger = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON-safe scalars: floats stay floats (NaN / inf as strings), tensors become numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    """Appends ``metrics.jsonl`` and ``scores.jsonl``, mirrors scalars to TensorBoard, drives a progress bar.

    Args:
        directory: The run directory.
        total_steps: Environment steps of the run (the progress bar's total).
        tensorboard: Write TensorBoard events under ``directory/tensorboard`` (needs ``tensorboard``).
        progress: Show a tqdm progress bar (needs ``tqdm``).
        initial_step: Where a resumed run starts.
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
        self._metrics = open(directory / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._scores = open(directory / "scores.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning(
                    "TensorBoard events are off: pip install tensorboard (part of hieros-lib[train])"
                )
            else:
                self._writer = SummaryWriter(str(directory / "tensorboard"))
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

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (and TensorBoard scalars) at environment step ``step``."""
        row = {"step": step, **{k: _clean(v) for k, v in sorted(values.items())}}
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, step)

    def score(self, step: int, mode: str, episode_return: float, length: int, **extra: Any) -> None:
        """One line of ``scores.jsonl``: an episode of ``mode`` (``"train"`` or ``"eval"``)."""
        row = {"step": step, "mode": mode, "return": float(episode_return), "length": int(length), **extra}
        self._scores.write(json.dumps(row) + "\n")
        self._scores.flush()
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
        """Flush and close everything."""
        for handle in (self._metrics, self._scores):
            handle.close()
        if self._writer is not None:
            self._writer.close()
        if self._bar is not None:
            self._bar.close()
