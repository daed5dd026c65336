"""RSSM: the recurrent state-space model of DreamerV3 (2023), a GRU with LayerNorm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from hieros_lib.errors import check, check_int
from hieros_lib.nn import MLP
from hieros_lib.world_models._algorithms import shift_actions
from hieros_lib.world_models._latent import LatentConfig, LatentWorldModel, draw_latent
from hieros_lib.world_models._protocol import Observation
from hieros_lib.world_models._validate import (
    _validate_imagine_step,
    _validate_observe,
    _validate_observe_step,
)

__all__ = ["RSSM", "RSSMConfig", "RSSMState"]


class RSSMState(NamedTuple):
    """State of :class:`RSSM`; every field has leading batch dims ``(...)``.

    Attributes:
        deter: ``(..., deter_dim)`` GRU state ``h_t``.
        stoch: ``(..., G, K)`` one-hot latent ``z_t``.
        logits: ``(..., G, K)`` logits ``z_t`` was drawn from (posterior or prior).
        prior_logits: ``(..., G, K)`` logits of the prior ``p(z_t | h_t)`` of this step (the same tensor as
            ``logits`` for prior and imagined states).
    """

    deter: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor
    prior_logits: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class RSSMConfig(LatentConfig):
    """Configuration of :class:`RSSM` (defaults: DreamerV3 2023, the Atari 100k "small" size).

    Attributes:
        deter_dim: GRU state size.
        hidden: Width of the GRU input and the prior / posterior layers.

    Examples:
        >>> RSSMConfig.tiny(action_dim=3).deter_dim
        32
    """

    deter_dim: int = 512
    hidden: int = 512

    @classmethod
    def paper(cls, **overrides: Any) -> RSSMConfig:
        """DreamerV3 (2023) Atari 100k sizes: deter 512, hidden / units 512, 32x32 latents, depth 32."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> RSSMConfig:
        """A few-thousand-parameter model on 16x16 images, for tests."""
        base: dict[str, Any] = {
            "image_size": 16,
            "depth": 8,
            "stoch_groups": 8,
            "stoch_classes": 8,
            "units": 64,
            "head_layers": 1,
            "deter_dim": 32,
            "hidden": 32,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> RSSMConfig:
        """A CPU-sized model (16 x 16 images, 16 x 16 latents, width 128) that learns small tasks in
        minutes on two cores: the world model of the agent's CPU presets."""
        base: dict[str, Any] = {
            "image_size": 16,
            "depth": 16,
            "stoch_groups": 16,
            "stoch_classes": 16,
            "units": 128,
            "head_layers": 1,
            "deter_dim": 128,
            "hidden": 128,
            "vector_units": 128,
        }
        return cls(**{**base, **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("deter_dim", "hidden"):
            value = getattr(self, name)
            check_int(value, name, minimum=1)


class _LayerNormGRU(nn.Module):
    """DreamerV3's GRU cell: one bias-free Linear to three gates, LayerNorm, update gate biased by -1."""

    def __init__(self, in_dim: int, deter_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + deter_dim, 3 * deter_dim, bias=False)
        self.norm = nn.LayerNorm(3 * deter_dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * h


class RSSM(LatentWorldModel):
    r"""DreamerV3's recurrent state-space model (sequential by construction).

    .. math::
        h_t &= \mathrm{GRU}(h_{t-1}, [z_{t-1}, a_{t-1}]) \\
        z_t &\sim q(z_t \mid h_t, o_t) \qquad \hat z_t \sim p(\hat z_t \mid h_t) \\
        \hat r_t, \hat c_t, \hat o_t &\sim p(\cdot \mid h_t, z_t)

    The GRU has LayerNorm on its gates and an update gate biased by -1; ``h`` starts from a learned
    ``tanh(w)`` (``w`` zero-initialised) and ``z`` from zeros, at the first step and wherever ``is_first``.
    ``a_{t-1}`` comes from :func:`~hieros_lib.world_models.shift_actions`. Because the posterior reads
    ``h_t``, :meth:`observe` is a loop over time.

    Args:
        config: :class:`RSSMConfig`.
        device: Device of the parameters (built on the CPU, then moved; as :class:`TWM` takes it).
        dtype: Floating dtype of the parameters.

    Examples:
        >>> import torch
        >>> model = RSSM(RSSMConfig.tiny(action_dim=3))
        >>> obs = torch.zeros(2, 5, 16, 16, 3, dtype=torch.uint8)
        >>> action = torch.zeros(2, 5, 3)
        >>> first = torch.zeros(2, 5, dtype=torch.bool)
        >>> out = model.observe(obs, action, first)
        >>> model.features(out.posterior).shape
        torch.Size([2, 5, 96])

    References:
        Hafner et al., "Mastering Diverse Domains through World Models", arXiv 2301.04104 (2023).
    """

    def __init__(
        self,
        config: RSSMConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(config, RSSMConfig), "config", "an RSSMConfig", got=type(config).__name__)
        self._build_shared(config, config.deter_dim)
        self.img_in = nn.Sequential(
            nn.Linear(self.stoch_dim + config.action_dim, config.hidden, bias=False),
            nn.LayerNorm(config.hidden),
            nn.SiLU(),
        )
        self.gru = _LayerNormGRU(config.hidden, config.deter_dim)
        self.prior_net = MLP(config.deter_dim, self.stoch_dim, hidden=config.hidden, layers=1)
        self.post_net = MLP(
            config.deter_dim + self.encoder.out_dim, self.stoch_dim, hidden=config.hidden, layers=1
        )
        self.init_deter = nn.Parameter(torch.zeros(config.deter_dim))
        if device is not None or dtype is not None:  # built on the CPU in float32, then moved
            self.to(device=device, dtype=dtype)

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> RSSMState:
        """The state before an episode: ``h = tanh(w)`` (learned), ``z = 0``, uniform logits.

        Args:
            batch_size: ``B``.
            device: Device (the parameters' if None).

        Returns:
            :class:`RSSMState` with batch shape ``(B,)``.
        """
        check_int(batch_size, "batch_size", minimum=1)
        param = self.init_deter
        device = param.device if device is None else torch.device(device)
        g, k = self.config.stoch_groups, self.config.stoch_classes
        deter = torch.tanh(param).to(device).expand(batch_size, -1)
        zeros = torch.zeros(batch_size, g, k, device=device, dtype=param.dtype)
        return RSSMState(deter, zeros, zeros, zeros)

    def _step_deter(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = self.img_in(torch.cat([stoch.flatten(-2), action], -1))
        return self.gru(x, deter)

    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: RSSMState | None = None,
        *,
        prev_action: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        reward: torch.Tensor | None = None,
        validate: bool = True,
    ) -> Observation:
        """Posterior and prior states of a stored sequence, one step at a time.

        The arguments are those of :meth:`WorldModel.observe
        <hieros_lib.world_models.WorldModel.observe>` (``reward`` is validated and not used: this
        model does not condition on rewards).

        Returns:
            :class:`~hieros_lib.world_models.Observation` with :class:`RSSMState` fields ``(B, T, ...)``.

        Raises:
            HierosError: On bad shapes, dtypes or values.
        """
        _validate_observe(self, obs, action, is_first, state, prev_action, reward, values=validate)
        batch, length = is_first.shape
        dtype = self.init_deter.dtype
        prev = shift_actions(action.to(dtype), is_first, prev_action)
        embed = self._embed(obs)
        init = self.initial_state(batch, device=obs.device)
        if state is None:
            state = init
        posts, priors = [], []
        for t in range(length):
            first, inputs = is_first[:, t], embed[:, t]
            post, prior = self._filter(state, init, prev[:, t], first, inputs, sample, generator)
            posts.append(post)
            priors.append(prior)
            state = post
        posterior = RSSMState(*(torch.stack(x, 1) for x in zip(*posts, strict=True)))
        prior_states = RSSMState(*(torch.stack(x, 1) for x in zip(*priors, strict=True)))
        return Observation(posterior, prior_states, state)

    def _filter(
        self,
        state: RSSMState,
        init: RSSMState,
        prev_action: torch.Tensor,
        first: torch.Tensor,
        embed: torch.Tensor,
        sample: bool,
        generator: torch.Generator | None,
    ) -> tuple[RSSMState, RSSMState]:
        """One step of observing: reset where ``first``, advance the GRU, posterior and prior."""
        deter = torch.where(first[:, None], init.deter, state.deter)
        stoch = torch.where(first[:, None, None], init.stoch, state.stoch)
        deter = self._step_deter(deter, stoch, prev_action)
        prior_logits = self._logits(self.prior_net(deter))
        post_logits = self._logits(self.post_net(torch.cat([deter, embed], -1)))
        post_stoch = draw_latent(post_logits, sample=sample, generator=generator)
        prior_stoch = draw_latent(prior_logits, sample=sample, generator=generator)
        post = RSSMState(deter, post_stoch, post_logits, prior_logits)
        return post, RSSMState(deter, prior_stoch, prior_logits, prior_logits)

    def observe_step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: RSSMState,
        *,
        reward: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = False,
    ) -> RSSMState:
        """The posterior state of one step for ``B`` environments (the acting path; one GRU step).

        Equals :meth:`observe` run step by step. Where ``is_first``, ``h`` and ``z`` start from the initial
        state and ``a_{t-1}`` is zero.

        The arguments are those of :meth:`WorldModel.observe_step
        <hieros_lib.world_models.WorldModel.observe_step>` (``reward`` is not used).

        Returns:
            The posterior :class:`RSSMState` ``(B,)``.
        """
        _validate_observe_step(self, obs, prev_action, is_first, state, reward, values=validate)
        dtype = self.init_deter.dtype
        init = self.initial_state(is_first.shape[0], device=obs.device)
        prev = prev_action.to(dtype) * (~is_first).to(dtype)[:, None]
        post, _ = self._filter(state, init, prev, is_first, self._embed(obs), sample, generator)
        return post

    def imagine_step(
        self,
        state: RSSMState,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> RSSMState:
        """One prior step: ``h' = GRU(h, [z, a])``, ``z' ~ p(z' | h')``.

        The arguments are those of :meth:`WorldModel.imagine_step
        <hieros_lib.world_models.WorldModel.imagine_step>`.

        Returns:
            The next :class:`RSSMState` ``(B,)`` (prior).
        """
        _validate_imagine_step(self, state, action, values=validate)
        deter = self._step_deter(state.deter, state.stoch, action.to(state.deter.dtype))
        logits = self._logits(self.prior_net(deter))
        return RSSMState(deter, draw_latent(logits, sample=sample, generator=generator), logits, logits)
