"""Hieros: a hierarchy of subactors that propose subgoals to the level below (paper section 2.1)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from hieros_lib.agents._subactor import Subactor, SubactorConfig, SubactorState
from hieros_lib.errors import check, check_float, check_int
from hieros_lib.replay import ETBSampler, SequenceReplay, UniformSampler

__all__ = ["Hieros", "HierosConfig", "HierosState", "LevelStep"]


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


class LevelStep(NamedTuple):
    """One level's transitions of one environment step, for its replay.

    Attributes:
        mask: ``(N,)`` bool, the environments where the level took a step.
        data: The step fields, ``(N, ...)`` tensors: ``obs``, ``reward``, ``is_first``, ``is_last``,
            ``is_terminal``, ``action`` (an index for level 0, the flattened one-hot subgoal above it) and
            ``goal`` (the subgoal the level held, for every level but the top).
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


def _where(mask: torch.Tensor, new: Any, old: Any) -> Any:
    """Per environment (leading dim), ``new`` where ``mask`` else ``old``, over nested states."""
    if isinstance(new, torch.Tensor):
        return torch.where(mask.reshape(-1, *([1] * (new.dim() - 1))), new, old)
    if isinstance(new, tuple):
        items = [_where(mask, a, b) for a, b in zip(new, old, strict=True)]
        return type(new)(*items) if hasattr(new, "_fields") else tuple(items)
    raise TypeError(f"_where: unsupported state element {type(new).__name__}")


