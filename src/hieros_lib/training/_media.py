"""Pictures of a run: evaluation episodes, open-loop predictions and decoded subgoals, as GIFs."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_lib._io import atomic_write
from hieros_lib.agents import Subactor
from hieros_lib.world_models import map_state

__all__ = ["open_loop_frames", "side_by_side", "to_uint8", "write_gif"]

logger = logging.getLogger(__name__)


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float images in ``[0, 1]`` (or uint8) -> uint8 ``(..., H, W, C)``; one channel becomes three."""
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else image
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def side_by_side(images: Sequence[np.ndarray], gap: int = 1) -> np.ndarray:
    """Images ``(H, W, 3)`` of one height side by side with a white ``gap``."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for i, image in enumerate(images):
        if i:
            parts.append(spacer)
        parts.append(image)
    return np.concatenate(parts, axis=1)


def write_gif(path: Path, frames: Sequence[np.ndarray], *, fps: int = 8, scale: int = 4) -> None:
    """Write uint8 frames ``(H, W, 3)`` as a looping GIF, each pixel scaled up ``scale`` times (Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        logger.warning("no GIFs: pip install pillow (part of hieros-lib[train])")
        return
    if not frames:
        return
    pictures = [
        Image.fromarray(np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)) for frame in frames
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0
    )
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), what="GIF")


@torch.no_grad()
def open_loop_frames(
    level: Subactor,
    batch: dict[str, torch.Tensor],
    *,
    context: int,
    generator: torch.Generator | None = None,
) -> list[np.ndarray]:
    """Open-loop prediction of a level-0 world model: ``context`` observed frames, then imagined ones.

    For each sequence of ``batch`` the model observes the first ``context`` steps (its reconstructions are
    shown), then imagines the rest from the last posterior state under the *recorded* actions (no more
    observations). Each frame stacks three rows, true frames, the model's frames and their absolute
    difference, for every sequence side by side.

    Args:
        level: Level 0 of the agent (image observations).
        batch: A replay batch ``(B, T, ...)`` of that level.
        context: Observed steps (``< T``).
        generator: Random generator for the imagined latents.

    Returns:
        ``T`` uint8 frames.
    """
    model = level.model
    obs, action, first = batch["obs"], batch["action"], batch["is_first"]
    length = obs.shape[1]
    observed = model.observe(
        obs[:, :context],
        action[:, :context],
        first[:, :context],
        reward=batch["reward"][:, :context],
        sample=False,
        validate=False,
    )
    frames = [model.decode(observed.posterior)]
    state = map_state(lambda x: x[:, -1], observed.posterior)
    for t in range(context, length):
        state = model.imagine_step(state, action[:, t - 1], generator=generator, validate=False)
        frames.append(model.decode(state)[:, None])
    predicted = torch.cat(frames, 1)
    truth = obs.float() / 255.0
    error = (predicted - truth).abs()
    rows = [to_uint8(x) for x in (truth, predicted, error)]
    out = []
    for t in range(length):
        columns = [np.concatenate([row[b, t] for row in rows], axis=0) for b in range(obs.shape[0])]
        out.append(side_by_side(columns))
    return out


def label_strip(frame: np.ndarray, marker: Any = None) -> np.ndarray:
    """``frame`` with a one-pixel bar on top: green while imagining (``marker`` true), else white."""
    bar = np.full((1, frame.shape[1], 3), 255, np.uint8)
    if marker:
        bar[:] = (0, 170, 0)
    return np.concatenate([bar, frame], axis=0)
