"""Catch: a small reactive game in pure NumPy, dense enough to learn on a CPU in minutes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hieros_lib.envs._render import check_step
from hieros_lib.errors import check, check_int

__all__ = ["Catch"]

_ROWS = 8
_FLOOR = np.array([16, 16, 40], np.uint8)
_BALL = np.array([255, 255, 255], np.uint8)
_PADDLE = np.array([64, 200, 96], np.uint8)
_CAUGHT = np.array([255, 220, 0], np.uint8)  # the ball resting on the paddle


class Catch:
    r"""Catch a falling ball with a paddle: one ball at a time, a reward for every ball that lands.

    The board has ``columns`` columns and 8 rows. A ball appears in the top row in a uniformly random
    column and falls one row per step; the paddle sits in the bottom row. On the step the ball reaches
    the bottom row (7 steps after it appeared) the reward is ``+1`` if the paddle is under it (the ball
    turns yellow) and ``-1`` otherwise; on the next step a new ball appears at the top. The paddle can
    cross the board before any ball lands, so every ball can be caught. Columns are wide (a quarter of
    the image by default), so the objects are large enough for a small world model to see early.

    Actions: ``0`` stay, ``1`` left, ``2`` right (blocked at the edges). An episode lasts ``length``
    steps and ends by time limit (truncation, never terminal).

    **Returns** for the defaults (``columns=4``, ``length=100``; 12 balls land, at steps 7, 15, ..., 95):

    - optimal: ``+12`` (:meth:`optimal_action` catches every ball);
    - uniformly random actions: ``-6.01`` per episode (standard error 0.02 over 20,000 episodes; a
      quarter of the balls are caught);
    - so "80% of the way from random to optimal" is a return of ``8.40``.

    Args:
        columns: Columns of the board (2 to 8).
        image_size: Height and width of the observation, a multiple of 8 and of ``columns`` (16 gives
            cells of 4 x 2 pixels).
        length: Steps per episode.
        seed: Seed of the environment's generator (ball columns, start position); reseeded by
            :meth:`reset`.

    Examples:
        >>> env = Catch(image_size=16, seed=0)
        >>> obs = env.reset()
        >>> obs.shape, obs.dtype
        ((16, 16, 3), dtype('uint8'))
        >>> total = 0.0
        >>> for _ in range(100):
        ...     obs, reward, terminated, truncated = env.step(env.optimal_action())
        ...     total += reward
        >>> total, terminated, truncated
        (12.0, False, True)
    """

    num_actions = 3
    action_meanings = ("stay", "left", "right")

    def __init__(
        self, *, columns: int = 4, image_size: int = 64, length: int = 100, seed: int | None = None
    ) -> None:
        self.columns = check_int(columns, "columns", minimum=2, maximum=8)
        multiple = math.lcm(_ROWS, self.columns)
        self.image_size = check_int(image_size, "image_size", minimum=1)
        check(self.image_size % multiple == 0, "image_size", f"a positive multiple of {multiple}",
              got=image_size)
        self.length = check_int(length, "length", minimum=1)
        self.obs_shape = (self.image_size, self.image_size, 3)
        self._rng = np.random.default_rng(None if seed is None else check_int(seed, "seed", minimum=0))
        self._t = 0
        self._ball = (0, 0)
        self._paddle = 0
        self._started = False

    def _spawn(self) -> None:
        self._ball = (0, int(self._rng.integers(self.columns)))

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; returns the first observation ``(image_size, image_size, 3)`` uint8.

        Args:
            seed: If given, reseed the generator first (same seed, same episode).
        """
        if seed is not None:
            self._rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
        self._t = 0
        self._paddle = int(self._rng.integers(self.columns))
        self._spawn()
        self._started = True
        return self.render()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Move the paddle, let the ball fall one row; returns ``(obs, reward, terminated, truncated)``.

        Raises:
            HierosError: On an action outside ``{0, 1, 2}`` or a step before :meth:`reset`.
        """
        action = check_step(self._started, action, 3, "0 (stay), 1 (left) or 2 (right)")
        move = (0, -1, 1)[int(action)]
        self._paddle = int(np.clip(self._paddle + move, 0, self.columns - 1))
        row, col = self._ball
        reward = 0.0
        if row == _ROWS - 1:  # the ball landed on the previous step: a new one appears at the top
            self._spawn()
        else:
            row += 1
            self._ball = (row, col)
            if row == _ROWS - 1:
                reward = 1.0 if col == self._paddle else -1.0
        self._t += 1
        truncated = self._t >= self.length
        if truncated:
            self._started = False
        return self.render(), reward, False, truncated

    def optimal_action(self) -> int:
        """The action that moves the paddle towards the ball's column (catches every ball)."""
        col = self._ball[1]
        return 0 if col == self._paddle else (1 if col < self._paddle else 2)

    def render(self) -> np.ndarray:
        """The current observation, ``(image_size, image_size, 3)`` uint8."""
        grid = np.empty((_ROWS, self.columns, 3), np.uint8)
        grid[:] = _FLOOR
        grid[_ROWS - 1, self._paddle] = _PADDLE
        row, col = self._ball
        grid[row, col] = _CAUGHT if (row == _ROWS - 1 and col == self._paddle) else _BALL
        size = self.image_size
        return np.repeat(np.repeat(grid, size // _ROWS, axis=0), size // self.columns, axis=1)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (for checkpoints)."""
        return {
            "t": self._t,
            "ball": self._ball,
            "paddle": self._paddle,
            "started": self._started,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self._t, self._ball = int(state["t"]), (int(state["ball"][0]), int(state["ball"][1]))
        self._paddle, self._started = int(state["paddle"]), bool(state["started"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
