"""DreamerV3's actor-critic with one critic per reward term (Hieros, equation 1)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hieros_lib.agents._returns import ReturnNormalizer, lambda_return
from hieros_lib.errors import check, check_float, check_int
from hieros_lib.hrl import RewardWeights
from hieros_lib.nn import (
    MLP,
    TwoHot,
    categorical_entropy,
    categorical_log_probs,
    sample_onehot,
    symlog,
    unimix_logits,
)

__all__ = ["CONTINUOUS_GRADIENTS", "REWARD_TERMS", "ActorCritic", "ActorCriticConfig", "ActorCriticLoss"]

REWARD_TERMS: tuple[str, ...] = ("extrinsic", "subgoal", "novelty")
"""The reward terms of equation 1 of the Hieros paper, each with its own critic."""

CONTINUOUS_GRADIENTS: tuple[str, ...] = ("reinforce", "backprop")
"""The gradient estimators of a continuous actor (``continuous_gradient`` of :class:`ActorCriticConfig`)."""


@dataclass(frozen=True, kw_only=True)
class ActorCriticConfig:
    """Hyperparameters of :class:`ActorCritic` (defaults: Hieros appendix E and DreamerV3 2023).

    Attributes:
        units: Width of the actor and critic MLPs (appendix E: MLP units 256).
        layers: Hidden layers of the actor and critic MLPs (DreamerV3 / the official code: 2).
        discount: ``gamma`` (DreamerV3: ``1 - 1/333``).
        lam: ``lambda`` of the returns (0.95).
        entropy_scale: Weight of the actor's entropy bonus (DreamerV3: ``3e-4`` on the raw entropy).
        unimix: Uniform mix of the actor's categorical(s) (1%).
        slow_critic_rate: EMA rate of each critic's slow copy (0.02 per update).
        slow_critic_scale: Weight of the regulariser towards the slow critic's prediction (1.0).
        return_rate: EMA rate of the return percentiles (0.01).
        value_bins: Two-hot bins of the critics (255, in symlog space).
        extra_inputs: Feed the actor and critics ``symlog`` of the predicted reward, continuation and
            prior entropy besides the model features (equation 3; the official code's
            ``additional_inputs``).
        actor_lr: Learning rate of the actor (DreamerV3 2023: 3e-5).
        critic_lr: Learning rate of the critics (3e-5).
        eps: Adam epsilon of both (1e-5).
        grad_clip: Gradient norm clip of both (100).
        weight_decay: AdamW's decoupled weight decay (0, appendix E; the official code leaves
            ``torch.optim.AdamW``'s silent default of 0.01 in place).
        min_std: Smallest standard deviation of a continuous actor (DreamerV3: 0.1).
        max_std: Largest standard deviation of a continuous actor (DreamerV3: 1.0).
        continuous_gradient: The gradient estimator of a continuous actor: ``"reinforce"``, the
            likelihood-ratio gradient on the normalised advantages, as for discrete actions (DreamerV3's
            current version, its Nature paper and code; the default), or ``"backprop"``, the gradient of
            the normalised λ-returns through the reparameterised actions, the world model's dynamics and
            reward heads and the critics' bootstrap values (DreamerV3 2023's choice for continuous
            actions). Discrete actors always use REINFORCE.
    """

    units: int = 256
    layers: int = 2
    discount: float = 1.0 - 1.0 / 333.0
    lam: float = 0.95
    entropy_scale: float = 3e-4
    unimix: float = 0.01
    slow_critic_rate: float = 0.02
    slow_critic_scale: float = 1.0
    return_rate: float = 0.01
    value_bins: int = 255
    extra_inputs: bool = True
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    eps: float = 1e-5
    grad_clip: float = 100.0
    weight_decay: float = 0.0
    min_std: float = 0.1
    max_std: float = 1.0
    continuous_gradient: str = "reinforce"

    def __post_init__(self) -> None:
        check_int(self.units, "units", minimum=1)
        check_int(self.layers, "layers", minimum=0)
        check_int(self.value_bins, "value_bins", minimum=2)
        check_float(self.discount, "discount", minimum=0.0, maximum=1.0)
        check_float(self.lam, "lam", minimum=0.0, maximum=1.0)
        check_float(self.unimix, "unimix", minimum=0.0, maximum=1.0)
        check_float(self.slow_critic_rate, "slow_critic_rate", minimum=0.0, maximum=1.0)
        for name in ("entropy_scale", "slow_critic_scale", "weight_decay"):
            check_float(getattr(self, name), name, minimum=0.0)
        for name in ("actor_lr", "critic_lr", "eps", "grad_clip", "return_rate"):
            check_float(getattr(self, name), name, minimum=0.0, exclusive_minimum=True)
        check_float(self.min_std, "min_std", minimum=0.0, exclusive_minimum=True)
        check_float(self.max_std, "max_std", minimum=self.min_std)
        check(self.continuous_gradient in CONTINUOUS_GRADIENTS, "continuous_gradient",
              f"one of {CONTINUOUS_GRADIENTS}", got=repr(self.continuous_gradient))


class ActorCriticLoss(NamedTuple):
    """What :meth:`ActorCritic.loss` returns.

    Attributes:
        actor: Scalar actor loss.
        critic: Scalar sum of the critic losses.
        metrics: Detached scalars for logging.
        statistics: Per reward term, the return normaliser's new EMAs (:meth:`ReturnNormalizer.step`);
            :meth:`ActorCritic.commit` sets them once the update is accepted.
    """

    actor: torch.Tensor
    critic: torch.Tensor
    metrics: dict[str, torch.Tensor]
    statistics: dict[str, torch.Tensor]


class ActorCritic(nn.Module):
    r"""An actor and one two-hot critic per reward term, trained on imagined trajectories.

    **Actor.** Discrete: ``groups`` categoricals of ``classes`` classes (``groups = 1`` for an
    environment's ``A`` actions, ``8 x 8`` for the subgoals of a higher Hieros level), each mixed with
    ``unimix`` uniform; actions are one-hot. Continuous (``continuous=True``, ``groups = 1``, ``classes =
    d``): DreamerV3's bounded normal, ``N(tanh(mu), sigma)`` per dimension with ``sigma = (max_std -
    min_std) * sigmoid(s + 2) + min_std``; a sample is clipped to ``[-1, 1]`` before it is executed (the
    world model sees the clipped action), and its mode is ``tanh(mu)``. Its input is equation 3 of the
    Hieros paper: the model features ``(h_t, z_t)``, ``symlog`` of the predicted reward, the continuation
    probability and the entropy of the prior, and the one-hot subgoal of the level above if there is one.
    The critics read the same input.

    **Critics.** One per reward term (``extrinsic``, ``subgoal``, ``novelty``): an MLP with a 255-bin
    two-hot head in symlog space, a slow copy updated as an EMA (rate 0.02) and the regulariser
    ``-ln p(v_slow(s))``. Targets are λ-returns (:func:`lambda_return`) with the fast critic, as
    DreamerV3 2023.

    **Actor loss.** REINFORCE on normalised advantages plus an entropy bonus,

    .. math::
        A_t = \frac{\sum_i w_i (R^i_t - v^i(s_t)) / S_i}{\sum_i w_i}, \qquad
        \mathcal{L} = \operatorname{mean}_t\big[\,\omega_t\,(-\ln\pi(a_t \mid s_t)\,\mathrm{sg}(A_t)
        - \eta\, H[\pi(\cdot \mid s_t)])\big],

    with reward weights ``w_i`` (equation 1: extrinsic 1, subgoal 0.3, novelty 0.1), each term's return
    scale ``S_i`` (:class:`ReturnNormalizer`), trajectory weights ``omega_t = prod_{k<=t} gamma c_k /
    gamma`` (``c_0`` is the start state's true continuation) and ``eta = 3e-4``. The official code uses
    the un-normalised advantage; the log-probability and entropy of an ``8 x 8`` action are sums over the
    8 categoricals (the official code averages them).

    **Dynamics backpropagation** (a continuous actor with ``continuous_gradient="backprop"``): the
    imagined trajectory is built with gradients through the reparameterised actions, and the actor
    minimises

    .. math::
        \mathcal{L} = \operatorname{mean}_t\big[\,\omega_t\,(-\tilde A_t - \eta\, H[\pi(\cdot \mid
        s_t)])\big], \qquad \tilde A_t = \frac{\sum_i w_i (R^i_t - \mathrm{sg}(v^i(s_t))) / S_i}
        {\sum_i w_i},

    where the λ-returns ``R^i_t`` keep their gradient through the rewards and the bootstrap values
    ``v^i(s_{t+k})`` of the imagined states (the critics' parameters get no gradient from it: they are
    read detached). The caller keeps the world model out of it (its parameters frozen while it
    imagines, as :class:`~hieros_lib.agents.Subactor` does). The critics train on detached inputs either
    way.

    Args:
        feature_dim: Size of the world model's features.
        action_groups: Number of categoricals of an action (1 for environment actions).
        action_classes: Classes of each categorical.
        goal_dim: Size of the flattened subgoal input (0 for none).
        continuous: Continuous actions of ``action_classes`` dimensions (``action_groups`` must be 1).
        terms: The reward terms with a critic, a subset of :data:`REWARD_TERMS`.
        weights: Weight of each term in the advantage (:class:`~hieros_lib.hrl.RewardWeights` for the
            terms not given: equation 1's 1, 0.3, 0.1).
        config: :class:`ActorCriticConfig`.

    Examples:
        >>> import torch
        >>> ac = ActorCritic(10, 1, 3, config=ActorCriticConfig(units=16))
        >>> inputs = ac.inputs(torch.randn(4, 10), torch.zeros(4), torch.ones(4), torch.ones(4))
        >>> ac.act(inputs, sample=False).shape
        torch.Size([4, 1, 3])
    """

    def __init__(
        self,
        feature_dim: int,
        action_groups: int,
        action_classes: int,
        *,
        goal_dim: int = 0,
        continuous: bool = False,
        terms: Sequence[str] = ("extrinsic",),
        weights: Mapping[str, float] | None = None,
        config: ActorCriticConfig | None = None,
    ) -> None:
        super().__init__()
        config = ActorCriticConfig() if config is None else config
        check(isinstance(config, ActorCriticConfig), "config", "an ActorCriticConfig", got=type(config))
        self.config = config
        self.feature_dim = check_int(feature_dim, "feature_dim", minimum=1)
        self.groups = check_int(action_groups, "action_groups", minimum=1)
        self.classes = check_int(action_classes, "action_classes", minimum=1)
        self.goal_dim = check_int(goal_dim, "goal_dim", minimum=0)
        self.continuous = bool(continuous)
        check(not self.continuous or self.groups == 1, "action_groups", "1 for continuous actions",
              got=self.groups)
        terms = tuple(terms)
        check(
            len(terms) >= 1 and len(set(terms)) == len(terms) and set(terms) <= set(REWARD_TERMS),
            "terms",
            f"distinct reward terms from {REWARD_TERMS}",
            got=terms,
        )
        self.terms = terms
        weights = RewardWeights()._asdict() | dict(weights or {})
        self.weights = {term: check_float(weights[term], f"weights[{term!r}]", minimum=0.0) for term in terms}
        check(sum(self.weights.values()) > 0, "weights", "at least one positive weight", got=self.weights)
        self.input_dim = feature_dim + (3 if config.extra_inputs else 0) + goal_dim
        units, layers = config.units, config.layers
        outputs = self.groups * self.classes * (2 if self.continuous else 1)  # continuous: mean and std
        self.actor = MLP(self.input_dim, outputs, hidden=units, layers=layers)
        critics = {t: MLP(self.input_dim, config.value_bins, hidden=units, layers=layers) for t in terms}
        for critic in critics.values():  # DreamerV3: the value head starts at zero
            last = critic.net[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.critics = nn.ModuleDict(critics)
        self.slow_critics: nn.ModuleDict = copy.deepcopy(self.critics).requires_grad_(False)
        self.normalizers = nn.ModuleDict({t: ReturnNormalizer(rate=config.return_rate) for t in terms})
        self.twohot = TwoHot(config.value_bins)

    @property
    def backprop(self) -> bool:
        """Whether the actor learns by dynamics backpropagation (a continuous actor with
        ``continuous_gradient="backprop"``): its imagination must then keep its gradient."""
        return self.continuous and self.config.continuous_gradient == "backprop"

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, action=({self.groups}, {self.classes}"
            f"{', continuous' if self.continuous else ''}), terms={self.terms}, "
            f"weights={self.weights}"
        )

    # ---------------------------------------------------------------------------------------- inputs
    def inputs(
        self,
        features: torch.Tensor,
        reward: torch.Tensor,
        cont: torch.Tensor,
        entropy: torch.Tensor,
        goal: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The actor's and critics' input (equation 3): ``(..., input_dim)``.

        Args:
            features: ``(..., feature_dim)`` model features.
            reward: ``(...)`` predicted reward.
            cont: ``(...)`` predicted continuation probability.
            entropy: ``(...)`` entropy of the prior.
            goal: ``(..., goal_dim)`` (or ``(..., G, K)``) subgoal one-hot, required iff ``goal_dim``.
        """
        check(
            features.shape[-1] == self.feature_dim,
            "features",
            f"(..., {self.feature_dim})",
            got=tuple(features.shape),
        )
        parts = [features]
        if self.config.extra_inputs:
            extras = torch.stack([reward, cont, entropy], -1).to(features.dtype)
            parts.append(symlog(extras))
        if self.goal_dim:
            check(goal is not None, "goal", f"a subgoal of {self.goal_dim} values (this level has one)")
            assert goal is not None
            goal = goal.reshape(*features.shape[:-1], -1).to(features.dtype)
            check(goal.shape[-1] == self.goal_dim, "goal", f"(..., {self.goal_dim})", got=tuple(goal.shape))
            parts.append(goal)
        else:
            check(goal is None, "goal", "None: this level has no subgoal input", got="a tensor")
        return torch.cat(parts, -1)

    # ----------------------------------------------------------------------------------------- actor
    def policy_params(self, inputs: torch.Tensor) -> torch.Tensor:
        """The actor's distribution: discrete, the (uniform-mixed) log-probabilities ``(..., groups,
        classes)``; continuous, ``(..., 1, d, 2)`` holding the mean ``tanh(mu)`` and the standard
        deviation of every dimension."""
        if not self.continuous:
            raw = self.actor(inputs).unflatten(-1, (self.groups, self.classes))
            return unimix_logits(raw, self.config.unimix)
        raw = self.actor(inputs).unflatten(-1, (1, self.classes, 2))
        low, high = self.config.min_std, self.config.max_std
        std = (high - low) * torch.sigmoid(raw[..., 1] + 2.0) + low
        return torch.stack([torch.tanh(raw[..., 0]), std], -1)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The actor's (uniform-mixed) log-probabilities ``(..., groups, classes)`` (discrete actors)."""
        check(not self.continuous, "logits", "a discrete actor (use policy_params for a continuous one)")
        return self.policy_params(inputs)

    def sample(self, params: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of :meth:`policy_params`' distribution: one-hot ``(..., groups, classes)`` (straight
        through), or continuous ``(..., 1, d)``, reparameterised (``mean + std * eps``) and not clipped."""
        if not self.continuous:
            return sample_onehot(params, generator=generator)
        mean, std = params[..., 0], params[..., 1]
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + std * noise

    def act(
        self, inputs: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Actions to execute: one-hot ``(..., groups, classes)``, a sample or the mode of each
        categorical; or continuous ``(..., 1, d)`` in ``[-1, 1]``, a sample clipped to it or the mean."""
        params = self.policy_params(inputs)
        if self.continuous:
            action = self.sample(params, generator=generator).clamp(-1.0, 1.0) if sample else params[..., 0]
            return action.detach()
        if sample:
            return sample_onehot(params, generator=generator).detach()
        return F.one_hot(params.argmax(-1), self.classes).to(params.dtype)

    def log_prob(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``ln pi(action)`` summed over the categoricals (or the dimensions), ``(...)``."""
        if not self.continuous:
            return (categorical_log_probs(params) * action).sum((-2, -1))
        mean, std = params[..., 0], params[..., 1]
        log_density = -0.5 * ((action - mean) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)
        return log_density.sum((-2, -1))

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        """The entropy of the actor's distribution, summed over categoricals (or dimensions), ``(...)``."""
        if not self.continuous:
            return categorical_entropy(params).sum(-1)
        std = params[..., 1]
        return (std.log() + 0.5 * math.log(2 * math.pi * math.e)).sum((-2, -1))

    # --------------------------------------------------------------------------------------- critics
    def value(self, term: str, inputs: torch.Tensor, *, slow: bool = False) -> torch.Tensor:
        """The (slow) critic's prediction of term ``term``'s return, ``(...)``."""
        critics = self.slow_critics if slow else self.critics
        return self.twohot.mean(critics[term](inputs))

    @torch.no_grad()
    def commit(self, statistics: Mapping[str, torch.Tensor]) -> None:
        """Set the return normalisers to the statistics of an accepted update
        (:attr:`ActorCriticLoss.statistics`)."""
        for term, stats in statistics.items():
            normalizer = self.normalizers[term]
            assert isinstance(normalizer, ReturnNormalizer)
            normalizer.commit(stats)

    @torch.no_grad()
    def update_slow_critics(self) -> None:
        """Move every slow critic towards its critic by ``slow_critic_rate``."""
        rate = self.config.slow_critic_rate
        for term in self.terms:
            for slow, fast in zip(
                self.slow_critics[term].parameters(), self.critics[term].parameters(), strict=True
            ):
                slow.lerp_(fast, rate)

    # ------------------------------------------------------------------------------------------ loss
    def loss(
        self,
        inputs: torch.Tensor,
        actions: torch.Tensor,
        rewards: Mapping[str, torch.Tensor],
        cont: torch.Tensor,
    ) -> ActorCriticLoss:
        """Actor and critic losses on an imagined trajectory.

        The return normalisers are not changed: their new EMAs come back in
        :attr:`ActorCriticLoss.statistics`, for :meth:`commit` once the update is accepted.

        Args:
            inputs: ``(N, H + 1, input_dim)`` inputs of the ``H + 1`` states. Detached here, except for
                the returns of a ``"backprop"`` continuous actor, whose gradient flows through them.
            actions: ``(N, H + 1, groups, classes)`` actions taken after each state: one-hot, or for a
                continuous actor the samples as drawn (before clipping).
            rewards: ``{term: (N, H + 1)}`` reward of arriving at each state, for every term (their
                gradient is used only by a ``"backprop"`` continuous actor).
            cont: ``(N, H + 1)`` continuation; ``cont[:, 0]`` the start state's true continuation.

        Returns:
            :class:`ActorCriticLoss`.
        """
        config = self.config
        backprop = self.backprop
        differentiable = inputs
        inputs = inputs.detach()
        n, steps = inputs.shape[:2]
        check(
            steps >= 2, "inputs", "a trajectory of at least 2 states (horizon >= 1)", got=tuple(inputs.shape)
        )
        check(set(rewards) == set(self.terms), "rewards", f"the terms {self.terms}", got=sorted(rewards))
        cont = cont.detach()
        with torch.no_grad():
            discount = config.discount * cont
            weight = torch.cumprod(torch.cat([cont[:, :1], discount[:, 1:]], 1), 1)  # omega_t
        metrics: dict[str, torch.Tensor] = {}
        statistics: dict[str, torch.Tensor] = {}
        advantage = torch.zeros(n, steps - 1, device=inputs.device, dtype=inputs.dtype)
        objective = torch.zeros_like(advantage)  # the backprop estimator's advantage, with its gradient
        critic_loss = torch.zeros((), device=inputs.device, dtype=inputs.dtype)
        total_weight = sum(self.weights.values())
        for term in self.terms:
            logits = self.critics[term](inputs)
            value = self.twohot.mean(logits)
            # One λ-return per term: with the backprop estimator it keeps its gradient through the rewards
            # and the bootstrap values of the differentiable inputs (the critic read with detached
            # parameters); the critic's targets are its detached value either way.
            if backprop:
                critic = self.critics[term]
                frozen = {name: p.detach() for name, p in critic.named_parameters()}
                bootstrap = self.twohot.mean(torch.func.functional_call(critic, frozen, (differentiable,)))
                reward = rewards[term]
            else:
                bootstrap, reward = value.detach(), rewards[term].detach()
            live_returns = lambda_return(reward, bootstrap, cont, discount=config.discount, lam=config.lam)
            returns = live_returns.detach()
            with torch.no_grad():
                normalizer = self.normalizers[term]
                assert isinstance(normalizer, ReturnNormalizer)
                statistics[term] = normalizer.step(returns)
                scale = normalizer.scale(statistics[term])
                advantage += self.weights[term] * (returns - value[:, :-1].detach()) / scale
                slow = self.value(term, inputs[:, :-1], slow=True)
            if backprop:
                objective = objective + self.weights[term] * (live_returns - value[:, :-1].detach()) / scale
            nll = self.twohot.loss(logits[:, :-1], returns)
            reg = self.twohot.loss(logits[:, :-1], slow)
            critic_loss = critic_loss + (weight[:, :-1] * (nll + config.slow_critic_scale * reg)).mean()
            metrics[f"return/{term}"] = returns.mean()
            metrics[f"value/{term}"] = value.detach().mean()
            metrics[f"reward/{term}"] = rewards[term][:, 1:].detach().mean()
            metrics[f"return_scale/{term}"] = scale.detach()
        advantage = advantage / total_weight
        params = self.policy_params(inputs[:, :-1])
        entropy = self.entropy(params)
        if backprop:
            surrogate = objective / total_weight
        else:
            surrogate = self.log_prob(params, actions[:, :-1].detach()) * advantage
        actor_loss = (weight[:, :-1] * (-surrogate - config.entropy_scale * entropy)).mean()
        metrics["actor/entropy"] = entropy.detach().mean()
        if self.continuous:
            metrics["actor/std"] = params[..., 1].detach().mean()
        metrics["actor/advantage"] = advantage.mean()
        metrics["actor/advantage_abs"] = advantage.abs().mean()
        metrics["actor/loss"] = actor_loss.detach()
        metrics["critic/loss"] = critic_loss.detach()
        return ActorCriticLoss(actor_loss, critic_loss, metrics, statistics)

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """``(actor, critic)`` AdamW optimisers with the config's settings (weight decay 0 by default)."""
        c = self.config
        fused: dict[str, Any] = {"fused": True} if self._on_cuda() else {}
        actor = torch.optim.AdamW(
            self.actor.parameters(), lr=c.actor_lr, eps=c.eps, weight_decay=c.weight_decay, **fused
        )
        critic = torch.optim.AdamW(
            self.critics.parameters(), lr=c.critic_lr, eps=c.eps, weight_decay=c.weight_decay, **fused
        )
        return actor, critic

    def _on_cuda(self) -> bool:
        return next(self.parameters()).device.type == "cuda"