class Hieros(nn.Module):
    r"""The Hieros agent: ``levels`` :class:`~hieros_lib.agents.Subactor` s, each with its own world model.

    **Levels.** Level 0 acts in the environment. Level ``i > 0`` observes, as one vector, the ``k``
    consecutive world-model states ``(h, z)`` (:meth:`WorldModel.features`) of level ``i - 1`` since its
    last step (the paper's "all intermediate states"; ``window="last"`` keeps only the ``k``-th, ablation
    G.5). It acts every ``k**i`` steps *of the episode of that environment* (its phase restarts at every
    ``is_first``), so its action, a one-hot ``8 x 8`` subgoal, is held for ``k`` steps of level ``i - 1``.
    The observation includes the current lower state, so no level sees the level below one step late (the
    official code does).

    **Rewards.** Equation 1 per level, each term with its own critic: the extrinsic reward (for level ``i >
    0`` the sum of the environment rewards over its window, so episode ends lose nothing; the official
    code stores the mean, and zeroes the last reward of every episode), the subgoal reward against the
    subgoal of the level above decoded by this level's autoencoder (all but the top level; weight 0.3),
    and the novelty reward (by default the higher levels, as the paper's runs; weight 0.1).

    **Episodes.** A step with ``is_last`` is a step of every level, so a window cut short by the end of
    an episode is stored with its reward and flags; the next step (``is_first``) starts every level's
    phase and window afresh, for that environment only.

    **Replay and training.** Each level keeps its own replay, one per environment (higher levels step at
    different times in different environments), sampled by ETBS (temperature 0.3). :meth:`train_step`
    is one training step of level 0; level ``i`` trains at every ``k**i``-th call, once its replay holds
    a full sequence.

    **Acting** (:meth:`policy`) is explicit: the :class:`HierosState` goes in and comes out, with the
    transitions each level took (:class:`LevelStep`), which :meth:`store` adds to the replays. In
    ``mode="eval"`` every level takes the mode of its policy: hard one-hot subgoals (the official code
    hands probabilities to the level below in evaluation).

    Args:
        config: :class:`HierosConfig`.
        obs_shape: The environment's observation shape, ``(H, W, C)`` or ``(D,)``.
        num_actions: The environment's number of actions.
        num_envs: ``N``, the environments acted in (and replays kept per level).
        seed: Seed of the replays' samplers.
        device: Device of the parameters and of the tensors :meth:`policy` and :meth:`sample` return.

    Examples:
        >>> import torch
        >>> from hieros_lib.agents import Hieros, HierosConfig, SubactorConfig
        >>> agent = Hieros(HierosConfig(levels=2, k=2, level=SubactorConfig.tiny(), sequence_length=4),
        ...                obs_shape=(16, 16, 3), num_actions=3, num_envs=2, seed=0)
        >>> state = agent.initial_state()
        >>> step = {"obs": torch.zeros(2, 16, 16, 3, dtype=torch.uint8), "reward": torch.zeros(2),
        ...         "is_first": torch.ones(2, dtype=torch.bool), "is_last": torch.zeros(2, dtype=torch.bool),
        ...         "is_terminal": torch.zeros(2, dtype=torch.bool)}
        >>> action, state, steps = agent.policy(step, state, generator=torch.Generator().manual_seed(0))
        >>> action.shape, [bool(s.mask.all()) for s in steps]
        (torch.Size([2]), [True, True])
    """

    def __init__(
        self,
        config: HierosConfig,
        *,
        obs_shape: tuple[int, ...],
        num_actions: int,
        num_envs: int = 1,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(config, HierosConfig), "config", "a HierosConfig", got=type(config).__name__)
        self.config = config
        self.num_envs = check_int(num_envs, "num_envs", minimum=1)
        self.num_actions = check_int(num_actions, "num_actions", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        base = config.level
        goal = (base.subgoal_groups, base.subgoal_classes)
        levels: list[Subactor] = []
        obs: tuple[int, ...] = tuple(int(d) for d in obs_shape)
        for i in range(config.levels):
            level_config = config.level_config(i)
            action_shape: tuple[int, ...] = (num_actions,) if i == 0 else goal
            goal_shape = goal if i < config.levels - 1 else None
            level = Subactor(level_config, obs_shape=obs, action_shape=action_shape, goal_shape=goal_shape)
            levels.append(level)
            features = level.model.feature_dim
            obs = (features,) if config.window == "last" else (config.k * features,)
        self.levels = nn.ModuleList(levels)
        self.feature_dims = [level.model.feature_dim for level in levels]
        if device is not None:
            self.to(device)
            for level in levels:  # optimisers over the moved parameters
                level._optimizers = level._make_optimizers()
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
        self.replays = [
            [self._make_replay(i, env) for env in range(self.num_envs)] for i in range(config.levels)
        ]
        self.train_calls = 0

    # ------------------------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def level(self, index: int) -> Subactor:
        """Level ``index`` (0 acts in the environment)."""
        return self.levels[index]  # type: ignore[return-value]

    def _make_replay(self, index: int, env: int) -> SequenceReplay:
        c = self.config
        seed = np.random.SeedSequence([self.seed, 2, index, env]).generate_state(1)[0]
        sampler: Any
        if c.sampler == "etbs":
            sampler = ETBSampler(temperature=c.replay_temperature, generator=int(seed))
        else:
            sampler = UniformSampler(generator=int(seed))
        return SequenceReplay(
            c.replay_capacity,
            sequence_length=c.sequence_length,
            num_envs=1,
            sampler=sampler,
            num_actions=self.num_actions if index == 0 else None,
        )

    def phase_period(self, index: int) -> int:
        """``k**index``: level ``index`` acts every this many environment steps of an episode."""
        return int(self.config.k**index)

    # ------------------------------------------------------------------------------------- acting
    def initial_state(self) -> HierosState:
        """The state before any step, for the ``num_envs`` environments."""
        n, device = self.num_envs, self.device
        c = self.config.level
        goals = tuple(torch.zeros(n, c.subgoal_groups, c.subgoal_classes, device=device) for _ in self.levels)
        windows = [torch.zeros(n, 0, 0, device=device)]
        for i in range(1, len(self.levels)):
            windows.append(torch.zeros(n, self.config.k, self.feature_dims[i - 1], device=device))
        levels = tuple(self.level(i).initial_state(n) for i in range(len(self.levels)))
        zeros = torch.zeros(n, len(self.levels), device=device)
        return HierosState(
            levels,
            goals,
            tuple(windows),
            zeros,
            zeros.clone(),
            torch.zeros(n, dtype=torch.long, device=device),
        )

    def _level_obs(self, window: torch.Tensor) -> torch.Tensor:
        return window[:, -1] if self.config.window == "last" else window.flatten(1)

    @torch.no_grad()
    def policy(
        self,
        step: Mapping[str, torch.Tensor],
        state: HierosState,
        *,
        mode: str = "train",
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, HierosState, list[LevelStep]]:
        """Observe one environment step of ``N`` environments bottom-up, then act top-down.

        Args:
            step: ``obs``, ``reward``, ``is_first``, ``is_last``, ``is_terminal``, ``(N, ...)`` tensors on
                :attr:`device` (a step of :class:`~hieros_lib.envs.GymAdapter` as tensors).
            state: The previous :class:`HierosState` (:meth:`initial_state` at the start).
            mode: ``"train"`` (sample) or ``"eval"`` (the mode of every level's policy and latents).
            generator: Random generator for every sample.

        Returns:
            ``(action, state, steps)``: ``(N,)`` action indices for the environment, the new state, and
            per level the :class:`LevelStep` it took (store them with :meth:`store` when training).
        """
        check(mode in ("train", "eval"), "mode", "'train' or 'eval'", got=repr(mode))
        fields = ("obs", "reward", "is_first", "is_last", "is_terminal")
        missing = [f for f in fields if f not in step]
        check(not missing, "step", f"the fields {fields}", got=f"missing {missing}")
        c, n, num_levels = self.config, self.num_envs, len(self.levels)
        sample = mode == "train"
        first, last, terminal = step["is_first"], step["is_last"], step["is_terminal"]
        reward = step["reward"].to(state.rewards.dtype)
        check(
            first.shape == (n,) and first.dtype == torch.bool,
            "step['is_first']",
            f"a bool tensor of shape ({n},)",
            got=f"{first.dtype} {tuple(first.shape)}",
        )
        tau = torch.where(first, torch.zeros_like(state.step), state.step + 1)
        keep = (~first).to(reward.dtype)[:, None]
        rewards = state.rewards * keep + reward[:, None]
        counts = state.counts * keep + 1.0
        active = [torch.ones(n, dtype=torch.bool, device=tau.device)]
        active += [(tau % self.phase_period(i) == 0) | last for i in range(1, num_levels)]
        windows = list(state.windows)
        posteriors: list[Any] = []
        inputs: list[dict[str, torch.Tensor]] = []
        level_rewards: list[torch.Tensor] = [reward]
        # bottom-up: every active level observes; the level above's window receives its new state
        for i in range(num_levels):
            level = self.level(i)
            if i == 0:
                obs = step["obs"]
            else:
                below = self.level(i - 1).model.features(posteriors[i - 1]).to(windows[i].dtype)
                base = _where(first, torch.zeros_like(windows[i]), windows[i])  # a new episode: empty
                shifted = torch.cat([base[:, 1:], below[:, None]], 1)
                windows[i] = _where(active[i - 1], shifted, base)
                obs = self._level_obs(windows[i])
                total = rewards[:, i]
                level_rewards.append(total / counts[:, i] if c.higher_reward == "mean" else total)
            level_input = {"obs": obs, "is_first": first, "reward": level_rewards[i]}
            inputs.append(level_input)
            posterior = level.observe(level_input, state.levels[i], sample=sample, generator=generator)
            posteriors.append(_where(active[i], posterior, state.levels[i].model))
        # top-down: active levels act; a new subgoal reaches the level below before it acts
        goals = list(state.goals)
        actions: list[torch.Tensor] = [torch.empty(0)] * num_levels
        for i in reversed(range(num_levels)):
            goal = goals[i] if i < num_levels - 1 else None
            action = self.level(i).act(posteriors[i], goal, sample=sample, generator=generator)
            actions[i] = _where(active[i], action, state.levels[i].action)
            if i > 0:
                goals[i - 1] = _where(active[i], actions[i], goals[i - 1])
        # what each level stored, and the state after it
        steps: list[LevelStep] = []
        for i in range(num_levels):
            data = {
                "obs": inputs[i]["obs"],
                "reward": level_rewards[i],
                "is_first": first,
                "is_last": last,
                "is_terminal": terminal,
                "action": actions[i].argmax(-1)[:, 0] if i == 0 else actions[i].flatten(1),
            }
            if i < num_levels - 1:
                data["goal"] = goals[i]
            steps.append(LevelStep(active[i], data))
        done = torch.stack(active, 1)
        done[:, 0] = False
        rewards = torch.where(done, torch.zeros_like(rewards), rewards)
        counts = torch.where(done, torch.zeros_like(counts), counts)
        for i in range(1, num_levels):  # a level consumed its window: start the next one empty
            windows[i] = _where(active[i], torch.zeros_like(windows[i]), windows[i])
        levels = tuple(SubactorState(posteriors[i], actions[i]) for i in range(num_levels))
        new_state = HierosState(levels, tuple(goals), tuple(windows), rewards, counts, tau)
        return actions[0].argmax(-1)[:, 0], new_state, steps

    # ------------------------------------------------------------------------------------ replay
    def store(self, steps: list[LevelStep]) -> None:
        """Add the transitions of one :meth:`policy` call to the levels' replays (host memory)."""
        check(
            len(steps) == len(self.levels),
            "steps",
            f"one LevelStep per level ({len(self.levels)})",
            got=len(steps),
        )
        for i, level_step in enumerate(steps):
            mask = level_step.mask.detach().cpu().numpy()
            if not mask.any():
                continue
            data = {k: v.detach().cpu().numpy() for k, v in level_step.data.items()}
            for env in np.nonzero(mask)[0]:
                self.replays[i][env].add({k: v[env : env + 1] for k, v in data.items()})

    def ready(self, index: int) -> bool:
        """Whether level ``index``'s replay holds a full sequence in some environment."""
        return any(replay.num_items > 0 for replay in self.replays[index])

    def sample(self, index: int, batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """A training batch of level ``index`` on :attr:`device`.

        Each of the ``batch_size`` sequences comes from an environment chosen with probability
        proportional to the sequences it holds, then from that environment's replay by its sampler.

        Raises:
            HierosError: If no environment holds a full sequence yet.
        """
        batch_size = (
            self.config.batch_size if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        )
        items = np.array([replay.num_items for replay in self.replays[index]], dtype=np.float64)
        check(
            items.sum() > 0,
            f"level {index} replay",
            f"a full sequence of {self.config.sequence_length} steps in some environment",
            got="none yet",
        )
        counts = self._rng.multinomial(batch_size, items / items.sum())
        parts = [self.replays[index][env].sample(int(count)) for env, count in enumerate(counts) if count]
        device = self.device
        return {key: torch.cat([p[key] for p in parts]).to(device) for key in parts[0]}

    def train_step(self, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One training step of level 0, and of level ``i`` at every ``k**i``-th call (when it has data).

        Returns:
            Metrics named ``level<i>/<name>`` of the levels that trained.
        """
        metrics: dict[str, torch.Tensor] = {}
        for i in range(len(self.levels)):
            if self.train_calls % self.phase_period(i) == 0 and self.ready(i):
                # the replay refused non-finite values as they were stored: no value checks (host syncs) here
                level_metrics = self.level(i).train_step(self.sample(i), generator=generator, validate=False)
                metrics.update({f"level{i}/{k}": v for k, v in level_metrics.items()})
        self.train_calls += 1
        return metrics

    def save_replays(self, directory: str | os.PathLike[str]) -> None:
        """Write every level's replays (and samplers) as ``level<i>_env<j>.npz`` into ``directory``."""
        directory = Path(directory)
        for i, replays in enumerate(self.replays):
            for env, replay in enumerate(replays):
                replay.save(directory / f"level{i}_env{env}.npz")

    def load_replays(self, directory: str | os.PathLike[str]) -> None:
        """Read the replays written by :meth:`save_replays` (each one validated; see
        :meth:`~hieros_lib.replay.SequenceReplay.load`)."""
        directory = Path(directory)
        for i, replays in enumerate(self.replays):
            for env, replay in enumerate(replays):
                replay.load(directory / f"level{i}_env{env}.npz")

    def training_state_dict(self) -> dict[str, Any]:
        """Optimisers, counters and the environment-choice generator (the modules are in
        :meth:`state_dict`, the replays in :meth:`save_replays`)."""
        return {
            "train_calls": self.train_calls,
            "rng": self._rng.bit_generator.state,
            "levels": [self.level(i).optimizer_state_dict() for i in range(len(self.levels))],
        }

    def load_training_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`training_state_dict`."""
        check(
            isinstance(state, Mapping) and len(state.get("levels", ())) == len(self.levels),
            "state",
            f"the training state of {len(self.levels)} levels",
        )
        for i, level_state in enumerate(state["levels"]):
            self.level(i).load_optimizer_state_dict(level_state)
        self.train_calls = int(state["train_calls"])
        self._rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------------------------------ pictures
    @torch.no_grad()
    def subgoal_images(self, state: HierosState) -> list[torch.Tensor]:
        """Every level's current subgoal as a picture in observation space, one ``(N, ...)`` per level.

        Entry ``i - 1`` is the subgoal that level ``i`` gives to level ``i - 1``. It is decoded by level
        ``i - 1``'s autoencoder into that level's ``h``; paired with the level's current ``z`` and
        decoded by its world model, a state of level ``i - 1`` becomes the observation it stands for: for
        level 0 an image, for a higher level the window of ``k`` states of the level below, whose newest
        state ``(h, z)`` is decoded the same way, down to level 0. So every subgoal ends as an image (or
        a vector, for vector environments) of what the level below is asked to reach.

        Returns:
            ``levels - 1`` tensors: float images ``(N, H, W, C)`` in ``[0, 1]`` (or ``(N, D)`` vectors).
        """
        out = []
        for i in range(1, len(self.levels)):
            below = i - 1
            autoencoder = self.level(below).autoencoder
            assert autoencoder is not None
            deter = autoencoder.decode(state.goals[below].to(next(autoencoder.parameters()).dtype))
            current = state.levels[below].model
            model_state = current._replace(deter=deter.to(current.deter.dtype))
            decoded = self.level(below).model.decode(model_state)
            for j in range(below, 0, -1):  # the newest lower state of the decoded window, down to level 0
                lower = self.level(j - 1).model
                width = self.feature_dims[j - 1]
                newest = decoded[..., -width:]
                h = newest[..., : lower.deter_dim]
                z = newest[..., lower.deter_dim :].reshape(state.levels[j - 1].model.stoch.shape)
                lower_state = state.levels[j - 1].model._replace(deter=h, stoch=z)
                decoded = lower.decode(lower_state)
            out.append(decoded)
        return out
