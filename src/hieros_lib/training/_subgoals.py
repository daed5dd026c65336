"""Subgoal achievement: does a level get closer to the subgoals the level above gives it?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hieros_lib._tree import to_host
from hieros_lib.agents import Hieros, HierosState, LevelStep

__all__ = ["SubgoalTracker"]


class SubgoalTracker:
    """Measures, for every level that receives subgoals, how its state moves towards them.

    A *window* of level ``i`` is the stretch between two steps of level ``i + 1``, during which level
    ``i`` holds one subgoal ``g`` (decoded by level ``i``'s autoencoder into its ``h`` space). At the
    window's start the tracker records ``cos(h_start, g)``, at its end ``cos(h_end, g)``, with ``h`` the
    level's deterministic state; the *achievement* is their difference: positive when the level moved
    towards its subgoal. Windows that start on the last step of an episode are left out (the next
    episode starts elsewhere). Sums stay on the device; :meth:`result` reads them once per log line.

    Metrics per level ``i``: ``subgoal/level{i}/cos_start``, ``.../cos_end``, ``.../achievement`` (the
    means over the windows that ended since the last call) and ``.../windows``.
    """

    def __init__(self, agent: Hieros) -> None:
        self.agent = agent
        self.levels = len(agent.levels) - 1  # the levels that receive subgoals
        self._start: list[torch.Tensor | None] = [None] * self.levels
        self._sums: dict[str, torch.Tensor] = {}

    def _cosines(self, index: int, state: HierosState, goals: torch.Tensor) -> torch.Tensor:
        level = self.agent.level(index)
        autoencoder = level.autoencoder
        assert autoencoder is not None
        h = level.model.deter(state.levels[index].model).float()
        target = autoencoder.decode(goals.to(next(autoencoder.parameters()).dtype)).float()
        return F.cosine_similarity(h, target, dim=-1)

    @torch.no_grad()
    def update(self, before: HierosState, after: HierosState, steps: Sequence[LevelStep]) -> None:
        """Account for one acting step (the agent's state before and after it, and its level steps)."""
        for i in range(self.levels):
            new_goal = steps[i + 1].mask  # level i + 1 acted: level i's window ends, a new one starts
            start = self._start[i]
            if start is not None:
                ended = new_goal & ~torch.isnan(start)
                end = self._cosines(i, after, before.goals[i])
                weight = ended.float()
                self._add(f"subgoal/level{i}/cos_start", (torch.nan_to_num(start) * weight).sum())
                self._add(f"subgoal/level{i}/cos_end", (end * weight).sum())
                self._add(f"subgoal/level{i}/achievement", ((end - torch.nan_to_num(start)) * weight).sum())
                self._add(f"subgoal/level{i}/windows", weight.sum())
            fresh = self._cosines(i, after, after.goals[i])
            fresh = torch.where(steps[0].data["is_last"], torch.full_like(fresh, float("nan")), fresh)
            self._start[i] = fresh if start is None else torch.where(new_goal, fresh, start)

    def _add(self, key: str, value: torch.Tensor) -> None:
        value = value.to(torch.float64)
        self._sums[key] = value if key not in self._sums else self._sums[key] + value

    def result(self) -> dict[str, float]:
        """The means over the windows ended since the last call (then reset); empty without windows."""
        host = {key: float(value) for key, value in to_host(self._sums).items()}
        self._sums = {}
        out: dict[str, float] = {}
        for i in range(self.levels):
            windows = host.get(f"subgoal/level{i}/windows", 0.0)
            if windows > 0:
                for name in ("cos_start", "cos_end", "achievement"):
                    out[f"subgoal/level{i}/{name}"] = host[f"subgoal/level{i}/{name}"] / windows
                out[f"subgoal/level{i}/windows"] = windows
        return out

    def state_dict(self) -> dict[str, Any]:
        """The open windows and the running sums (on the CPU), for checkpoints."""
        return {
            "start": [None if s is None else s.cpu() for s in self._start],
            "sums": {k: v.cpu() for k, v in self._sums.items()},
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """Restore :meth:`state_dict`."""
        self._start = [None if s is None else s.to(device) for s in state["start"]]
        self._sums = {k: v.to(device) for k, v in state["sums"].items()}
