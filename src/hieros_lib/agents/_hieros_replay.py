"""The replays of a Hieros agent: one per level and environment, sampled into training batches."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_lib._tree import to_host
from hieros_lib.agents._hieros_config import HierosConfig, LevelStep
from hieros_lib.errors import NonFiniteError, check, check_int
from hieros_lib.replay import ETBSampler, SequenceReplay, UniformSampler

__all__ = ["HierosReplay"]


class HierosReplay:
    """Storage and sampling for the levels of a :class:`~hieros_lib.agents.Hieros` agent.

    Level ``i`` steps at different moments in different environments (every ``k**i`` steps of *that
    environment's* episode), so each level keeps one :class:`~hieros_lib.replay.SequenceReplay` per
    environment, sampled by the config's sampler (ETBS at temperature 0.3 by default). A batch of level
    ``i`` draws, for each of its ``batch_size`` sequences, an environment with probability proportional
    to the sequences it holds, then a sequence from that environment's replay.

    The agent itself holds no storage: :meth:`Hieros.policy <hieros_lib.agents.Hieros.policy>` returns
    the :class:`~hieros_lib.agents.LevelStep` of every level, :meth:`add` stores them, :meth:`sample`
    builds the batches that :meth:`Hieros.train_step <hieros_lib.agents.Hieros.train_step>` takes. Any
    buffer of your own that hands out the same batches can take its place.

    Args:
        config: The agent's :class:`~hieros_lib.agents.HierosConfig` (levels, sequence length, batch
            size, capacity, sampler).
        num_envs: ``N``, the environments the agent acts in.
        num_actions: The environment's number of discrete actions (level 0's actions are stored as
            indices and returned one-hot), or ``None`` for continuous actions (stored as vectors).
        seed: Seed of the samplers and of the choice of environments (its own generator).

    Examples:
        >>> import torch
        >>> from hieros_lib.agents import Hieros, HierosConfig, HierosReplay, SubactorConfig
        >>> config = HierosConfig(levels=2, k=2, level=SubactorConfig.tiny(), sequence_length=4)
        >>> agent = Hieros(config, obs_shape=(16, 16, 3), num_actions=3, num_envs=1)
        >>> replay = HierosReplay(config, num_envs=1, num_actions=3, seed=0)
        >>> state, g = agent.initial_state(), torch.Generator().manual_seed(0)
        >>> for t in range(6):  # level 1 acts at steps 0, 2 and 4: not yet a sequence of 4
        ...     step = {"obs": torch.zeros(1, 16, 16, 3, dtype=torch.uint8), "reward": torch.zeros(1),
        ...             "is_first": torch.tensor([t == 0]), "is_last": torch.zeros(1, dtype=torch.bool),
        ...             "is_terminal": torch.zeros(1, dtype=torch.bool)}
        ...     action, state, level_steps = agent.policy(step, state, generator=g)
        ...     replay.add(level_steps)
        >>> replay.ready(0), replay.ready(1)
        (True, False)
        >>> replay.sample(0, 2)["obs"].shape
        torch.Size([2, 4, 16, 16, 3])
    """

    def __init__(
        self, config: HierosConfig, *, num_envs: int, num_actions: int | None, seed: int = 0
    ) -> None:
        check(isinstance(config, HierosConfig), "config", "a HierosConfig", got=type(config).__name__)
        self.config = config
        self.num_envs = check_int(num_envs, "num_envs", minimum=1)
        if num_actions is not None:
            num_actions = check_int(num_actions, "num_actions", minimum=1)
        self.num_actions = num_actions
        self.seed = check_int(seed, "seed", minimum=0)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
        self.replays: list[list[SequenceReplay]] = [
            [self._make(level, env) for env in range(self.num_envs)] for level in range(config.levels)
        ]

    def _make(self, level: int, env: int) -> SequenceReplay:
        c = self.config
        seed = int(np.random.SeedSequence([self.seed, 2, level, env]).generate_state(1)[0])
        sampler: Any
        if c.sampler == "etbs":
            sampler = ETBSampler(temperature=c.replay_temperature, generator=seed)
        else:
            sampler = UniformSampler(generator=seed)
        return SequenceReplay(
            c.replay_capacity,
            sequence_length=c.sequence_length,
            num_envs=1,
            sampler=sampler,
            num_actions=self.num_actions if level == 0 else None,
        )

    def __len__(self) -> int:
        """The number of levels."""
        return len(self.replays)

    def add(self, steps: Sequence[LevelStep]) -> None:
        """Store the transitions of one :meth:`Hieros.policy <hieros_lib.agents.Hieros.policy>` call.

        Every level's masked rows go into the replays of the environments where it stepped. All tensors
        reach the host in one device-to-host copy.

        Raises:
            NonFiniteError: If a value is NaN or infinite (nothing of the step is stored).
            HierosError: On a wrong number of levels, or a step the replays refuse.
        """
        check(
            len(steps) == len(self.replays),
            "steps",
            f"one LevelStep per level ({len(self.replays)})",
            got=len(steps),
        )
        flat: dict[str, torch.Tensor] = {}
        for i, level_step in enumerate(steps):
            flat[f"{i}/mask"] = level_step.mask
            flat.update({f"{i}/{key}": value for key, value in level_step.data.items()})
        host = to_host(flat)
        for name, value in host.items():  # before anything is stored: a step is stored whole or not at all
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                level, key = name.split("/", 1)
                raise NonFiniteError(
                    f"level {level} step[{key!r}]: expected finite values, got NaN or inf (a diverged "
                    "agent acts with NaN)"
                )
        for i, level_step in enumerate(steps):
            mask = host[f"{i}/mask"]
            if not mask.any():
                continue
            data = {key: host[f"{i}/{key}"] for key in level_step.data}
            for env in np.nonzero(mask)[0]:
                self.replays[i][env].add({key: value[env : env + 1] for key, value in data.items()})

    def ready(self, level: int) -> bool:
        """Whether level ``level`` holds a full sequence in some environment."""
        return any(replay.num_items > 0 for replay in self.replays[level])

    def sample(
        self, level: int, batch_size: int | None = None, *, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """A training batch of ``batch_size`` sequences of level ``level`` (``config.batch_size`` if None).

        Returns:
            The stored fields as ``(B, T, ...)`` tensors on ``device`` (the CPU if None).

        Raises:
            HierosError: If no environment holds a full sequence of that level yet.
        """
        size = self.config.batch_size if batch_size is None else batch_size
        size = check_int(size, "batch_size", minimum=1)
        replays = self.replays[level]
        items = np.array([replay.num_items for replay in replays], dtype=np.float64)
        check(
            items.sum() > 0,
            f"level {level} replay",
            f"a full sequence of {self.config.sequence_length} steps in some environment",
            got="none yet",
        )
        counts = self._rng.multinomial(size, items / items.sum())
        parts = [replays[env].sample(int(count)) for env, count in enumerate(counts) if count]
        return {key: torch.cat([part[key] for part in parts]).to(device or "cpu") for key in parts[0]}

    # ------------------------------------------------------------------------------------------ disk
    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write every replay (and its sampler) as ``level<i>_env<j>.npz`` into ``directory``.

        Returns:
            The files written.
        """
        directory = Path(directory)
        files = []
        for i, replays in enumerate(self.replays):
            for env, replay in enumerate(replays):
                path = directory / f"level{i}_env{env}.npz"
                replay.save(path)
                files.append(path)
        return files

    def load(self, directory: str | os.PathLike[str]) -> None:
        """Read the replays written by :meth:`save` (each validated; see
        :meth:`~hieros_lib.replay.SequenceReplay.load`)."""
        directory = Path(directory)
        for i, replays in enumerate(self.replays):
            for env, replay in enumerate(replays):
                replay.load(directory / f"level{i}_env{env}.npz")

    def state_dict(self) -> dict[str, Any]:
        """The generator that chooses environments (the samplers' states are saved with the replays)."""
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        check(isinstance(state, Mapping) and "rng" in state, "state", "a HierosReplay state_dict")
        self._rng.bit_generator.state = state["rng"]
