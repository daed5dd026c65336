"""The parts S5WM and RSSM share: image encoder and decoder, categorical latents, heads and the loss.

Both are DreamerV3-style models whose state holds a deterministic part ``deter`` (``h_t``), a one-hot
stochastic part ``stoch`` (``z_t``, ``G`` groups of ``K`` classes), the ``logits`` it was drawn from and
the ``prior_logits`` of the prior at that step (equal to ``logits`` for prior and imagined states).
They differ only in how ``h_t`` and the prior are computed (:meth:`observe`, :meth:`observe_step`,
:meth:`imagine_step`). Observations are images (a convolutional encoder and decoder) or, with
``vector_dim`` set, float vectors (MLP encoder and decoder in ``symlog`` space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hieros_lib._tree import flatten_time
from hieros_lib.errors import check, check_int
from hieros_lib.nn import (
    MLP,
    TwoHot,
    bernoulli_nll,
    categorical_entropy,
    categorical_probs,
    kl_balance_loss,
    sample_onehot,
    unimix_logits,
)
from hieros_lib.world_models._algorithms import imagine
from hieros_lib.world_models._codec import (
    ObservationConfig,
    build_codec,
    decode_observation,
    encode_observation,
    observation_nll,
)
from hieros_lib.world_models._protocol import Imagination, Observation, Policy, WorldModelLoss
from hieros_lib.world_models._validate import validate_batch

__all__: list[str] = []


def draw_latent(logits: torch.Tensor, *, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """One-hot latent from ``(..., G, K)`` logits: a straight-through sample, or the mode (all models)."""
    if sample:
        return sample_onehot(logits, generator=generator)
    probs = categorical_probs(logits)
    mode = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    return mode + probs - probs.detach()


class LatentWorldModel(nn.Module):
    """Base of S5WM and RSSM: encoder, decoder, reward / continue heads, latents and the loss.

    Subclasses call ``_build_shared`` in their ``__init__`` and implement ``initial_state``, ``observe``,
    ``observe_step`` and ``imagine_step``; ``config`` is a :class:`LatentConfig`.
    """

    obs_shape: tuple[int, ...]
    action_dim: int
    feature_dim: int
    deter_dim: int

    def _build_shared(self, config: Any, deter_dim: int) -> None:
        self.config = config
        self.obs_shape = config.obs_shape
        self.action_dim = config.action_dim
        self.deter_dim = deter_dim
        self.stoch_dim = config.stoch_groups * config.stoch_classes
        self.feature_dim = deter_dim + self.stoch_dim
        self.encoder, self.decoder = build_codec(config, self.feature_dim)
        self.reward_head = MLP(
            self.feature_dim, config.reward_bins, hidden=config.units, layers=config.head_layers
        )
        self.cont_head = MLP(self.feature_dim, 1, hidden=config.units, layers=config.head_layers)
        self.twohot = TwoHot(config.reward_bins)
        # DreamerV3: the reward head's output layer starts at zero (predicts 0 at first).
        last = self.reward_head.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    # ----------------------------------------------------------------------------------------------
    # what each model defines
    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> Any:
        raise NotImplementedError

    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: Any = None,
        *,
        prev_action: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        reward: torch.Tensor | None = None,
        validate: bool = True,
    ) -> Observation:
        raise NotImplementedError

    def observe_step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: Any,
        *,
        reward: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = False,
    ) -> Any:
        raise NotImplementedError

    def imagine_step(
        self,
        state: Any,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> Any:
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------
    # helpers
    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations -> encoder embedding ``(..., E)`` (:mod:`._codec`)."""
        vector = bool(self.config.vector_dim)
        return encode_observation(self.encoder, obs, vector=vector, dtype=self._param().dtype)

    def _obs_nll(self, feat: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Reconstruction NLL per step (:mod:`._codec`)."""
        return observation_nll(self.decoder, feat, obs, vector=bool(self.config.vector_dim))

    def _logits(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat logits ``(..., G*K)`` -> uniform-mixed ``(..., G, K)`` logits."""
        shape = (*flat.shape[:-1], self.config.stoch_groups, self.config.stoch_classes)
        return unimix_logits(flat.reshape(shape), self.config.unimix)

    # ----------------------------------------------------------------------------------------------
    # protocol methods shared by both models
    def features(self, state: Any) -> torch.Tensor:
        """``cat(h_t, flatten(z_t))``, shape ``(..., feature_dim)``."""
        stoch = state.stoch.reshape(*state.stoch.shape[:-2], self.stoch_dim)
        return torch.cat([state.deter, stoch.to(state.deter.dtype)], dim=-1)

    def deter(self, state: Any) -> torch.Tensor:
        """``h_t``, shape ``(..., deter_dim)``."""
        return state.deter

    def stoch(self, state: Any) -> torch.Tensor:
        """``z_t``, one-hot ``(..., G, K)``."""
        return state.stoch

    def decode(self, state: Any) -> torch.Tensor:
        """The decoder's mean: an image, float ``(..., H, W, C)`` clamped to ``[0, 1]``, or a vector
        ``(..., D)`` in observation space (``symexp`` of the symlog prediction)."""
        return decode_observation(self.decoder, self.features(state), vector=bool(self.config.vector_dim))

    def reward(self, state: Any) -> torch.Tensor:
        """Predicted reward ``(...)``: the two-hot head's mean."""
        return self.twohot.mean(self.reward_head(self.features(state)))

    def cont(self, state: Any) -> torch.Tensor:
        """Predicted continuation probability ``(...)``."""
        return torch.sigmoid(self.cont_head(self.features(state)).squeeze(-1))

    def entropy(self, state: Any) -> torch.Tensor:
        """Entropy of the *prior* ``p(z_t | .)`` at this step (summed over the ``G`` groups), ``(...)``.

        For a posterior state this is the entropy of the prior of the same step (``prior_logits``), not
        of the posterior it was drawn from: the actor's input of equation 3 of the Hieros paper.
        """
        return categorical_entropy(state.prior_logits).sum(-1)

    def start_states(self, observed: Observation) -> Any:
        """Every posterior state of an observed batch as a start state, batch ``(B * T,)``."""
        return flatten_time(observed.posterior)

    def imagine(
        self,
        start: Any,
        policy: Policy,
        horizon: int,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> Imagination:
        """Roll the prior forward under ``policy`` (:func:`hieros_lib.world_models.imagine`).

        Args:
            start: Start states, batch ``(B,)``.
            policy: ``policy(step) -> action (B, A)`` (see :class:`~hieros_lib.world_models.ImaginedStep`).
            horizon: Imagined steps.
            sample: Sample the imagined latents (True) or take their modes.
            generator: Random generator for the latent samples.
            validate: Check values (see :func:`~hieros_lib.world_models.imagine`).
        """
        return imagine(self, start, policy, horizon, sample=sample, generator=generator, validate=validate)

    def loss(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> WorldModelLoss:
        r"""DreamerV3's world-model loss (Hieros eqs. 6-9) on a replay batch.

        .. math::
            \mathcal{L} = \operatorname{mean}_{b,t}\big[ -\ln p(o_t \mid h_t, z_t)
            - \ln p(r_t \mid h_t, z_t) - \ln p(c_t \mid h_t, z_t)
            + \alpha_{dyn} \max(1, \mathrm{KL}[\mathrm{sg}(q) \,\|\, p])
            + \alpha_{rep} \max(1, \mathrm{KL}[q \,\|\, \mathrm{sg}(p)]) \big]

        with the observation term a sum of squared errors over pixels in the preprocessed space (over the
        vector in symlog space for vector observations), the reward a two-hot log-likelihood in symlog
        space, and ``c_t = 1 - is_terminal[t]``.

        Args:
            batch: Replay batch, fields :data:`~hieros_lib.world_models.BATCH_FIELDS`.
            generator: Random generator for the latent samples.
            validate: Also check the batch's values (once; shapes are checked either way).

        Returns:
            :class:`~hieros_lib.world_models.WorldModelLoss`.

        Raises:
            HierosError: On a malformed batch.
        """
        validate_batch(batch, obs_shape=self.obs_shape, action_dim=self.action_dim, values=validate)
        config = self.config
        obs = batch["obs"]
        dtype = self._param().dtype
        observed = self.observe(
            obs, batch["action"].to(dtype), batch["is_first"], generator=generator, validate=False
        )
        post, prior = observed.posterior, observed.prior
        feat = self.features(post)
        obs_nll = self._obs_nll(feat, obs)
        reward_nll = self.twohot.loss(self.reward_head(feat), batch["reward"].to(dtype))
        cont_target = (~batch["is_terminal"]).to(dtype)
        cont_nll = bernoulli_nll(self.cont_head(feat).squeeze(-1), cont_target)
        kl, dyn_kl, rep_kl = kl_balance_loss(
            post.logits,
            prior.logits,
            free_bits=config.free_bits,
            dyn_scale=config.dyn_scale,
            rep_scale=config.rep_scale,
        )
        per_step = (
            config.image_scale * obs_nll
            + config.reward_scale * reward_nll
            + config.cont_scale * cont_nll
            + kl
        )
        total = per_step.mean()
        metrics = {
            "loss/total": total.detach(),
            "loss/obs": obs_nll.mean().detach(),
            "loss/reward": reward_nll.mean().detach(),
            "loss/cont": cont_nll.mean().detach(),
            "kl/dyn": dyn_kl.mean().detach(),
            "kl/rep": rep_kl.mean().detach(),
            "entropy/post": categorical_entropy(post.logits).sum(-1).mean().detach(),
            "entropy/prior": self.entropy(prior).mean().detach(),
        }
        return WorldModelLoss(total, metrics, observed)


@dataclass(frozen=True, kw_only=True)
class LatentConfig(ObservationConfig):
    """Fields every DreamerV3-style model config has (S5WM, RSSM), besides the observation fields of
    :class:`ObservationConfig` (image or vector observations)."""

    action_dim: int
    stoch_groups: int = 32
    stoch_classes: int = 32
    unimix: float = 0.01
    units: int = 512
    head_layers: int = 2
    reward_bins: int = 255
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    free_bits: float = 1.0
    image_scale: float = 1.0
    reward_scale: float = 1.0
    cont_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("action_dim", "stoch_groups", "stoch_classes", "units", "reward_bins"):
            check_int(getattr(self, name), name, minimum=1)
        check(0.0 <= self.unimix < 1.0, "unimix", "a float in [0, 1)", got=self.unimix)
        check(self.head_layers >= 0, "head_layers", "an int >= 0", got=self.head_layers)
        check(self.free_bits >= 0.0, "free_bits", "a float >= 0", got=self.free_bits)
