"""Shared helpers of the embedded environments: the image size, a grid of colour cells scaled to an image,
and the checks of a step."""

from __future__ import annotations

from typing import Any

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


def check_step(started: bool, action: Any, num_actions: int, meaning: str) -> int:
    """The checks of an embedded environment's ``step``: an episode is running and ``action`` is an int
    (not a bool) in ``[0, num_actions)``, described by ``meaning`` in the error. Returns the action."""
    check(started, "step", "a call to reset() first (or after the episode ended)")
    valid = isinstance(action, (int, np.integer)) and not isinstance(action, bool)
    check(valid and 0 <= int(action) < num_actions, "action", meaning, got=repr(action))
    return int(action)


def grid_distances(open_cells: np.ndarray, sources: list[tuple[int, int]]) -> np.ndarray:
    """Moves (up, down, left, right) from the nearest of ``sources`` to every cell of a grid, through the
    cells where ``open_cells`` is true: breadth-first, float, ``inf`` where no path leads. The grid's
    border must not be open (the walls of every embedded board)."""
    dist = np.full(open_cells.shape, np.inf)
    frontier = list(sources)
    for cell in frontier:
        dist[cell] = 0.0
    while frontier:
        nxt = []
        for r, c in frontier:
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if open_cells[rr, cc] and dist[rr, cc] == np.inf:
                    dist[rr, cc] = dist[r, c] + 1
                    nxt.append((rr, cc))
        frontier = nxt
    return dist
