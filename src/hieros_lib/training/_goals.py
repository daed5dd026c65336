"""Goal following: does one level reach the states its subgoals stand for? (The hierarchy's mechanism.)"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hieros_lib.agents import Subactor, SubactorConfig
from hieros_lib.envs import GymAdapter, make_env
from hieros_lib.errors import check, check_int
from hieros_lib.hrl import subgoal_reward
from hieros_lib.replay import SequenceReplay, UniformSampler
from hieros_lib.world_models import ImaginedStep, detach_state

__all__ = ["GoalFollowingConfig", "goal_following"]

logger = logging.getLogger(__name__)

_GOAL = (8, 8)


def _default_level() -> SubactorConfig:
    # the subgoal reward only: the environment's reward (there is none in reward-free Rooms) weighs 0
    return SubactorConfig.tiny(extrinsic_weight=0.0, subgoal_weight=1.0, autoencoder=True)


@dataclass(frozen=True, kw_only=True)
class GoalFollowingConfig:
    """The goal-following experiment (see :func:`goal_following`).

    Attributes:
        spec: A gridworld whose steps carry the agent's cell: ``hieros:rooms``.
        options: Its options (reward-free by default).
        image_size: Side of the observations.
        level: The level's :class:`~hieros_lib.agents.SubactorConfig` (the subgoal reward only by default:
            ``extrinsic_weight=0``, ``subgoal_weight=1``).
        steps: Environment steps of training.
        warmup: Steps before the first update.
        model_pretrain: Updates of the world model alone
            (:meth:`~hieros_lib.agents.Subactor.train_world_model`) on the warm-up's data before the
            level's first update, so that the level learns to act in a world model that has already
            learned to see the agent (the small world model needs 2,000 to 4,000 updates to place Rooms'
            one-pixel agent; see the docs' "Does the hierarchy help?").
        train_ratio: Updates per environment step after the warm-up.
        goal_steps: Steps a subgoal is held and may be reached in, ``k * m``: 16 = 4 x 4, the
            environment steps of one window of a level-2 subgoal (``k = 4``).
        min_distance: Measured targets are at least this many moves from where their window starts.
        max_distance: Targets are visited cells at most this many moves away.
        batch_size: Sequences per training batch.
        sequence_length: Steps per sequence.
        trials: Goal windows of each policy's final measurement.
        codes: Where subgoals come from: ``"autoencoder"``, the level's own autoencoder (the mechanism of
            Hieros), or ``"cells"``, a diagnostic that bypasses it: every visited cell gets its own code
            (its index written in base ``classes`` over the first groups) and a code decodes to the
            ``h`` the level last had in that cell, so the subgoal reward compares imagined states with
            the target's own ``h``. It separates the autoencoder from the rest of the chain (world
            model, reward, actor).
        seed: The seed of everything.
    """

    spec: str = "hieros:rooms"
    options: dict[str, Any] = field(default_factory=lambda: {"reward": False, "length": 200})
    image_size: int = 16
    level: SubactorConfig = field(default_factory=_default_level)
    steps: int = 3000
    warmup: int = 300
    model_pretrain: int = 0
    train_ratio: float = 1.0
    goal_steps: int = 16
    min_distance: int = 4
    max_distance: int = 8
    batch_size: int = 16
    sequence_length: int = 16
    trials: int = 100
    codes: str = "autoencoder"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "goal_steps", "min_distance", "max_distance", "batch_size", "sequence_length",
                     "trials"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.warmup, "warmup", minimum=0)
        check_int(self.model_pretrain, "model_pretrain", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        check(self.codes in ("autoencoder", "cells"), "codes", "'autoencoder' or 'cells'",
              got=repr(self.codes))

    def replace(self, **changes: Any) -> GoalFollowingConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _agent_cell(images: torch.Tensor, free: np.ndarray) -> torch.Tensor:
    """The gridworld cell ``row * side + col`` of the agent in images ``(..., H, W, C)`` (decoded or
    observed): the brightest free cell, reading each cell as the mean of its block of pixels."""
    side = free.shape[0]
    scale = images.shape[-2] // side
    brightness = images.float().sum(-1).unflatten(-1, (side, scale)).unflatten(-3, (side, scale))
    brightness = brightness.mean((-3, -1)).flatten(-2)  # (..., side * side)
    return brightness.masked_fill(torch.as_tensor(~free).flatten(), -1.0).argmax(-1)


class _Experiment:
    """One level, one gridworld, goals from visited states (see :func:`goal_following`)."""

    def __init__(self, config: GoalFollowingConfig) -> None:
        self.config = c = config
        seeds = [int(s) for s in np.random.SeedSequence(c.seed).generate_state(4)]
        self.env: GymAdapter = make_env(c.spec, seed=seeds[0], image_size=c.image_size, **c.options)
        check("cell" in self.env.info_keys, "spec", "an environment whose steps carry the agent's cell",
              got=c.spec)
        core = self.env.env.envs[0].unwrapped.core
        self._distances, self._cells, self._free = core.distances, core.side * core.side, core.free
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seeds[1])
            self.level = Subactor(
                c.level, obs_shape=self.env.obs_shape, action_shape=(self.env.num_actions,), goal_shape=_GOAL
            )
        self.replay = SequenceReplay(
            max(10 * c.steps, c.sequence_length), sequence_length=c.sequence_length,
            sampler=UniformSampler(generator=seeds[2]), num_actions=self.env.num_actions,
        )
        self.generator = torch.Generator().manual_seed(seeds[3])
        self.rng = np.random.default_rng(seeds[3])
        # cell -> the level's latest deterministic state h there (what a level above would encode)
        self.visited: dict[tuple[int, int], torch.Tensor] = {}
        if c.codes == "cells":
            self._cell_codes()

    def _cell_codes(self) -> None:
        """The diagnostic ``codes="cells"``: the level's autoencoder decodes a code to the latest ``h`` of
        the cell whose index it writes (the autoencoder still trains, for its statistics)."""
        autoencoder = self.level.autoencoder
        assert autoencoder is not None
        groups, classes = autoencoder.groups, autoencoder.classes
        digits = 1
        while classes**digits < self._cells:  # room for every cell of the gridworld
            digits += 1
        check(digits <= groups, "codes", f"at most {groups} digits of base {classes} for the cells",
              got=digits)
        self._digits = digits
        self._index: dict[tuple[int, int], int] = {}
        self._table = torch.zeros(classes**digits, self.level.model.deter_dim)
        weights = classes ** torch.arange(digits)

        def decode(subgoal: torch.Tensor) -> torch.Tensor:
            index = (subgoal[..., :digits, :].argmax(-1) * weights).sum(-1)
            return self._table.to(subgoal.dtype)[index]

        autoencoder.decode = decode  # type: ignore[method-assign]  # this experiment's level only

    def remember(self, cell: tuple[int, int], h: torch.Tensor) -> None:
        """Record the level's ``h`` in ``cell`` (the latest one is the cell's subgoal)."""
        self.visited[cell] = h
        if self.config.codes == "cells":
            index = self._index.setdefault(cell, len(self._index))
            self._table[index] = h

    def distances(self, cell: tuple[int, int]) -> np.ndarray:
        """Shortest-path distances (moves) from ``cell`` to every cell (cached)."""
        if cell not in self._cache:
            self._cache[cell] = self._distances(cell)
        return self._cache[cell]

    @torch.no_grad()
    def code_of(self, cell: tuple[int, int]) -> torch.Tensor:
        """The subgoal ``(1, 8, 8)`` of a visited cell: the level's ``h`` there, encoded (the mode); with
        ``codes="cells"`` the cell's index in base ``classes``."""
        autoencoder = self.level.autoencoder
        assert autoencoder is not None
        if self.config.codes == "cells":
            code = torch.zeros(1, *_GOAL)
            index = self._index[cell]
            for digit in range(self._digits):
                code[0, digit, (index // autoencoder.classes**digit) % autoencoder.classes] = 1.0
            code[0, self._digits:, 0] = 1.0
            return code
        return autoencoder.encode(self.visited[cell][None], sample=False)

    def pick(self, cell: tuple[int, int], low: int, rng: np.random.Generator) -> tuple[int, int]:
        """A visited cell ``low`` to ``max_distance`` moves from ``cell`` (any other visited one if none)."""
        distances = self.distances(cell)
        near = [v for v in self.visited if low <= distances[v] <= self.config.max_distance]
        cells = near or [v for v in self.visited if v != cell] or [cell]
        return cells[int(rng.integers(len(cells)))]

    def run(self, steps: int, *, train: bool, policy: str = "agent", trials: int = 0) -> float:
        """Act for ``steps`` steps (training: with updates) or until ``trials`` goal windows are over
        (measuring); a window succeeds when the agent gets within one move of its target in
        ``goal_steps`` steps, and a new one starts then. Returns the success rate of the windows."""
        c, env = self.config, self.env
        rng = self.rng if train else np.random.default_rng(c.seed + 11)
        generator = self.generator if train else torch.Generator().manual_seed(c.seed + 7)
        low = 1 if train else c.min_distance
        step = env.reset()
        state = self.level.initial_state(1)
        target: tuple[int, int] | None = None
        code, left, due = torch.zeros(1, *_GOAL), 0, 0.0
        done = successes = t = 0
        while (t < steps) if train else (done < trials):
            cell = (int(step["cell"][0, 0]), int(step["cell"][0, 1]))
            if step["is_first"][0]:
                target = None  # a window does not cross an episode's end
            if target is None and self.visited:
                target = self.pick(cell, low, rng)
                code, left = self.code_of(target), c.goal_steps
            if policy == "random":  # the baseline: the level is not run
                index = int(rng.integers(env.num_actions))
            else:
                tensors = {k: torch.as_tensor(step[k]) for k in ("obs", "is_first", "reward")}
                with torch.no_grad():
                    action, state = self.level.policy(
                        {**tensors, "goal": code}, state, generator=generator, validate=False,
                        mode="eval" if policy == "greedy" else "train",
                    )
                index = int(action[0, 0].argmax())
                if train:
                    self.remember(cell, self.level.model.deter(state.model)[0].float())
            if train:
                keys = ("obs", "reward", "is_first", "is_last", "is_terminal")
                self.replay.add({**{k: step[k] for k in keys}, "action": np.array([index]),
                                 "goal": code.reshape(1, -1).numpy()})
            step = env.step(np.array([index]))
            t += 1
            if target is not None:
                left -= 1
                reached = self.distances(target)[int(step["cell"][0, 0]), int(step["cell"][0, 1])] <= 1
                if reached or left == 0:
                    done += 1
                    successes += bool(reached)
                    target = None
            if train and t > c.warmup:
                if t == c.warmup + 1:
                    self.pretrain(c.model_pretrain)
                due += c.train_ratio
                while due >= 1:
                    due -= 1
                    batch = self.replay.sample(c.batch_size)
                    batch["goal"] = batch["goal"].unflatten(-1, _GOAL)
                    self.level.train_step(batch, generator=self.generator, validate=False)
        return successes / max(done, 1)

    def pretrain(self, updates: int) -> None:
        """``updates`` updates of the level's world model alone on the replay so far."""
        for _ in range(updates):
            batch = self.replay.sample(self.config.batch_size)
            batch["goal"] = batch["goal"].unflatten(-1, _GOAL)
            self.level.train_world_model(batch, generator=self.generator, validate=False)

    def _imagined_policy(
        self, name: str, goal_in: torch.Tensor | None, generator: torch.Generator
    ) -> Callable[[ImaginedStep], torch.Tensor]:
        """The level's actor holding ``goal_in`` (``"agent"``) or uniformly random actions (``"random"``)."""
        ac, actions = self.level.actor_critic, self.env.num_actions

        def policy(step: ImaginedStep) -> torch.Tensor:
            if name == "random":
                index = torch.randint(actions, step.features.shape[:1], generator=generator)
                return torch.nn.functional.one_hot(index, actions).to(step.features.dtype)
            inputs = ac.inputs(step.features, step.reward, step.cont, step.entropy, goal_in)
            return ac.act(inputs, sample=True, generator=generator).flatten(-2)

        return policy

    @torch.no_grad()
    def imagined_rewards(self, batches: int = 4) -> dict[str, float]:
        """The mean subgoal reward of imagined trajectories (the objective the level's actor is trained
        on) under the level's actor and under uniformly random actions, from the same start states and
        subgoals of ``batches`` replay batches: does the actor improve its own objective?"""
        c, level, autoencoder = self.config, self.level, self.level.autoencoder
        assert autoencoder is not None
        generator = torch.Generator().manual_seed(c.seed + 13)
        means: dict[str, list[float]] = {"agent": [], "random": []}
        for _ in range(batches):
            batch = self.replay.sample(c.batch_size)
            goal = batch["goal"].unflatten(-1, _GOAL).flatten(0, 1)
            out = level.model.loss(batch, generator=generator, validate=False)
            start = detach_state(level.model.start_states(out.observed))
            target = autoencoder.decode(goal)
            for name, values in means.items():
                policy = self._imagined_policy(name, level.goal_input(goal), generator)
                imag = level.model.imagine(start, policy, level.config.horizon,
                                           sample=level.config.imagine_sample, generator=generator,
                                           validate=False)
                if autoencoder.standardize:
                    reward = subgoal_reward(autoencoder.standardized(imag.deter),
                                            autoencoder.standardized(target)[:, None])
                else:
                    reward = subgoal_reward(imag.deter, target[:, None])
                values.append(float(reward[:, 1:].mean()))
        return {name: round(float(np.mean(values)), 4) for name, values in means.items()}

    @torch.no_grad()
    def world_model_positions(self, batches: int = 4) -> dict[str, float]:
        """Does the world model know where the agent is, and where an action takes it? Over the steps of
        ``batches`` replay batches whose next step is in the same episode, the fraction in which the
        agent's pixel (the brightest one) of a decoded image is that of the true next observation:

        * ``reconstructed``: the posterior of the next step, decoded (the model sees that observation);
        * ``predicted``: the prior after the taken action from this step's posterior (its mode), decoded:
          the imagination the actor is trained in;
        * ``stay``: the agent's pixel of this step's observation (the guess that ignores the action).

        Images are read as the gridworld's cells (block means), walls excluded.
        """
        c, model = self.config, self.level.model
        generator = torch.Generator().manual_seed(c.seed + 17)
        counts = {"reconstructed": 0, "predicted": 0, "stay": 0}
        total = 0

        def pixel(images: torch.Tensor) -> torch.Tensor:
            return _agent_cell(images, self._free)

        for _ in range(batches):
            batch = self.replay.sample(c.batch_size)
            b, t = batch["is_first"].shape
            out = model.loss(batch, generator=generator, validate=False)
            start = model.start_states(out.observed)  # (b * t,), in (b, t) order
            prior = model.imagine_step(start, batch["action"].flatten(0, 1), sample=False,
                                       generator=generator, validate=False)
            truth = pixel(batch["obs"])[:, 1:]
            valid = ~batch["is_first"][:, 1:]
            predicted = pixel(model.decode(prior)).reshape(b, t)[:, :-1]
            reconstructed = pixel(model.decode(start)).reshape(b, t)[:, 1:]
            stay = pixel(batch["obs"])[:, :-1]
            for name, guess in (("reconstructed", reconstructed), ("predicted", predicted), ("stay", stay)):
                counts[name] += int(((guess == truth) & valid).sum())
            total += int(valid.sum())
        return {name: round(count / max(total, 1), 4) for name, count in counts.items()}

    @torch.no_grad()
    def diagnose(self) -> dict[str, Any]:
        """What the subgoal mechanism sees, over every pair of visited cells ``(a, b)``:

        * ``distinct_codes``: how many different subgoals (modes) the visited cells' ``h`` encode to;
        * ``reward_by_distance``: the mean subgoal reward of being in ``a`` with the subgoal of ``b``
          (the decoded code of ``b``'s ``h``), by the moves between them (0, 1-2, 3-5, 6-10, 11+);
          ``cosine_by_distance``: the plain cosine of the two ``h``, likewise;
        * ``centered_cosine_by_distance``: the cosine of the two ``h`` less the mean ``h`` of the visited
          cells;
        * ``*_ranking``: the probability that the reward (or a cosine) ranks a nearer cell above a
          farther one (pairs of state cells at different distances from the goal cell; 0.5 is no
          information, 1 a perfect order);
        * ``imagined_reward``: the mean subgoal reward in imagination under the level's actor and under
          random actions (:meth:`imagined_rewards`);
        * ``positions``: how often the world model's decoded images put the agent where it is
          (:meth:`world_model_positions`);
        * ``h_norm`` and ``goal_norm``: the mean norms of ``h`` and of the decoded subgoals.
        """
        autoencoder = self.level.autoencoder
        assert autoencoder is not None
        cells = sorted(self.visited)
        h = torch.stack([self.visited[c] for c in cells])
        if self.config.codes == "cells":
            codes = torch.cat([self.code_of(c) for c in cells])
        else:
            codes = autoencoder.encode(h, sample=False)
        goals = autoencoder.decode(codes)
        if autoencoder.standardize:  # the level's subgoal space
            space = autoencoder.standardized
            reward = subgoal_reward(space(h)[:, None], space(goals)[None, :])
        else:
            reward = subgoal_reward(h[:, None], goals[None, :])  # (state cell, goal cell)
        unit = torch.nn.functional.normalize(h, dim=-1)
        cosine = unit @ unit.T
        by_goal = np.stack([self.distances(c)[tuple(np.array(cells).T)] for c in cells])  # (goal, state)
        distance = torch.as_tensor(by_goal.T)  # (state cell, goal cell)
        bins = {"0": (0, 0), "1-2": (1, 2), "3-5": (3, 5), "6-10": (6, 10), "11+": (11, 10_000)}

        def by_distance(values: torch.Tensor) -> dict[str, float]:
            out = {}
            for name, (low, high) in bins.items():
                mask = (distance >= low) & (distance <= high)
                if mask.any():
                    out[name] = round(float(values[mask].mean()), 4)
            return out

        def ranking(values: torch.Tensor) -> float:
            # per goal cell (column), pairs of state cells at different distances: is the nearer above?
            r, d = values.T, distance.T  # (goal, state)
            nearer = d[:, :, None] < d[:, None, :]
            above = (r[:, :, None] > r[:, None, :]).float() + 0.5 * (r[:, :, None] == r[:, None, :]).float()
            return round(float(above[nearer].mean()), 4) if nearer.any() else float("nan")

        centered = torch.nn.functional.normalize(h - h.mean(0), dim=-1)
        centered_cosine = centered @ centered.T
        return {
            "cells": len(cells),
            "distinct_codes": len({tuple(x) for x in codes.argmax(-1).tolist()}),
            "h_norm": round(float(h.norm(dim=-1).mean()), 4),
            "goal_norm": round(float(goals.norm(dim=-1).mean()), 4),
            "reward_by_distance": by_distance(reward),
            "cosine_by_distance": by_distance(cosine),
            "centered_cosine_by_distance": by_distance(centered_cosine),
            "reward_ranking": ranking(reward),
            "cosine_ranking": ranking(cosine),
            "centered_cosine_ranking": ranking(centered_cosine),
            "imagined_reward": self.imagined_rewards(),
            "positions": self.world_model_positions(),
        }


def goal_following(config: GoalFollowingConfig | None = None) -> dict[str, Any]:
    """Train one level with the subgoal reward on a gridworld and measure how often it reaches its goals.

    The level (:class:`~hieros_lib.agents.Subactor` with a subgoal autoencoder, the subgoal reward only)
    acts in reward-free :class:`~hieros_lib.envs.Rooms`. It is always given a subgoal: a cell it has
    visited, at most ``max_distance`` moves away, as its own autoencoder encodes the deterministic state
    ``h`` the level last had there (what a level above hands down: its subgoals are codes of the lower
    level's ``h``). A subgoal is held until the agent gets within one move of its cell or for
    ``goal_steps`` steps. The level trains on its replay as a level of Hieros does (imagination with the
    subgoal reward against the decoded subgoal).

    Then the goal windows are measured, ``trials`` each for three policies: the level sampling its
    actions (``"agent"``), the level taking its modes (``"greedy"``) and uniformly random actions
    (``"random"``). Each target is a visited cell ``min_distance`` to ``max_distance`` moves from where
    the window starts; a window succeeds if the agent gets within one move of the target in
    ``goal_steps`` steps (``k * m``; 16 = 4 x 4 by default).

    The first step's ``h`` of an episode does not depend on its observation (``h_t`` summarises
    ``z_{<t}`` and ``a_{<t}``), so a target is the ``h`` seen on the way to a cell, not the encoding of
    the cell's image alone.

    Args:
        config: :class:`GoalFollowingConfig` (defaults if None).

    Returns:
        ``{"agent": rate, "greedy": rate, "random": rate, "visited_cells": int, "trials": int,
        "diagnostics": {...}}``: success rates in ``[0, 1]``, and what the subgoal mechanism sees (how many
        distinct subgoals the visited cells encode to, the subgoal reward and the cosine of ``h`` by the
        distance between state and goal cell, and how often the reward ranks a nearer cell above a
        farther one).

    Example:
        >>> from hieros_lib.training import GoalFollowingConfig, goal_following
        >>> result = goal_following(GoalFollowingConfig(steps=40, warmup=20, trials=3))
        >>> sorted(result)
        ['agent', 'diagnostics', 'greedy', 'random', 'trials', 'visited_cells']
    """
    config = GoalFollowingConfig() if config is None else config
    check(isinstance(config, GoalFollowingConfig), "config", "a GoalFollowingConfig",
          got=type(config).__name__)
    experiment = _Experiment(config)
    try:
        experiment.run(config.steps, train=True)
        rates = {policy: experiment.run(0, train=False, policy=policy, trials=config.trials)
                 for policy in ("agent", "greedy", "random")}
        diagnostics = experiment.diagnose()
    finally:
        experiment.env.close()
    return {**rates, "visited_cells": len(experiment.visited), "trials": config.trials,
            "diagnostics": diagnostics}
