"""Rooms: a gridworld of rooms joined by doors, in pure NumPy, for measuring exploration."""

from __future__ import annotations

from typing import Any

import numpy as np

from hieros_lib.envs._render import check_image_size, check_step, grid_distances, scale_grid
from hieros_lib.errors import check, check_int

__all__ = ["Rooms"]

_FLOOR = np.array([24, 24, 40], np.uint8)
_WALL = np.array([150, 150, 150], np.uint8)
_AGENT = np.array([255, 255, 255], np.uint8)
_GOAL = np.array([255, 200, 0], np.uint8)
_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right


def _layout(rooms: int, room_size: int) -> np.ndarray:
    """``True`` where a cell is free: ``rooms x rooms`` rooms of ``room_size``, one door in every wall
    between two neighbouring rooms (in the middle of the wall)."""
    side = rooms * (room_size + 1) + 1
    free = np.zeros((side, side), bool)
    for r in range(rooms):
        for c in range(rooms):
            top, left = 1 + r * (room_size + 1), 1 + c * (room_size + 1)
            free[top : top + room_size, left : left + room_size] = True
    middle = room_size // 2
    for r in range(rooms):
        for c in range(rooms):
            top, left = 1 + r * (room_size + 1), 1 + c * (room_size + 1)
            if c + 1 < rooms:  # a door east
                free[top + middle, left + room_size] = True
            if r + 1 < rooms:  # a door south
                free[top + room_size, left + middle] = True
    return free


class Rooms:
    r"""A gridworld of ``rooms x rooms`` square rooms joined by doors; the agent starts in the top-left room.

    The board has ``rooms x rooms`` rooms of ``room_size x room_size`` free cells, walls of one cell
    between them, and one door (a free cell) in the middle of every wall between two neighbouring rooms:
    the defaults give a 16 x 16 board with 156 free cells in 9 rooms joined by 12 doors. The agent (white)
    starts in the same cell of the top-left room every episode; with ``reward=True`` a goal (yellow) sits
    in the far corner of the bottom-right room, and stepping on it gives ``+1`` and ends the episode
    (terminal); otherwise there is no reward at all. Actions: ``0`` up, ``1`` down, ``2`` left, ``3``
    right (a move into a wall stays). An episode lasts ``length`` steps (truncation) unless the goal ends
    it.

    The agent's cell is exposed for measuring exploration, not shown to the agent beyond its image:
    :meth:`info` returns ``{"cell": array([row, col])}`` after every step (the adapter passes it on as
    the step field ``"cell"``; the trainer counts the cells visited).

    **Reference figures** for the defaults (``length=200``), uniformly random actions, 2,000 episodes
    (measured; the docs' "Does the hierarchy help?" page has more): on average 35.5 distinct cells per
    episode (22.7% of the 156; the most in any episode: 73, 47%); the goal found in 1.6% of episodes
    (return 0.016); the shortest path from the start to the goal is 22 moves.

    Args:
        rooms: Rooms per side (2 to 5).
        room_size: Free cells per room side (2 to 8).
        image_size: Side of the observation, a positive multiple of the board side
            (``rooms * (room_size + 1) + 1``; 16 for the defaults, so 16, 32 or 64).
        length: Steps per episode.
        reward: Put the goal in the bottom-right room (sparse reward); without it the task is reward-free.
        seed: Unused beyond :meth:`reset` (the environment is deterministic); accepted for symmetry.

    Examples:
        >>> env = Rooms(image_size=16)
        >>> obs = env.reset()
        >>> obs.shape, env.info()["cell"].tolist(), env.num_free_cells
        ((16, 16, 3), [3, 3], 156)
        >>> obs, reward, terminated, truncated = env.step(3)  # right
        >>> env.info()["cell"].tolist(), reward
        ([3, 4], 0.0)
    """

    num_actions = 4
    action_meanings = ("up", "down", "left", "right")

    def __init__(
        self,
        *,
        rooms: int = 3,
        room_size: int = 4,
        image_size: int = 16,
        length: int = 200,
        reward: bool = True,
        seed: int | None = None,
    ) -> None:
        self.rooms = check_int(rooms, "rooms", minimum=2, maximum=5)
        self.room_size = check_int(room_size, "room_size", minimum=2, maximum=8)
        self.free = _layout(self.rooms, self.room_size)
        self.side = int(self.free.shape[0])
        self.image_size = check_image_size(image_size, self.side)
        self.length = check_int(length, "length", minimum=1)
        check(isinstance(reward, bool), "reward", "True or False", got=repr(reward))
        self.reward = reward
        if seed is not None:
            check_int(seed, "seed", minimum=0)
        self.obs_shape = (self.image_size, self.image_size, 3)
        self.start = (1 + self.room_size // 2, 1 + self.room_size // 2)
        self.goal = (self.side - 2, self.side - 2)
        self.num_free_cells = int(self.free.sum())
        self._cell = self.start
        self._t = 0
        self._started = False

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode in the start cell; returns the first observation."""
        if seed is not None:
            check_int(seed, "seed", minimum=0)
        self._cell, self._t, self._started = self.start, 0, True
        return self.render()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Move one cell (or stay at a wall); returns ``(obs, reward, terminated, truncated)``.

        Raises:
            HierosError: On an action outside ``{0, 1, 2, 3}`` or a step before :meth:`reset`.
        """
        action = check_step(self._started, action, 4, "0 (up), 1 (down), 2 (left) or 3 (right)")
        dr, dc = _MOVES[int(action)]
        row, col = self._cell[0] + dr, self._cell[1] + dc
        if self.free[row, col]:
            self._cell = (row, col)
        self._t += 1
        reached = self.reward and self._cell == self.goal
        truncated = not reached and self._t >= self.length
        if reached or truncated:
            self._started = False
        return self.render(), 1.0 if reached else 0.0, bool(reached), truncated

    def info(self) -> dict[str, Any]:
        """``{"cell": array([row, col])}``: where the agent is (for measuring exploration)."""
        return {"cell": np.array(self._cell, np.int64)}

    def cell_index(self, cell: tuple[int, int]) -> int:
        """A cell as one integer, ``row * side + col``."""
        return int(cell[0]) * self.side + int(cell[1])

    def distances(self, cell: tuple[int, int]) -> np.ndarray:
        """Shortest-path distances (moves) from ``cell`` to every cell (``-1`` for walls)."""
        out = grid_distances(self.free, [cell])
        return np.where(np.isfinite(out), out, -1).astype(np.int64)

    def render(self) -> np.ndarray:
        """The current observation, ``(image_size, image_size, 3)`` uint8."""
        grid = np.where(self.free[..., None], _FLOOR, _WALL).astype(np.uint8)
        if self.reward:
            grid[self.goal] = _GOAL
        grid[self._cell] = _AGENT
        return scale_grid(grid, self.image_size)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (for checkpoints)."""
        return {"cell": self._cell, "t": self._t, "started": self._started}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self._cell = (int(state["cell"][0]), int(state["cell"][1]))
        self._t, self._started = int(state["t"]), bool(state["started"])
