"""Hieros: a hierarchy of subactors that propose subgoals to the level below (paper section 2.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hieros_lib._tree import where_state
from hieros_lib.agents._hieros_config import HierosConfig, HierosState, LevelStep
from hieros_lib.agents._subactor import Subactor, SubactorState
from hieros_lib.errors import check, check_int

__all__ = ["Hieros"]


class Hieros(nn.Module):
    r"""The Hieros agent: ``levels`` :class:`~hieros_lib.agents.Subactor` s, each with its own world model.

    **Levels.** Level 0 acts in the environment. Level ``i > 0`` observes, as one vector, the ``k``
    consecutive world-model states ``(h, z)`` (:meth:`~hieros_lib.world_models.WorldModel.features`) of
    level ``i - 1`` since its last step (the paper's "all intermediate states"; ``window="last"`` keeps
    only the ``k``-th, ablation G.5). It acts every ``k**i`` steps *of the episode of that environment*
    (its phase restarts at every ``is_first``), so its action, a one-hot ``8 x 8`` subgoal, is held for
    ``k`` steps of level ``i - 1``. The observation includes the current lower state, so no level sees the
    level below one step late (the official code does).

    **Rewards.** Equation 1 per level, each term with its own critic: the extrinsic reward (for level ``i >
    0`` the sum of the environment rewards over its window, so episode ends lose nothing; the official
    code stores the mean, and zeroes the last reward of every episode), the subgoal reward against the
    subgoal of the level above decoded by this level's autoencoder (all but the top level; weight 0.3),
    and the novelty reward (by default the higher levels, as the paper's runs; weight 0.1).

    **Episodes.** A step with ``is_last`` is a step of every level, so a window cut short by the end of
    an episode is stored with its reward and flags; the next step (``is_first``) starts every level's
    phase and window afresh, for that environment only.

    **Storage and training.** The agent holds networks only. The transitions each level took come out of
    :meth:`policy` (:class:`LevelStep`); :class:`~hieros_lib.agents.HierosReplay` stores them (one replay
    per level and environment, ETBS at temperature 0.3) or a buffer of your own does.
    :meth:`train_step` takes one batch (or ``None``) per level; :meth:`HierosConfig.levels_due` says
    which levels train at a given call (level ``i`` at every ``k**i``-th, as the paper's schedule).

    **Acting** (:meth:`policy`) is explicit: the :class:`HierosState` goes in and comes out. In
    ``mode="eval"`` every level takes the mode of its policy: hard one-hot subgoals (the official code
    hands probabilities to the level below in evaluation).

    Args:
        config: :class:`HierosConfig`.
        obs_shape: The environment's observation shape, ``(H, W, C)`` or ``(D,)``.
        num_actions: The environment's number of discrete actions, or with ``continuous`` the size ``d``
            of its continuous actions.
        continuous: The environment takes continuous actions in ``[-1, 1]^d`` (level 0 gets DreamerV3's
            bounded normal actor; the levels above still choose discrete subgoals).
        num_envs: ``N``, the environments acted in.
        device: Device of the parameters and of the tensors :meth:`policy` returns.

    Examples:
        >>> import torch
        >>> from hieros_lib.agents import Hieros, HierosConfig, SubactorConfig
        >>> agent = Hieros(HierosConfig(levels=2, k=2, level=SubactorConfig.tiny(), sequence_length=4),
        ...                obs_shape=(16, 16, 3), num_actions=3, num_envs=2)
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
        continuous: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(config, HierosConfig), "config", "a HierosConfig", got=type(config).__name__)
        self.config = config
        self.num_envs = check_int(num_envs, "num_envs", minimum=1)
        self.num_actions = check_int(num_actions, "num_actions", minimum=1)
        self.continuous = bool(continuous)
        base = config.level
        goal = (base.subgoal_groups, base.subgoal_classes)
        levels: list[Subactor] = []
        obs: tuple[int, ...] = tuple(int(d) for d in obs_shape)
        for i in range(config.levels):
            level_config = config.level_config(i)
            action_shape: tuple[int, ...] = (num_actions,) if i == 0 else goal
            goal_shape = goal if i < config.levels - 1 else None
            level = Subactor(
                level_config,
                obs_shape=obs,
                action_shape=action_shape,
                goal_shape=goal_shape,
                continuous=self.continuous and i == 0,
                device=device,
            )
            levels.append(level)
            features = level.model.feature_dim
            obs = (features,) if config.window == "last" else (config.k * features,)
        self.levels = nn.ModuleList(levels)
        self.feature_dims = [level.model.feature_dim for level in levels]

    # ------------------------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def level(self, index: int) -> Subactor:
        """Level ``index`` (0 acts in the environment)."""
        return self.levels[index]  # type: ignore[return-value]

    def phase_period(self, index: int) -> int:
        """``k**index``: level ``index`` acts every this many environment steps of an episode."""
        return self.config.phase_period(index)

    # ------------------------------------------------------------------------------------- acting
    def initial_state(self, num_envs: int | None = None) -> HierosState:
        """The state before any step, for ``num_envs`` environments (the agent's ``num_envs`` if None).

        :meth:`policy` acts for as many environments as its state has (e.g. one evaluation environment
        beside ``N`` training ones).
        """
        n = self.num_envs if num_envs is None else check_int(num_envs, "num_envs", minimum=1)
        device = self.device
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

    def _check_policy_inputs(
        self, step: Mapping[str, torch.Tensor], state: HierosState, validate: bool
    ) -> int:
        """Check :meth:`policy`'s inputs; returns ``N``."""
        check(isinstance(state, HierosState), "state", "a HierosState (from initial_state())",
              got=type(state).__name__)
        check(isinstance(step, Mapping), "step", "a mapping of field name -> tensor", got=type(step).__name__)
        fields = ("obs", "reward", "is_first", "is_last", "is_terminal")
        missing = [f for f in fields if f not in step]
        check(not missing, "step", f"the fields {fields}", got=f"missing {missing}")
        check(
            isinstance(state.step, torch.Tensor)
            and state.step.dim() == 1
            and len(state.levels) == len(self.levels),
            "state",
            f"a HierosState of this agent's {len(self.levels)} levels",
        )
        n, device = int(state.step.shape[0]), self.device
        for name in fields:
            value = step[name]
            check(isinstance(value, torch.Tensor), f"step[{name!r}]", "a tensor", got=type(value).__name__)
            check(value.device == device, f"step[{name!r}]", f"a tensor on {device}", got=value.device)
        for name in ("is_first", "is_last", "is_terminal"):
            value = step[name]
            check(value.shape == (n,) and value.dtype == torch.bool, f"step[{name!r}]",
                  f"a bool tensor of shape ({n},) (the state is for {n} environments)",
                  got=lambda value=value: f"{value.dtype} {tuple(value.shape)}")
        reward = step["reward"]
        check(reward.shape == (n,) and reward.is_floating_point(), "step['reward']",
              f"a floating-point tensor of shape ({n},)", got=lambda: f"{reward.dtype} {tuple(reward.shape)}")
        obs, obs_shape = step["obs"], self.level(0).obs_shape
        image = len(obs_shape) == 3
        check(
            tuple(obs.shape) == (n, *obs_shape)
            and (obs.dtype == torch.uint8 if image else obs.is_floating_point()),
            "step['obs']",
            f"{'a uint8' if image else 'a floating-point'} tensor of shape {(n, *obs_shape)}",
            got=lambda: f"{obs.dtype} {tuple(obs.shape)}",
        )
        if validate:
            check(bool(torch.isfinite(reward).all()), "step['reward']", "finite values", got="NaN or inf")
            if not image:
                check(bool(torch.isfinite(obs).all()), "step['obs']", "finite values", got="NaN or inf")
        return n

    @torch.no_grad()
    def policy(
        self,
        step: Mapping[str, torch.Tensor],
        state: HierosState,
        *,
        mode: str = "train",
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> tuple[torch.Tensor, HierosState, list[LevelStep]]:
        """Observe one environment step of ``N`` environments bottom-up, then act top-down.

        Args:
            step: ``obs`` (uint8 ``(N, H, W, C)`` or float ``(N, D)``), ``reward`` float ``(N,)``,
                ``is_first`` / ``is_last`` / ``is_terminal`` bool ``(N,)``: tensors on :attr:`device` (a
                step of :class:`~hieros_lib.envs.GymAdapter` as tensors).
            state: The previous :class:`HierosState` (:meth:`initial_state` at the start); ``N`` is its
                number of environments.
            mode: ``"train"`` (sample) or ``"eval"`` (the mode of every level's policy and latents).
            generator: Random generator for every sample.
            validate: Also check that the observations and rewards are finite (a host synchronisation;
                the trainer passes False, as its environments checked them). Types, shapes, dtypes and
                devices are always checked.

        Raises:
            HierosError: On a missing field, a field of the wrong type, dtype, shape or device, a state
                that is not a :class:`HierosState` of this agent, or (``validate``) a non-finite value.

        Returns:
            ``(action, state, steps)``: the environment's actions (``(N,)`` indices, or ``(N, d)``
            floats in ``[-1, 1]`` for continuous actions), the new state, and
            per level the :class:`LevelStep` it took (store them, e.g. with
            :meth:`HierosReplay.add <hieros_lib.agents.HierosReplay.add>`, when training).
        """
        check(mode in ("train", "eval"), "mode", "'train' or 'eval'", got=repr(mode))
        n = self._check_policy_inputs(step, state, validate)
        c, num_levels = self.config, len(self.levels)
        sample = mode == "train"
        first, last, terminal = step["is_first"], step["is_last"], step["is_terminal"]
        reward = step["reward"].to(state.rewards.dtype)
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
                base = where_state(first, torch.zeros_like(windows[i]), windows[i])  # a new episode: empty
                shifted = torch.cat([base[:, 1:], below[:, None]], 1)
                windows[i] = where_state(active[i - 1], shifted, base)
                obs = self._level_obs(windows[i])
                total = rewards[:, i]
                level_rewards.append(total / counts[:, i] if c.higher_reward == "mean" else total)
            level_input = {"obs": obs, "is_first": first, "reward": level_rewards[i]}
            inputs.append(level_input)
            posterior = level.observe(level_input, state.levels[i], sample=sample, generator=generator)
            posteriors.append(where_state(active[i], posterior, state.levels[i].model))
        # top-down: active levels act; a new subgoal reaches the level below before it acts
        goals = list(state.goals)
        actions: list[torch.Tensor] = [torch.empty(0)] * num_levels
        for i in reversed(range(num_levels)):
            goal = goals[i] if i < num_levels - 1 else None
            action = self.level(i).act(posteriors[i], goal, sample=sample, generator=generator)
            actions[i] = where_state(active[i], action, state.levels[i].action)
            if i > 0:
                goals[i - 1] = where_state(active[i], actions[i], goals[i - 1])
        # what each level stored, and the state after it
        steps: list[LevelStep] = []
        for i in range(num_levels):
            data = {
                "obs": inputs[i]["obs"],
                "reward": level_rewards[i],
                "is_first": first,
                "is_last": last,
                "is_terminal": terminal,
                "action": self._env_action(actions[0]) if i == 0 else actions[i].flatten(1),
            }
            if i < num_levels - 1:
                data["goal"] = goals[i]
            steps.append(LevelStep(active[i], data))
        done = torch.stack(active, 1)
        done[:, 0] = False
        rewards = torch.where(done, torch.zeros_like(rewards), rewards)
        counts = torch.where(done, torch.zeros_like(counts), counts)
        for i in range(1, num_levels):  # a level consumed its window: start the next one empty
            windows[i] = where_state(active[i], torch.zeros_like(windows[i]), windows[i])
        levels = tuple(SubactorState(posteriors[i], actions[i]) for i in range(num_levels))
        new_state = HierosState(levels, tuple(goals), tuple(windows), rewards, counts, tau)
        return self._env_action(actions[0]), new_state, steps

    def _env_action(self, action: torch.Tensor) -> torch.Tensor:
        """Level 0's action as the environment takes it: ``(N,)`` indices, or ``(N, d)`` floats."""
        return action[:, 0] if self.continuous else action.argmax(-1)[:, 0]

    # ---------------------------------------------------------------------------------- training
    def train_step(
        self,
        batches: Sequence[Mapping[str, torch.Tensor] | None],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> dict[str, torch.Tensor]:
        """One training step of every level that is given a batch (:meth:`Subactor.train_step`).

        Which levels to train at a call is the schedule's business (:meth:`HierosConfig.levels_due`);
        the batches come from any storage (:class:`~hieros_lib.agents.HierosReplay`, or yours).

        Args:
            batches: Per level, a replay batch on :attr:`device` (fields as
                :meth:`~hieros_lib.agents.Subactor.train_step` reads them) or ``None`` to skip it.
            generator: Random generator for every sample of the step.
            validate: Check the batches' values (host synchronisations; a storage that refused
                non-finite values, as :class:`~hieros_lib.agents.HierosReplay` does, can pass False).

        Returns:
            Metrics named ``level<i>/<name>`` of the levels that trained.

        Raises:
            HierosError: On a wrong number of batches or a malformed batch.
        """
        check(
            len(batches) == len(self.levels),
            "batches",
            f"one batch (or None) per level ({len(self.levels)})",
            got=len(batches),
        )
        metrics: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(batches):
            if batch is None:
                continue
            level_metrics = self.level(i).train_step(batch, generator=generator, validate=validate)
            metrics.update({f"level{i}/{k}": v for k, v in level_metrics.items()})
        return metrics

    def training_state_dict(self) -> dict[str, Any]:
        """Every level's optimisers and update counter (the modules are in ``state_dict()``)."""
        return {"levels": [self.level(i).optimizer_state_dict() for i in range(len(self.levels))]}

    def load_training_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`training_state_dict`."""
        check(
            isinstance(state, Mapping) and len(state.get("levels", ())) == len(self.levels),
            "state",
            f"the training state of {len(self.levels)} levels",
        )
        for i, level_state in enumerate(state["levels"]):
            self.level(i).load_optimizer_state_dict(level_state)

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
