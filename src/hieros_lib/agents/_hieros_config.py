"""The configuration of a Hieros agent, its training cadence, and the data its acting step returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from hieros_lib.agents._subactor import SubactorConfig, SubactorState
from hieros_lib.errors import check, check_float, check_int

__all__ = ["HierosConfig", "HierosState", "LevelStep"]


@dataclass(frozen=True, kw_only=True)
class HierosConfig:
    """The hierarchy (defaults: Hieros appendix E and the paper's runs).

    Attributes:
        levels: Number of levels (3); 1 is a single :class:`Subactor`, a DreamerV3-style agent.
        k: Subgoal interval (4): level ``i`` acts every ``k**i`` environment steps of its episode and
            observes the ``k`` states of level ``i - 1`` since its last step.
        level: The :class:`SubactorConfig` of every level (the observation, action and subgoal sizes and
            the autoencoder are set per level).
        novelty: Which levels have the novelty reward: ``"higher"`` (all but level 0, as the paper's runs),
            ``"all"`` or ``"none"``.
        window: What a higher level observes: ``"all"`` ``k`` states of the level below (the paper) or
            ``"last"``, only the ``k``-th (ablation G.5).
        higher_reward: A higher level's extrinsic reward over its window: ``"sum"`` of the environment
            rewards (so no reward is lost or rescaled) or ``"mean"`` (the official code).
        batch_size: Sequences per training batch, every level (16).
        sequence_length: Steps per sequence, every level (64: a level-1 sequence spans 256 environment
            steps).
        replay_capacity: Steps each level's replay keeps per environment.
        sampler: ``"etbs"`` (the paper, temperature ``replay_temperature``) or ``"uniform"``.
        replay_temperature: ETBS temperature (0.3).
    """

    levels: int = 3
    k: int = 4
    level: SubactorConfig = field(default_factory=SubactorConfig)
    novelty: str = "higher"
    window: str = "all"
    higher_reward: str = "sum"
    batch_size: int = 16
    sequence_length: int = 64
    replay_capacity: int = 1_000_000
    sampler: str = "etbs"
    replay_temperature: float = 0.3

    def __post_init__(self) -> None:
        check_int(self.levels, "levels", minimum=1)
        check_int(self.k, "k", minimum=1)
        check(isinstance(self.level, SubactorConfig), "level", "a SubactorConfig", got=type(self.level))
        check(
            self.novelty in ("higher", "all", "none"),
            "novelty",
            "'higher', 'all' or 'none'",
            got=repr(self.novelty),
        )
        check(self.window in ("all", "last"), "window", "'all' or 'last'", got=repr(self.window))
        check(
            self.higher_reward in ("sum", "mean"),
            "higher_reward",
            "'sum' or 'mean'",
            got=repr(self.higher_reward),
        )
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.sequence_length, "sequence_length", minimum=2)
        check_int(self.replay_capacity, "replay_capacity", minimum=self.sequence_length)
        check(self.sampler in ("etbs", "uniform"), "sampler", "'etbs' or 'uniform'", got=repr(self.sampler))
        check_float(self.replay_temperature, "replay_temperature", minimum=0.0, maximum=1.0)

    def replace(self, **changes: Any) -> HierosConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def level_config(self, index: int) -> SubactorConfig:
        """The :class:`SubactorConfig` of level ``index``."""
        novelty = self.novelty == "all" or (self.novelty == "higher" and index > 0)
        receives_goal = index < self.levels - 1
        return self.level.replace(novelty=novelty, autoencoder=novelty or receives_goal)

    def phase_period(self, index: int) -> int:
        """``k**index``: level ``index`` acts every this many environment steps of an episode, and trains
        at every this-many-th training call."""
        return int(self.k**index)

    def levels_due(self, call: int) -> tuple[int, ...]:
        """The levels that train at training call ``call`` (0, 1, ...): level ``i`` at every ``k**i``-th.

        A pure function of the call count (the trainer keeps the count): level 0 trains at every call,
        level 1 at every ``k``-th, level 2 at every ``k**2``-th, as the levels act ``k`` times less often
        each. A level without a full sequence in its replay yet is skipped by the caller.

        Examples:
            >>> config = HierosConfig(levels=3, k=2)
            >>> [config.levels_due(call) for call in range(5)]
            [(0, 1, 2), (0,), (0, 1), (0,), (0, 1, 2)]
        """
        call = check_int(call, "call", minimum=0)
        return tuple(i for i in range(self.levels) if call % self.phase_period(i) == 0)


class LevelStep(NamedTuple):
    """One level's transitions of one environment step, for its replay.

    Attributes:
        mask: ``(N,)`` bool, the environments where the level took a step.
        data: The step fields, ``(N, ...)`` tensors: ``obs``, ``reward``, ``is_first``, ``is_last``,
            ``is_terminal``, ``action`` (an index for level 0, or a ``(d,)`` vector for continuous
            actions; the flattened one-hot subgoal above it) and ``goal`` (the subgoal the level held,
            for every level but the top).
    """

    mask: torch.Tensor
    data: dict[str, torch.Tensor]


class HierosState(NamedTuple):
    """The acting state of the hierarchy for ``N`` environments; every tensor has a leading ``N``.

    Attributes:
        levels: Per level, its :class:`~hieros_lib.agents.SubactorState` (world-model state and last
            action).
        goals: Per level, the one-hot subgoal ``(N, groups, classes)`` it holds (zeros for the top level).
        windows: Per level, ``(N, k, F)``: the states ``(h, z)`` of the level below since its last step,
            newest last, zeros where fewer (level 0's is empty, ``(N, 0, 0)``).
        rewards: ``(N, levels)``: environment reward since each level's last step (column 0 unused).
        counts: ``(N, levels)``: environment steps in ``rewards``.
        step: ``(N,)``: steps since the episode started (0 on its first step).
    """

    levels: tuple[SubactorState, ...]
    goals: tuple[torch.Tensor, ...]
    windows: tuple[torch.Tensor, ...]
    rewards: torch.Tensor
    counts: torch.Tensor
    step: torch.Tensor
