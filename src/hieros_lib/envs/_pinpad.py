"""PinPad: visit coloured pads in a fixed order; a sparse task that rewards exploration and planning.

A reimplementation, from its description, of the Visual Pinpad task of Director (Hafner et al., "Deep
Hierarchical Planning from Pixels", 2022); the room layout and pad placement here are our own.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from hieros_lib.envs._render import check_image_size, check_step, grid_distances, scale_grid
from hieros_lib.errors import check, check_int

__all__ = ["PinPad"]

_ROWS, _COLS = 14, 16  # the room (walls included); two rows below it show the sequence: a 16 x 16 grid
_GRID = 16
# Pad rectangles (row, col, height, width) inside the room, in pad order 1..8; task "n" uses the first n.
_PADS = (
    (1, 1, 3, 3),  # 1: top left
    (1, 12, 3, 3),  # 2: top right
    (10, 1, 3, 3),  # 3: bottom left
    (10, 12, 3, 3),  # 4: bottom right
    (1, 7, 2, 2),  # 5: top middle
    (11, 7, 2, 2),  # 6: bottom middle
    (6, 1, 2, 2),  # 7: left middle
    (6, 13, 2, 2),  # 8: right middle
)
_COLOURS = np.array(
    [
        (255, 0, 0),  # red
        (0, 200, 0),  # green
        (0, 0, 255),  # blue
        (230, 230, 0),  # yellow
        (255, 0, 255),  # magenta
        (0, 220, 220),  # cyan
        (128, 0, 160),  # purple
        (0, 128, 128),  # teal
    ],
    np.float64,
)
_TASKS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_MOVES = ((0, 0), (-1, 0), (1, 0), (0, 1), (0, -1))  # noop, up, down, right, left
_REWARD = 10.0
_COUNTDOWN = 10


def _layout(num_pads: int) -> np.ndarray:
    """``(14, 16)`` int: -1 wall, 0 floor, p > 0 pad p."""
    layout = np.zeros((_ROWS, _COLS), np.int64)
    layout[0], layout[-1], layout[:, 0], layout[:, -1] = -1, -1, -1, -1
    for pad, (r, c, h, w) in enumerate(_PADS[:num_pads], start=1):
        layout[r : r + h, c : c + w] = pad
    return layout


def _distances(layout: np.ndarray, pad: int, through: int) -> np.ndarray:
    """Steps from every cell to the nearest cell of ``pad`` without entering any other pad but
    ``through`` (the one the player may stand on): breadth-first, blocked cells are ``inf``."""
    open_cells = (layout == 0) | (layout == pad) | (layout == through)
    return grid_distances(open_cells, list(zip(*np.nonzero(layout == pad), strict=True)))


class PinPad:
    r"""Visit the pads ``1, 2, ..., N`` in this order; ``+10`` for each completed sequence.

    A 16 x 14 room with walls around it holds ``N`` coloured pads (``task`` names ``N``: ``"three"`` to
    ``"eight"``). The player (black) moves one cell per step: ``0`` noop, ``1`` up, ``2`` down, ``3``
    right, ``4`` left; walls block. Entering a pad appends it to the visited sequence (a pad is not
    appended twice in a row; only the last ``N`` entries are kept). When the last ``N`` entries are
    ``1, ..., N`` the step's reward is ``+10`` and a 10-step countdown starts (the background turns pale
    green); when it ends, the player reappears on a random free cell and the sequence is cleared.
    Episodes last ``length`` steps and end by time limit only (truncation; never terminal), as in
    Director, whose runs use 2000 steps.

    The observation is a 16 x 16 grid of cells scaled to ``image_size``: white floor (pale green in the
    countdown), grey walls, each pad in a pale tint of its colour (in full colour while the player
    stands on it), the player in black, and below the room a grey bar that shows the visited sequence as
    coloured cells.

    **Returns** per 1000 steps (they scale with ``length``), measured over 200 episodes of 1000 steps with
    :meth:`optimal_action` (a shortest path to the next pad that enters no other pad, which is optimal
    up to the random respawns) and over 1000 episodes (50 for four pads) of uniformly random actions:

    ========  ==========  =============================
    task      scripted    random
    ========  ==========  =============================
    three     225         1.3 (a sequence every ~8,000 steps)
    four      186         0.2
    five      151         0 (none in 10^6 steps)
    six       131         0
    seven     116         0
    eight     100         0
    ========  ==========  =============================

    The reward is sparse: a random policy almost never completes even the three-pad sequence, which is
    why the task tests exploration (and, in Director and Hieros, hierarchy).

    Args:
        task: ``"three"``, ``"four"``, ..., ``"eight"`` (the number of pads).
        image_size: Height and width of the observation, a multiple of 16.
        length: Steps per episode.
        seed: Seed of the generator (spawn cells); reseeded by :meth:`reset`.

    Examples:
        >>> env = PinPad("three", image_size=16, length=200, seed=0)
        >>> obs = env.reset()
        >>> obs.shape
        (16, 16, 3)
        >>> total = sum(env.step(env.optimal_action())[1] for _ in range(200))
        >>> total >= 40.0
        True
    """

    num_actions = 5
    action_meanings = ("noop", "up", "down", "right", "left")

    def __init__(
        self, task: str = "three", *, image_size: int = 64, length: int = 2000, seed: int | None = None
    ) -> None:
        check(task in _TASKS, "task", f"one of {list(_TASKS)}", got=repr(task))
        self.task = task
        self.num_pads = _TASKS[task]
        self.image_size = check_image_size(image_size, _GRID)
        self.length = check_int(length, "length", minimum=1)
        self.obs_shape = (self.image_size, self.image_size, 3)
        self._layout = _layout(self.num_pads)
        self._free = np.argwhere(self._layout >= 0)
        pads = range(1, self.num_pads + 1)
        # _dist[target - 1][here]: distances to pad `target` for a player on pad `here` (0: on the floor)
        self._dist = [[_distances(self._layout, t, here) for here in range(self.num_pads + 1)] for t in pads]
        self._target = tuple(range(1, self.num_pads + 1))
        self._rng = np.random.default_rng(None if seed is None else check_int(seed, "seed", minimum=0))
        self._pos = (1, 1)
        self._sequence: deque[int] = deque(maxlen=self.num_pads)
        self._countdown = 0
        self._t = 0
        self._started = False

    def _respawn(self) -> None:
        r, c = self._free[int(self._rng.integers(len(self._free)))]
        self._pos = (int(r), int(c))
        self._sequence.clear()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode at a random free cell; returns the first observation.

        Args:
            seed: If given, reseed the generator first.
        """
        if seed is not None:
            self._rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
        self._t = 0
        self._countdown = 0
        self._respawn()
        self._enter_pad()
        self._started = True
        return self.render()

    def _enter_pad(self) -> None:
        pad = int(self._layout[self._pos])
        if pad > 0 and (not self._sequence or self._sequence[-1] != pad):
            self._sequence.append(pad)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Move one cell; returns ``(obs, reward, terminated, truncated)``.

        Raises:
            HierosError: On an action outside ``0 .. 4`` or a step before :meth:`reset`.
        """
        action = check_step(self._started, action, 5, "an int in [0, 5): noop, up, down, right, left")
        if self._countdown > 0:
            self._countdown -= 1
            if self._countdown == 0:
                self._respawn()
        dr, dc = _MOVES[int(action)]
        r, c = self._pos[0] + dr, self._pos[1] + dc
        if self._layout[r, c] >= 0:
            self._pos = (r, c)
        self._enter_pad()
        reward = 0.0
        if self._countdown == 0 and tuple(self._sequence) == self._target:
            reward = _REWARD
            self._countdown = _COUNTDOWN
        self._t += 1
        truncated = self._t >= self.length
        if truncated:
            self._started = False
        return self.render(), reward, False, truncated

    def _next_pad(self) -> int:
        """The pad to visit next: one past the longest run ``1..j`` at the end of the sequence."""
        seq = list(self._sequence)
        for j in range(min(len(seq), self.num_pads - 1), 0, -1):
            if seq[-j:] == list(range(1, j + 1)):
                return j + 1
        return 1

    def optimal_action(self) -> int:
        """A shortest-path action to the next pad in order that enters no other pad (noop during the
        countdown)."""
        if self._countdown > 0:
            return 0
        r, c = self._pos
        dist = self._dist[self._next_pad() - 1][max(int(self._layout[r, c]), 0)]
        best, best_d = 0, dist[r, c]
        for a, (dr, dc) in enumerate(_MOVES[1:], start=1):
            d = dist[r + dr, c + dc]
            if d < best_d:
                best, best_d = a, d
        return best

    def render(self) -> np.ndarray:
        """The current observation, ``(image_size, image_size, 3)`` uint8."""
        grid = np.full((_GRID, _GRID, 3), 255.0)
        if self._countdown > 0:
            grid[:_ROWS] = (223.0, 255.0, 223.0)
        layout = self._layout
        grid[:_ROWS][layout < 0] = 192.0
        here = int(layout[self._pos])
        for pad in range(1, self.num_pads + 1):
            colour = _COLOURS[pad - 1]
            tint = colour if pad == here else 0.1 * colour + 0.9 * 255.0
            grid[:_ROWS][layout == pad] = tint
        grid[self._pos] = 0.0
        grid[_ROWS:] = 192.0
        for i, pad in enumerate(self._sequence):
            grid[_ROWS, 2 * i + 1] = _COLOURS[pad - 1]
        return scale_grid(grid.astype(np.uint8), self.image_size)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (for checkpoints)."""
        return {
            "pos": self._pos,
            "sequence": list(self._sequence),
            "countdown": self._countdown,
            "t": self._t,
            "started": self._started,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self._pos = (int(state["pos"][0]), int(state["pos"][1]))
        self._sequence = deque((int(p) for p in state["sequence"]), maxlen=self.num_pads)
        self._countdown, self._t = int(state["countdown"]), int(state["t"])
        self._started = bool(state["started"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
