"""Synthetic data for the world-model tests (not a test module)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("image", "vector")
VECTOR_DIM = 7


def obs_overrides(kind: str, image_size: int = 16) -> dict[str, int]:
    """Config fields of a tiny model for image or vector observations."""
    if kind == "vector":
        return {"vector_dim": VECTOR_DIM, "vector_units": 32}
    return {"image_size": image_size}


def flip_obs(obs: torch.Tensor) -> torch.Tensor:
    """Different observations of the same shape and dtype (images inverted, vectors moved)."""
    return 255 - obs if obs.dtype == torch.uint8 else 3.0 - 2.0 * obs


def random_batch(
    batch: int = 2,
    length: int = 6,
    *,
    image_size: int = 16,
    channels: int = 3,
    action_dim: int = 3,
    seed: int = 0,
    vector_dim: int | None = None,
) -> dict[str, torch.Tensor]:
    """A replay batch of random images (or float vectors) and actions with one episode start inside."""
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[0, length // 2] = True
    is_terminal = torch.zeros(batch, length, dtype=torch.bool)
    is_terminal[0, length // 2 - 1] = True
    if vector_dim:
        obs = torch.randn(batch, length, vector_dim, generator=g) * 3.0
    else:
        obs = torch.randint(0, 256, (batch, length, image_size, image_size, channels), generator=g)
        obs = obs.to(torch.uint8)
    return {
        "obs": obs,
        "action": F.one_hot(torch.randint(0, action_dim, (batch, length), generator=g), action_dim).float(),
        "reward": torch.randn(batch, length, generator=g),
        "is_first": is_first,
        "is_last": is_terminal.clone(),
        "is_terminal": is_terminal,
    }


def moving_dot_batch(
    batch: int, length: int, *, image_size: int = 16, action_dim: int = 3, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Episodes of a "dot" (a 2-pixel wide vertical bar) moving sideways and bouncing off the walls.

    It moves one pixel per step; action 1 reverses its direction (other actions do nothing). The reward
    is 1 on the step the bar arrives at the left or right wall and 0 otherwise, so it is predictable from
    the image.
    """
    last = image_size - 2  # leftmost column of the bar at the right wall
    x = torch.randint(1, last, (batch,), generator=generator)
    vx = torch.randint(0, 2, (batch,), generator=generator) * 2 - 1
    actions = torch.randint(0, action_dim, (batch, length), generator=generator)
    obs = torch.zeros(batch, length, image_size, image_size, 3, dtype=torch.uint8)
    reward = torch.zeros(batch, length)
    rows = torch.arange(batch)
    for t in range(length):
        if t > 0:
            vx = torch.where(actions[:, t - 1] == 1, -vx, vx)
            x = (x + vx).clamp(0, last)
            hit = (x == 0) | (x == last)
            reward[:, t] = hit.float()
            vx = torch.where(hit, -vx, vx)
        obs[rows, t, :, x] = 255
        obs[rows, t, :, x + 1] = 255
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[:, 0] = True
    flags = torch.zeros(batch, length, dtype=torch.bool)
    return {
        "obs": obs,
        "action": F.one_hot(actions, action_dim).float(),
        "reward": reward,
        "is_first": is_first,
        "is_last": flags,
        "is_terminal": flags.clone(),
    }
