"""The counters of a run: where it is, what is due next, and its running statistics."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hieros_lib.errors import check

__all__ = ["RunCounters"]


@dataclass
class RunCounters:
    """Everything a run counts, in one place (saved in every checkpoint and restored as one object).

    Every ``next_*`` is the environment step at which that event is due next; ``math.inf`` means never
    (an event switched off with ``every = 0``).

    Attributes:
        env_steps: Environment steps so far, summed over the ``N`` environments.
        due: Fractional training steps owed at the training ratio (carried between environment steps).
        updates: Training calls made (:meth:`HierosConfig.levels_due` reads this count).
        episodes: Finished training episodes.
        nonfinite_streak: Training calls in a row with a skipped (non-finite) update.
        nonfinite_total: All training calls with a skipped update.
        recent_returns: Returns of the last 20 training episodes.
        next_log: Next line of ``metrics.jsonl``.
        next_eval: Next evaluation.
        next_plot: Next redraw of the plots.
        next_checkpoint: Next periodic checkpoint.
        elapsed: Seconds of training so far (over resumptions).
        first_reward_step: The environment step of the first positive training reward (None before).
        cells: The distinct cells visited in training, for environments whose steps carry a ``"cell"``
            (:class:`~hieros_lib.envs.Rooms`), as sorted ``row * 1000 + col``.
    """

    env_steps: int = 0
    due: float = 0.0
    updates: int = 0
    episodes: int = 0
    nonfinite_streak: int = 0
    nonfinite_total: int = 0
    recent_returns: list[float] = field(default_factory=list)
    next_log: float = math.inf
    next_eval: float = math.inf
    next_plot: float = math.inf
    next_checkpoint: float = math.inf
    elapsed: float = 0.0
    first_reward_step: int | None = None
    cells: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, *, log_every: int, eval_every: int, plot_every: int, checkpoint_every: int) -> RunCounters:
        """The counters of a new run (an ``every`` of 0 switches that event off)."""
        return cls(
            next_log=log_every or math.inf,
            next_eval=eval_every or math.inf,
            next_plot=plot_every or math.inf,
            next_checkpoint=checkpoint_every or math.inf,
        )

    def add_return(self, value: float) -> None:
        """Count a finished training episode and remember its return (the last 20 are kept)."""
        self.episodes += 1
        self.recent_returns = [*self.recent_returns, float(value)][-20:]

    def state_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (for checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RunCounters:
        """Counters from :meth:`state_dict`.

        Raises:
            HierosError: If fields are missing or unknown.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        check(isinstance(state, dict) and set(state) == names, "counters", f"the fields {sorted(names)}",
              got=sorted(state) if isinstance(state, dict) else type(state).__name__)
        return cls(**state)
