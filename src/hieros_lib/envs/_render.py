"""Shared drawing helper of the embedded environments: a grid of colour cells scaled to an image."""

from __future__ import annotations

import numpy as np

from hieros_lib.errors import check, check_int

__all__: list[str] = []


def check_image_size(image_size: int, cells: int) -> int:
    """An image size that is a positive multiple of the grid size ``cells`` (cells stay square and sharp)."""
    image_size = check_int(image_size, "image_size", minimum=1)
    check(
        image_size % cells == 0,
        "image_size",
        f"a positive multiple of the grid size {cells} (e.g. {cells}, {2 * cells}, {4 * cells})",
        got=image_size,
    )
    return image_size


def scale_grid(grid: np.ndarray, image_size: int) -> np.ndarray:
    """``(G, G, 3)`` uint8 cell colours -> ``(image_size, image_size, 3)``, each cell a square block."""
    factor = image_size // grid.shape[0]
    if factor == 1:
        return np.ascontiguousarray(grid)
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
