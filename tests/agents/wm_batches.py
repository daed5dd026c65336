"""Synthetic replay batches for the agent tests (not a test module)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_level_batch(
    batch: int, length: int, *, obs_shape: tuple[int, ...], num_actions: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A replay batch as a level's replay hands it out: random observations and one-hot actions."""
    g = torch.Generator().manual_seed(seed)
    if len(obs_shape) == 3:
        obs = torch.randint(0, 256, (batch, length, *obs_shape), generator=g).to(torch.uint8)
    else:
        obs = torch.randn(batch, length, *obs_shape, generator=g)
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[:, 0] = True
    flags = torch.zeros(batch, length, dtype=torch.bool)
    return {
        "obs": obs,
        "action": F.one_hot(torch.randint(0, num_actions, (batch, length), generator=g), num_actions).float(),
        "reward": torch.randn(batch, length, generator=g),
        "is_first": is_first,
        "is_last": flags,
        "is_terminal": flags.clone(),
    }
