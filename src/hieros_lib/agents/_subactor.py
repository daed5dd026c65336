"""One level of Hieros: a world model, an actor-critic and (optionally) a subgoal autoencoder."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hieros_lib.agents._actor_critic import ActorCritic, ActorCriticConfig
from hieros_lib.errors import check, check_float, check_int
from hieros_lib.hrl import RewardWeights, SubgoalAutoencoder, novelty_reward, subgoal_reward
from hieros_lib.world_models import (
    ImaginedStep,
    available_world_models,
    detach_state,
    make_world_model,
    validate_batch,
    world_model_config,
)

__all__ = ["Subactor", "SubactorConfig", "SubactorState"]

logger = logging.getLogger(__name__)

_COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True, kw_only=True)
class SubactorConfig:
    """Everything one level needs (defaults: Hieros appendix E with DreamerV3 2023 where it is silent).

    Attributes:
        world_model: A registered world model: ``"s5wm"`` (the paper's), ``"rssm"`` or ``"twm"``.
        world_model_preset: ``"paper"``, ``"small"`` or ``"tiny"`` (see the world models).
        world_model_overrides: Fields of the world model's config to change (e.g. ``{"units": 128}``);
            the observation and action fields are set by the :class:`Subactor`.
        actor_critic: :class:`ActorCriticConfig`.
        horizon: Imagination horizon (appendix E: 16).
        imagine_sample: Sample the imagined latents (True, as the official code) or take their modes.
        model_lr: World-model learning rate (appendix E: 1e-4, AdamW, weight decay 0).
        model_eps: Its Adam epsilon (1e-8, DreamerV3 and the official code).
        model_grad_clip: Its gradient-norm clip (1000).
        model_warmup: Linear learning-rate warm-up of the world model over this many updates (the
            official code's 1000; 0 for none).
        autoencoder: Train a subgoal autoencoder on this level's ``h`` (needed by a level that receives
            subgoals, and for the novelty reward).
        subgoal_groups: Categoricals of a subgoal (8).
        subgoal_classes: Classes of each (8).
        autoencoder_hidden: Width of the autoencoder's MLPs.
        autoencoder_layers: Hidden layers of the autoencoder's MLPs.
        autoencoder_beta: Weight of the autoencoder's KL term.
        autoencoder_kl_target: Adapt the KL weight to hold the autoencoder's KL near this many nats
            (Director's choice: 10; see :class:`~hieros_lib.hrl.SubgoalAutoencoder`), or None for the
            fixed ``autoencoder_beta`` (the paper).
        autoencoder_lr: Learning rate of the autoencoder (1e-4, eps 1e-6, clip 100, as the official code).
        subgoal_weight: Weight of the subgoal reward (appendix E: 0.3; the defaults of the three weights are
            :class:`~hieros_lib.hrl.RewardWeights`).
        novelty_weight: Weight of the novelty reward (0.1).
        extrinsic_weight: Weight of the environment reward (1).
        novelty: Whether this level has a novelty reward and critic (the paper's runs: higher levels only).
        goal_input: How a received subgoal enters the actor and critics: ``"encoded"``, the 8 x 8 one-hot
            code (the paper), or ``"decoded"`` by this level's autoencoder into ``h`` space (Director;
            ablation G.7).
        autoencoder_data: What the subgoal autoencoder trains on: ``"replay"``, the posterior ``h`` of the
            replay batch (the paper's section 2.1 and Director), or ``"imagined"``, the ``h`` of the
            imagined trajectories of the same update (the official Hieros code); either way detached.
        subgoal_space: Where subgoals live: ``"h"``, the world model's ``h`` as it is (the paper), or
            ``"standardized"``, ``h`` less its running mean over its running deviation per dimension,
            for the autoencoder's encoder and the subgoal reward (a departure: see
            :class:`~hieros_lib.hrl.SubgoalAutoencoder` and the docs' "Does the hierarchy help?").
        skip_nonfinite: Skip an update whose loss or gradient norm is not finite (reported as
            ``nonfinite`` in the metrics; one host synchronisation per update to check). Running
            statistics (return scales, the autoencoder's variance, slow critics) move only with an
            accepted update.
        compile: ``torch.compile`` the world-model loss, the actor-critic loss and the acting step:
            ``"none"`` (eager, the default), or a mode: ``"default"``, ``"reduce-overhead"``,
            ``"max-autotune"``. Imagination stays eager (a Python loop over the horizon). Compiled and
            eager results agree to float32 rounding (tested).
        compile_backend: The ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` traces without
            generating code, for checking a model compiles).
        autocast: ``"bfloat16"`` runs the world model's loss and imagination under bf16 autocast (S5
            keeps its scan in float32 / complex64; the actor-critic and every return stay float32), or
            ``"none"``.
    """

    world_model: str = "s5wm"
    world_model_preset: str = "paper"
    world_model_overrides: dict[str, Any] = field(default_factory=dict)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    horizon: int = 16
    imagine_sample: bool = True
    model_lr: float = 1e-4
    model_eps: float = 1e-8
    model_grad_clip: float = 1000.0
    model_warmup: int = 1000
    autoencoder: bool = False
    subgoal_groups: int = 8
    subgoal_classes: int = 8
    autoencoder_hidden: int = 256
    autoencoder_layers: int = 2
    autoencoder_beta: float = 0.5
    autoencoder_kl_target: float | None = None
    autoencoder_lr: float = 1e-4
    autoencoder_data: str = "replay"
    subgoal_weight: float = RewardWeights().subgoal
    novelty_weight: float = RewardWeights().novelty
    extrinsic_weight: float = RewardWeights().extrinsic
    novelty: bool = False
    goal_input: str = "encoded"
    subgoal_space: str = "h"
    skip_nonfinite: bool = True
    compile: str = "none"
    compile_backend: str = "inductor"
    autocast: str = "none"

    def __post_init__(self) -> None:
        check(self.world_model in available_world_models(), "world_model",
              f"one of {available_world_models()}", got=repr(self.world_model))
        check(self.world_model_preset in ("paper", "small", "tiny"), "world_model_preset",
              "'paper', 'small' or 'tiny'", got=repr(self.world_model_preset))
        check(isinstance(self.actor_critic, ActorCriticConfig), "actor_critic", "an ActorCriticConfig",
              got=type(self.actor_critic).__name__)
        check_int(self.horizon, "horizon", minimum=1)
        check_int(self.model_warmup, "model_warmup", minimum=0)
        for name in ("subgoal_groups", "subgoal_classes", "autoencoder_hidden"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.autoencoder_layers, "autoencoder_layers", minimum=0)
        for name in ("model_lr", "model_eps", "model_grad_clip", "autoencoder_lr"):
            check_float(getattr(self, name), name, minimum=0.0, exclusive_minimum=True)
        for name in ("autoencoder_beta", "subgoal_weight", "novelty_weight", "extrinsic_weight"):
            check_float(getattr(self, name), name, minimum=0.0)
        if self.autoencoder_kl_target is not None:
            check_float(self.autoencoder_kl_target, "autoencoder_kl_target", minimum=0.0,
                        exclusive_minimum=True)
        check(not self.novelty or self.autoencoder, "novelty", "autoencoder=True (novelty is its error)")
        check(self.subgoal_space in ("h", "standardized"), "subgoal_space", "'h' or 'standardized'",
              got=repr(self.subgoal_space))
        check(self.autoencoder_data in ("replay", "imagined"), "autoencoder_data", "'replay' or 'imagined'",
              got=repr(self.autoencoder_data))
        check(self.goal_input in ("encoded", "decoded"), "goal_input", "'encoded' or 'decoded'",
              got=repr(self.goal_input))
        check(self.compile in _COMPILE_MODES, "compile", f"one of {_COMPILE_MODES}", got=repr(self.compile))
        check(isinstance(self.compile_backend, str) and self.compile_backend != "", "compile_backend",
              "a torch.compile backend name such as 'inductor'", got=repr(self.compile_backend))
        check(self.autocast in ("none", "bfloat16"), "autocast", "'none' or 'bfloat16'",
              got=repr(self.autocast))

    def replace(self, **changes: Any) -> SubactorConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def paper(cls, **overrides: Any) -> SubactorConfig:
        """Appendix E: S5WM at paper size, horizon 16, MLP units 256, the optimisers above."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> SubactorConfig:
        """A small level that learns the embedded Catch on two CPU cores in a few minutes.

        Departures from :meth:`paper`, each for the few updates a CPU affords (measured on Catch, see the
        docs): the world model's ``small`` preset (16 x 16 images, 16 x 16 latents, width 128); actor and
        critics of 128 units; horizon 10 (a ball falls in 7 steps); learning rates of 1e-3 (world model,
        no warm-up) and 3e-4 (actor and critics); and an entropy bonus of 3e-3 instead of 3e-4, without
        which the actor became deterministic (entropy 0.06 nats) before the world model had learned the
        rewards, and never recovered.
        """
        base: dict[str, Any] = {
            "world_model_preset": "small",
            "actor_critic": ActorCriticConfig(units=128, actor_lr=3e-4, critic_lr=3e-4, entropy_scale=3e-3),
            "horizon": 10,
            "model_lr": 1e-3,
            "model_warmup": 0,
            "autoencoder_hidden": 128,
            "autoencoder_lr": 1e-3,
        }
        return cls(**{**base, **overrides})


class _Imagined(NamedTuple):
    """What one update imagines: the actor-critic's inputs, actions, rewards per term and continuation
    flags (:meth:`Subactor._update_actor_critic` takes :attr:`update`), metrics, and the imagined ``h``."""

    inputs: torch.Tensor
    actions: torch.Tensor
    rewards: dict[str, torch.Tensor]
    cont: torch.Tensor
    metrics: dict[str, torch.Tensor]
    deter: torch.Tensor

    @property
    def update(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        return self.inputs, self.actions, self.rewards, self.cont


class SubactorState(NamedTuple):
    """The acting state of one level for ``N`` environments.

    Attributes:
        model: The world model's posterior state of the last step, batch ``(N,)``.
        action: ``(N, groups, classes)`` one-hot action taken after it (zeros before the first step).
    """

    model: Any
    action: torch.Tensor


class Subactor(nn.Module):
    r"""One level of Hieros: world model, actor-critic, and optionally a subgoal autoencoder.

    With a hierarchy of depth 1 this is a DreamerV3-style agent on any registered world model (the
    paper's ablation G.3). It acts with :meth:`policy` (explicit state for ``N`` environments) and
    learns with :meth:`train_step` from a replay batch:

    1. one world-model update (:meth:`~hieros_lib.world_models.WorldModel.loss`, AdamW);
    2. imagination of ``horizon`` steps from every posterior state of the batch, under the actor,
       without gradients (the actor-critic trains on detached inputs, so no graph through the world
       model is built or kept), or for a continuous actor with ``continuous_gradient="backprop"`` with
       the gradient through the actions, the frozen world model and the rewards into the actor;
    3. rewards per term: the predicted extrinsic reward, the subgoal reward against the decoded subgoal
       the start state was given (held over the horizon), the novelty reward; one actor and one critic
       update per :class:`~hieros_lib.agents.ActorCritic`;
    4. one update of the subgoal autoencoder on the posterior ``h`` of the batch (if it has one).

    Args:
        config: :class:`SubactorConfig`.
        obs_shape: ``(H, W, C)`` uint8 images or ``(D,)`` float vectors.
        action_shape: ``(A,)`` discrete actions, or ``(groups, classes)`` (a higher level's subgoals), or
            with ``continuous`` ``(d,)`` continuous actions in ``[-1, 1]``.
        goal_shape: ``(groups, classes)`` of the subgoals this level receives, or None (the top level).
        continuous: Continuous actions: ``action_shape = (d,)``, DreamerV3's bounded normal actor
            (:class:`ActorCritic`); actions are ``(N, 1, d)`` floats in ``[-1, 1]``.
        device: Device of the parameters.

    Examples:
        >>> import torch
        >>> level = Subactor(SubactorConfig.tiny(), obs_shape=(16, 16, 3), action_shape=(3,))
        >>> state = level.initial_state(2)
        >>> step = {"obs": torch.zeros(2, 16, 16, 3, dtype=torch.uint8),
        ...         "is_first": torch.ones(2, dtype=torch.bool), "reward": torch.zeros(2)}
        >>> action, state = level.policy(step, state, generator=torch.Generator().manual_seed(0))
        >>> action.shape, int(action.sum())
        (torch.Size([2, 1, 3]), 2)
    """

    def __init__(
        self,
        config: SubactorConfig,
        *,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...],
        goal_shape: tuple[int, int] | None = None,
        continuous: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(config, SubactorConfig), "config", "a SubactorConfig", got=type(config).__name__)
        self.continuous = bool(continuous)
        obs_shape = tuple(int(d) for d in obs_shape)
        check(len(obs_shape) in (1, 3) and all(d >= 1 for d in obs_shape), "obs_shape",
              "(H, W, C) for images or (D,) for vectors", got=obs_shape)
        action_shape = tuple(int(d) for d in action_shape)
        check(len(action_shape) in (1, 2) and all(d >= 1 for d in action_shape), "action_shape",
              "(A,) or (groups, classes)", got=action_shape)
        check(not self.continuous or len(action_shape) == 1, "action_shape", "(d,) for continuous actions",
              got=action_shape)
        if goal_shape is not None:
            goal_shape = (int(goal_shape[0]), int(goal_shape[1]))
        self.config = config
        self.obs_shape, self.goal_shape = obs_shape, goal_shape
        self.groups, self.classes = (1, action_shape[0]) if len(action_shape) == 1 else action_shape
        self.action_shape = action_shape
        self.action_dim = self.groups * self.classes
        overrides = dict(config.world_model_overrides)
        if len(obs_shape) == 3:
            overrides.update(image_size=obs_shape[0], channels=obs_shape[2])
        else:
            overrides.update(vector_dim=obs_shape[0])
        wm_config = world_model_config(
            config.world_model, config.world_model_preset, action_dim=self.action_dim, **overrides
        )
        self.model = make_world_model(config.world_model, wm_config)
        terms = ["extrinsic"]
        weights = {"extrinsic": config.extrinsic_weight}
        if goal_shape is not None:
            check(config.autoencoder, "config.autoencoder", "True for a level that receives subgoals "
                  "(they are decoded by its autoencoder)")
            terms.append("subgoal")
            weights["subgoal"] = config.subgoal_weight
        if config.novelty:
            terms.append("novelty")
            weights["novelty"] = config.novelty_weight
        if goal_shape is None:
            goal_dim = 0
        elif config.goal_input == "encoded":
            goal_dim = goal_shape[0] * goal_shape[1]
        else:
            goal_dim = self.model.deter_dim
        self.actor_critic = ActorCritic(self.model.feature_dim, self.groups, self.classes, goal_dim=goal_dim,
                                        continuous=self.continuous, terms=terms, weights=weights,
                                        config=config.actor_critic)
        self.autoencoder: SubgoalAutoencoder | None = None
        if config.autoencoder:
            self.autoencoder = SubgoalAutoencoder(
                self.model.deter_dim,
                groups=config.subgoal_groups,
                classes=config.subgoal_classes,
                hidden=config.autoencoder_hidden,
                layers=config.autoencoder_layers,
                beta=config.autoencoder_beta,
                kl_target=config.autoencoder_kl_target,
                standardize=config.subgoal_space == "standardized",
            )
            if goal_shape is not None:
                expected = (config.subgoal_groups, config.subgoal_classes)
                check(goal_shape == expected, "goal_shape", f"the autoencoder's {expected}", got=goal_shape)
        if device is not None:
            self.to(device)
        self._optimizers = self._make_optimizers()
        self.updates = 0
        # compiled twins of the hot functions, by name; in eager mode there are none, and every call goes
        # through the submodule's method as it is at call time (so a patched method is honoured)
        self._compiled: dict[str, Callable[..., Any]] = {}
        if config.compile != "none":
            options: dict[str, Any] = {"backend": config.compile_backend}
            if config.compile_backend == "inductor" and config.compile != "default":
                options["mode"] = config.compile
            self._compiled = {
                "model_loss": torch.compile(self.model.loss, **options),
                "actor_critic_loss": torch.compile(self.actor_critic.loss, **options),
                "act": torch.compile(self.actor_critic.act, **options),
                "observe_step": torch.compile(self.model.observe_step, **options),
            }

    # ---------------------------------------------------------------------------------- optimisers
    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        fused: dict[str, Any] = {"fused": True} if self.device.type == "cuda" else {}
        actor, critic = self.actor_critic.optimizers()
        optimizers: dict[str, torch.optim.Optimizer] = {
            "model": torch.optim.AdamW(
                self.model.parameters(), lr=c.model_lr, eps=c.model_eps, weight_decay=0.0, **fused
            ),
            "actor": actor,
            "critic": critic,
        }
        if self.autoencoder is not None:
            optimizers["autoencoder"] = torch.optim.AdamW(
                self.autoencoder.parameters(), lr=c.autoencoder_lr, eps=1e-6, weight_decay=0.0, **fused
            )
        return optimizers

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def optimizer_state_dict(self) -> dict[str, Any]:
        """The optimisers' states and the update counter (for checkpoints; the modules are in
        ``state_dict()``)."""
        return {"updates": self.updates, **{k: v.state_dict() for k, v in self._optimizers.items()}}

    def load_optimizer_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`optimizer_state_dict`."""
        check(set(state) == {"updates", *self._optimizers}, "state",
              f"optimiser states for {sorted(self._optimizers)}", got=sorted(state))
        for name, optimizer in self._optimizers.items():
            optimizer.load_state_dict(state[name])
        self.updates = int(state["updates"])

    # ------------------------------------------------------------------------------------- acting
    def initial_state(self, num_envs: int) -> SubactorState:
        """The state before any step, for ``num_envs`` environments."""
        num_envs = check_int(num_envs, "num_envs", minimum=1)
        device = self.device
        action = torch.zeros(num_envs, self.groups, self.classes, device=device)
        return SubactorState(self.model.initial_state(num_envs, device=device), action)

    def goal_input(self, goal: torch.Tensor | None) -> torch.Tensor | None:
        """A received subgoal ``(..., groups, classes)`` as the actor and critics read it: the one-hot code
        itself (``goal_input="encoded"``, the paper's choice) or decoded by this level's autoencoder into
        its ``h`` space (``"decoded"``, Director's choice, ablation G.7)."""
        if goal is None or self.config.goal_input == "encoded":
            return goal
        assert self.autoencoder is not None
        return self.autoencoder.decode(goal)

    def actor_inputs(self, state: Any, goal: torch.Tensor | None) -> torch.Tensor:
        """The actor's input (equation 3) for a world-model state and the subgoal it holds."""
        m = self.model
        features, entropy = m.features(state), m.entropy(state)
        goal_in = self.goal_input(goal)
        return self.actor_critic.inputs(features, m.reward(state), m.cont(state), entropy, goal_in)

    @torch.no_grad()
    def observe(
        self,
        step: Mapping[str, torch.Tensor],
        state: SubactorState,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> Any:
        """The world model's posterior state for one step of ``N`` environments (see :meth:`policy`)."""
        check(isinstance(step, Mapping) and "obs" in step and "is_first" in step, "step",
              "a mapping with 'obs' and 'is_first'", got=type(step).__name__)
        observe_step = self._compiled.get("observe_step", self.model.observe_step)
        return observe_step(step["obs"], state.action.flatten(-2), step["is_first"], state.model,
                            reward=step.get("reward"), sample=sample, generator=generator)

    @torch.no_grad()
    def act(
        self,
        posterior: Any,
        goal: torch.Tensor | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One-hot actions ``(N, groups, classes)`` for posterior states and the subgoals they hold."""
        act = self._compiled.get("act", self.actor_critic.act)
        return act(self.actor_inputs(posterior, goal), sample=sample, generator=generator)

    @torch.no_grad()
    def policy(
        self,
        step: Mapping[str, torch.Tensor],
        state: SubactorState,
        *,
        mode: str = "train",
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> tuple[torch.Tensor, SubactorState]:
        """Observe one step of ``N`` environments and choose the next actions (:meth:`observe`, :meth:`act`).

        Args:
            step: ``obs`` ``(N, *obs_shape)``, ``is_first`` ``(N,)`` bool, ``reward`` ``(N,)`` (the reward
                received with ``obs``; TWM reads it), and ``goal`` ``(N, groups, classes)`` for a level
                that receives subgoals. Tensors on this module's device.
            state: :class:`SubactorState` of the previous step (``initial_state(N)`` at the start).
            mode: ``"train"`` samples the latent and the action; ``"eval"`` takes the mode of each
                categorical (latent and action), so evaluation is deterministic given the observations.
            generator: Random generator for the latent and action samples.
            validate: Check that the observations (vectors), the reward and the goal are finite (one
                host synchronisation per call; a loop whose environments already check them, as
                :class:`~hieros_lib.envs.GymAdapter` does, passes False). Shapes are checked always.

        Returns:
            ``(action, state)``: one-hot ``(N, groups, classes)`` (continuous: ``(N, 1, d)`` in
            ``[-1, 1]``) and the new state.

        Raises:
            HierosError: On a malformed step, a goal for a level without one (or none for a level with
                one), or (``validate``) a NaN or infinite value.
        """
        check(mode in ("train", "eval"), "mode", "'train' or 'eval'", got=repr(mode))
        goal = step.get("goal") if isinstance(step, Mapping) else None
        wanted = f"a tensor of shape (N, *{self.goal_shape})" if self.goal_shape else "no goal (none here)"
        check((goal is None) == (self.goal_shape is None), "step['goal']", wanted,
              got=None if goal is None else type(goal).__name__)
        if goal is not None:
            check(isinstance(goal, torch.Tensor) and tuple(goal.shape[1:]) == self.goal_shape, "step['goal']",
                  wanted, got=getattr(goal, "shape", type(goal).__name__))
        if validate and isinstance(step, Mapping):
            checked = [step.get("reward"), goal]
            if len(self.obs_shape) == 1:
                checked.append(step.get("obs"))
            values = [x.float() for x in checked if isinstance(x, torch.Tensor) and x.is_floating_point()]
            if values:
                finite = torch.stack([torch.isfinite(x).all() for x in values]).all()
                check(bool(finite), "step", "finite observations, reward and goal", got="NaN or inf")
        sample = mode == "train"
        posterior = self.observe(step, state, sample=sample, generator=generator)
        action = self.act(posterior, step.get("goal"), sample=sample, generator=generator)
        return action, SubactorState(posterior, action)

    # ----------------------------------------------------------------------------------- training
    def _warmup_scale(self) -> float:
        warmup = self.config.model_warmup
        return 1.0 if warmup == 0 else min(1.0, (self.updates + 1) / warmup)

    def train_step(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> dict[str, torch.Tensor]:
        """One update of every part of the level from a replay batch; returns detached metrics.

        Host synchronisations: one per update (world model, actor-critic, autoencoder) to skip a
        non-finite loss (none with ``skip_nonfinite=False``), and those of ``validate``.

        Args:
            batch: ``obs``, ``action`` (one-hot ``(B, T, A)``, or ``(B, T, groups, classes)``),
                ``reward``, ``is_first``, ``is_last``, ``is_terminal`` ``(B, T)``, and ``goal``
                ``(B, T, groups, classes)`` for a level that receives subgoals; on this module's device.
            generator: Random generator for every sample of the step.
            validate: Check the batch's values (finite, actions in ``[-1, 1]``: host synchronisations);
                its structure, shapes and dtypes are checked either way.

        Returns:
            Named 0-d tensors (losses, rewards per term, returns, entropies, ...).

        Raises:
            HierosError: On a malformed batch.
        """
        batch = self._check_batch(batch, values=validate)
        out, metrics = self._update_world_model(batch, generator)
        if out is None:
            return metrics
        imagined = self._imagine(out, batch, generator)
        ac_metrics = self._update_actor_critic(*imagined.update)
        metrics.update(ac_metrics)
        if "nonfinite" in ac_metrics:
            return metrics
        metrics.update(imagined.metrics)
        if self.autoencoder is not None:
            ae_metrics = self._update_autoencoder(out, generator, imagined.deter)
            metrics.update(ae_metrics)
            if "nonfinite" in ae_metrics:
                return metrics
        self.updates += 1
        metrics["nonfinite"] = torch.zeros(())
        return metrics

    def train_world_model(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> dict[str, torch.Tensor]:
        """One update of the world model alone (no imagination, actor-critic or autoencoder): to give
        the world model more updates than the rest, e.g. on random play before the level learns to act
        in it. It does not count in ``updates`` (the world model's learning-rate warm-up follows the
        level's updates).

        Args:
            batch: As for :meth:`train_step`.
            generator: Random generator for the latent samples.
            validate: As for :meth:`train_step`.

        Returns:
            The world model's metrics (``model/...``), and ``nonfinite`` (1 if the update was skipped).

        Example:
            >>> import torch
            >>> from hieros_lib.agents import Subactor, SubactorConfig
            >>> level = Subactor(SubactorConfig.tiny(world_model_preset="tiny"), obs_shape=(16, 16, 3),
            ...                  action_shape=(3,))
            >>> batch = {"obs": torch.zeros(2, 4, 16, 16, 3, dtype=torch.uint8),
            ...          "action": torch.eye(3)[torch.zeros(2, 4, dtype=torch.long)],
            ...          "reward": torch.zeros(2, 4), "is_first": torch.zeros(2, 4, dtype=torch.bool),
            ...          "is_last": torch.zeros(2, 4, dtype=torch.bool),
            ...          "is_terminal": torch.zeros(2, 4, dtype=torch.bool)}
            >>> float(level.train_world_model(batch)["nonfinite"])
            0.0
        """
        batch = self._check_batch(batch, values=validate)
        out, metrics = self._update_world_model(batch, generator)
        if out is not None:
            metrics["nonfinite"] = torch.zeros(())
        return metrics

    def _autocast(self) -> Any:
        enabled = self.config.autocast == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # The phases of a training step (benchmarks/bench_agent.py times them one by one).
    def _check_batch(self, batch: Mapping[str, torch.Tensor], values: bool = True) -> dict[str, torch.Tensor]:
        batch = dict(batch)
        if batch["action"].dim() == 4:
            batch["action"] = batch["action"].flatten(-2)
        validate_batch(batch, obs_shape=self.model.obs_shape, action_dim=self.action_dim, values=values)
        check((batch.get("goal") is not None) == (self.goal_shape is not None), "batch",
              "a 'goal' field exactly when the level receives subgoals", got=sorted(batch))
        return batch

    def _accept(
        self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_norm: torch.Tensor, what: str
    ) -> bool:
        """Whether an update may be applied: its loss and gradient norm are finite (one host
        synchronisation; always True with ``skip_nonfinite=False``). A refused update's gradients are
        dropped."""
        if not self.config.skip_nonfinite or bool(torch.isfinite(loss.detach() + grad_norm.detach())):
            return True
        optimizer.zero_grad(set_to_none=True)
        logger.warning("non-finite %s loss or gradient: update skipped", what)
        return False

    def _update_world_model(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator | None
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        """1. One world-model update; ``(None, {"nonfinite": 1})`` if the loss or the gradient norm is not
        finite (nothing is applied then)."""
        c, opt = self.config, self._optimizers["model"]
        for group in opt.param_groups:
            group["lr"] = c.model_lr * self._warmup_scale()
        with self._autocast():
            model_loss = self._compiled.get("model_loss", self.model.loss)
            out = model_loss(batch, generator=generator, validate=False)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), c.model_grad_clip)
        if not self._accept(opt, out.loss, norm, "world-model"):
            return None, {"nonfinite": torch.ones(())}
        opt.step()
        metrics = {f"model/{k.replace('/', '_')}": v for k, v in out.metrics.items()}
        metrics["model/grad_norm"] = norm.detach()
        return out, metrics

    def _imagine(
        self, out: Any, batch: dict[str, torch.Tensor], generator: torch.Generator | None
    ) -> _Imagined:
        """2. Imagination from every posterior state and the rewards per term: without gradients, or,
        for a dynamics-backpropagation actor, with gradients through the actions into the actor only
        (the world model and the autoencoder are frozen meanwhile)."""
        backprop = self.actor_critic.backprop
        frozen = [self.model] + ([self.autoencoder] if self.autoencoder is not None else [])
        with torch.set_grad_enabled(backprop), _frozen(frozen, backprop):
            return self._imagine_rewards(out, batch, generator)

    def _imagine_rewards(
        self, out: Any, batch: dict[str, torch.Tensor], generator: torch.Generator | None
    ) -> _Imagined:
        c = self.config
        start = detach_state(self.model.start_states(out.observed))
        goal = batch.get("goal")
        start_goal = None if goal is None else goal.flatten(0, 1)
        goal_in = self.goal_input(start_goal)
        ac = self.actor_critic
        act = self._compiled.get("act", ac.act)

        drawn: list[torch.Tensor] = []  # continuous samples as drawn, for their log-probability

        def policy(step: ImaginedStep) -> torch.Tensor:
            inputs = ac.inputs(step.features, step.reward, step.cont, step.entropy, goal_in)
            if ac.continuous:
                drawn.append(ac.sample(ac.policy_params(inputs), generator=generator))
                executed = drawn[-1].clamp(-1.0, 1.0)  # what the environment would execute
                if ac.backprop:  # clipped forward, the gradient of the unclipped sample backward
                    executed = drawn[-1] + (executed - drawn[-1]).detach()
                return executed.flatten(-2)
            return act(inputs, sample=True, generator=generator).flatten(-2)

        with self._autocast():
            imag = self.model.imagine(start, policy, c.horizon, sample=c.imagine_sample, generator=generator,
                                      validate=False)
        if imag.features.dtype != torch.float32:  # the actor-critic and its returns run in float32
            names = ("features", "deter", "reward", "cont", "entropy")
            imag = imag._replace(**{name: getattr(imag, name).float() for name in names})
        held = None
        if goal_in is not None:  # each start state's subgoal is held over the horizon
            held = goal_in.unsqueeze(1).expand(-1, c.horizon + 1, *goal_in.shape[1:])
        inputs = ac.inputs(imag.features, imag.reward, imag.cont, imag.entropy, held)
        rewards = {"extrinsic": imag.reward}
        if "subgoal" in ac.terms:
            assert self.autoencoder is not None and start_goal is not None
            target = self.autoencoder.decode(start_goal)
            if self.autoencoder.standardize:  # states and subgoals compared in the standardised space
                rewards["subgoal"] = subgoal_reward(self.autoencoder.standardized(imag.deter),
                                                    self.autoencoder.standardized(target)[:, None])
            else:
                rewards["subgoal"] = subgoal_reward(imag.deter, target[:, None])
        if "novelty" in ac.terms:
            assert self.autoencoder is not None
            rewards["novelty"] = novelty_reward(imag.deter, self.autoencoder)
        start_cont = (~batch["is_terminal"]).flatten().to(imag.cont.dtype)
        cont = torch.cat([start_cont[:, None], imag.cont[:, 1:]], 1)
        if ac.continuous:
            actions = torch.stack(drawn, 1).detach()
        else:
            actions = imag.actions.unflatten(-1, (self.groups, self.classes))
        metrics = {
            "imagination/cont": imag.cont[:, 1:].mean(),
            "imagination/prior_entropy": imag.entropy.mean(),
        }
        return _Imagined(inputs, actions, rewards, cont, metrics, imag.deter)

    def _update_actor_critic(
        self,
        inputs: torch.Tensor,
        actions: torch.Tensor,
        rewards: dict[str, torch.Tensor],
        cont: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """3. One actor and one critic update on the imagined trajectories."""
        c, opt = self.config, self._optimizers
        ac = self._compiled.get("actor_critic_loss", self.actor_critic.loss)(inputs, actions, rewards, cont)
        opt["actor"].zero_grad(set_to_none=True)
        opt["critic"].zero_grad(set_to_none=True)
        (ac.actor + ac.critic).backward()
        clip = c.actor_critic.grad_clip
        actor_norm = nn.utils.clip_grad_norm_(self.actor_critic.actor.parameters(), clip)
        critic_norm = nn.utils.clip_grad_norm_(self.actor_critic.critics.parameters(), clip)
        if not self._accept(opt["actor"], ac.actor + ac.critic, actor_norm + critic_norm, "actor-critic"):
            opt["critic"].zero_grad(set_to_none=True)
            return {"nonfinite": torch.ones(())}
        opt["actor"].step()
        opt["critic"].step()
        self.actor_critic.update_slow_critics()
        self.actor_critic.commit(ac.statistics)  # the return scales move only with an accepted update
        norms = {"actor/grad_norm": actor_norm.detach(), "critic/grad_norm": critic_norm.detach()}
        return {**norms, **ac.metrics}

    def _update_autoencoder(
        self, out: Any, generator: torch.Generator | None, imagined: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """4. One update of the subgoal autoencoder on the posterior ``h`` of the batch, or on the
        imagined ``h`` (``(starts, horizon + 1, deter)``) with ``autoencoder_data="imagined"``."""
        assert self.autoencoder is not None
        if self.config.autoencoder_data == "imagined":
            check(imagined is not None, "imagined", "the imagined h (autoencoder_data='imagined')")
            assert imagined is not None
            h = imagined.detach().float()
        else:
            h = self.model.deter(out.observed.posterior).detach().float()
        variance = self.autoencoder.variance_step(h)
        mean = self.autoencoder.mean_step(h) if self.autoencoder.standardize else None
        loss, ae_metrics = self.autoencoder.loss(h, generator=generator, variance=variance)
        opt = self._optimizers["autoencoder"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(self.autoencoder.parameters(), 100.0)
        if not self._accept(opt, loss, norm, "autoencoder"):
            return {"nonfinite": torch.ones(())}
        opt.step()
        self.autoencoder.commit_variance(variance)  # the variance EMA moves only with an accepted update
        if mean is not None:
            self.autoencoder.commit_mean(mean)
        self.autoencoder.adapt_kl(ae_metrics["kl"])
        return {f"autoencoder/{k}": v for k, v in ae_metrics.items()}

    @staticmethod
    def one_hot(indices: torch.Tensor, classes: int) -> torch.Tensor:
        """``(N,)`` action indices -> ``(N, 1, classes)`` one-hot float (level 0's action format)."""
        return F.one_hot(indices.long(), classes).float()[:, None]


@contextlib.contextmanager
def _frozen(modules: Sequence[nn.Module], enabled: bool) -> Iterator[None]:
    """Within the block, the parameters of ``modules`` take no gradient (if ``enabled``); their own
    ``requires_grad`` flags come back afterwards, also on an exception."""
    if not enabled:
        yield
        return
    params = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
