r"""TWM: the Transformer world model of Robine et al. (ICLR 2023), behind the :class:`WorldModel` protocol.

Two parts with separate parameters:

* an observation model, a VAE with a *uniform* prior: ``z_t ~ p(z_t | o_t)`` (32 categoricals of 32
  classes, straight-through samples) and a decoder ``p(o_t | z_t)`` (unit-variance Gaussian means);
* a dynamics model, a causally masked Transformer-XL over the token stream
  ``..., z_{t-1}, a_{t-1}, r_t, z_t, a_t, r_{t+1}, ...`` with relative positional encodings, a cached
  memory and a stop-mask across episode borders. The output at an action token is the hidden state
  ``h``; MLP heads read it to predict the next latent, the reward and the continuation.

Index conventions. The paper's step ``k`` holds ``(z_k, a_k, r_k)`` with ``r_k`` the reward *for*
``a_k``. In this library a stored step ``t`` holds ``obs[t]``, ``reward[t]`` (received on arriving at
``obs[t]``) and ``action[t]`` (chosen after ``obs[t]``), so the paper's ``r_k`` is our ``reward[k+1]``.
The token stream is the same; we group it by *our* step ``t`` as ``[a_{t-1}, r_t, z_t]`` with
``a_{t-1}`` from :func:`shift_actions` (zero where ``is_first[t]``). The hidden state of step ``t`` is
the output at its ``a_{t-1}`` token,

.. math::
    h_t = f_\psi(z_{<t}, a_{<t}, r_{<t}),

the paper's ``h_{t-1}``. It predicts ``z_t`` (the prior), ``reward[t]`` and ``cont[t]``, and it never
sees ``obs[t]``, ``reward[t]`` or ``action[t]``.

State and memory. A :class:`TWMState` at step ``t`` carries the posterior (or imagined) latent ``z_t``
and the reward ``r_t`` as *pending* tokens, plus each layer's cached inputs for the ``3 * memory_length``
tokens before them (up to and including ``a_{t-1}``). :meth:`TWM.imagine_step` embeds
``[r_t, z_t, a_t]``, runs the three tokens through the Transformer against the memory (one call per
step) and reads ``h_{t+1}`` at ``a_t``. Every query attends to itself and to the ``3 * memory_length``
tokens before it (a sliding window), so the parallel training pass, chunked passes and step-by-step
imagination compute exactly the same ``h``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from hieros_lib._tree import flatten_time
from hieros_lib.errors import check, check_int
from hieros_lib.nn import (
    MLP,
    bernoulli_nll,
    categorical_entropy,
    categorical_kl,
    symexp,
    symlog,
    unimix_logits,
)
from hieros_lib.world_models._algorithms import imagine, shift_actions
from hieros_lib.world_models._codec import (
    ObservationConfig,
    build_codec,
    decode_observation,
    encode_observation,
    observation_nll,
)
from hieros_lib.world_models._latent import draw_latent
from hieros_lib.world_models._protocol import Imagination, Observation, Policy, WorldModelLoss
from hieros_lib.world_models._transformer_xl import TransformerXL
from hieros_lib.world_models._validate import (
    _validate_imagine_step,
    _validate_observe,
    _validate_observe_step,
    validate_batch,
)

__all__ = ["TWM", "TWMConfig", "TWMState"]



@dataclass(frozen=True, kw_only=True)
class TWMConfig(ObservationConfig):
    """Hyperparameters of :class:`TWM`.

    :meth:`paper` gives the sizes of the TWM paper and its official code (Transformer-XL with 10
    layers, 4 heads of 64, ``d_model`` 256, feed-forward 1024, dropout 0.1, a memory of 16 steps,
    32 x 32 latents, loss weights ``alpha_1 = 10`` and ``alpha_2 = 50``); :meth:`tiny` a model small
    enough for CPU tests.

    Attributes:
        action_dim: Size ``A`` of an action vector (one-hot for discrete actions).
        image_size: Height and width of the (square) observations.
        channels: Channels of the observations.
        vector_dim: If set, observations are float vectors of this size (an MLP encoder of
            ``vector_layers`` layers of ``vector_units``, inputs in symlog space, and a decoder in symlog
            space) instead of images.
        vector_units: Width of the vector encoder and decoder.
        vector_layers: Hidden layers of the vector encoder and decoder.
        depth: Channels of the first encoder stage (doubled each stage).
        min_resolution: Resolution after the last encoder stage.
        encoder_hidden: Width of the MLP from the encoder features to the latent logits.
        stoch_groups: Number ``G`` of categorical latents.
        stoch_classes: Classes ``K`` of each latent.
        unimix: Uniform mix of the latent distributions (0 in the paper).
        d_model: Token size of the Transformer.
        num_layers: Transformer layers.
        num_heads: Attention heads.
        head_dim: Size of each head.
        ff_dim: Hidden size of the feed-forward blocks.
        dropout: Dropout in the Transformer.
        pre_norm: Pre-norm Transformer layers (False: post-norm, as Transformer-XL and TWM).
        memory_length: Steps of history each token attends to (``3 * memory_length`` tokens).
        latent_hidden: Width of the next-latent predictor MLP.
        latent_layers: Hidden layers of the next-latent predictor.
        head_hidden: Width of the reward and continuation predictor MLPs.
        head_layers: Hidden layers of the reward and continuation predictors.
        image_scale: Weight of the decoder NLL in equation 3.
        kl_scale: ``beta`` of equation 3, the weight of ``KL(p(z|o) || uniform)``. The paper's table
            leaves it open ("?"); 0.1 is our choice.
        latent_scale: Weight of the next-latent KL in equation 4.
        reward_scale: ``alpha_1`` of equation 4.
        cont_scale: ``alpha_2`` of equation 4.
    """

    action_dim: int = 18
    depth: int = 48
    encoder_hidden: int = 512
    stoch_groups: int = 32
    stoch_classes: int = 32
    unimix: float = 0.0
    d_model: int = 256
    num_layers: int = 10
    num_heads: int = 4
    head_dim: int = 64
    ff_dim: int = 1024
    dropout: float = 0.1
    pre_norm: bool = False
    memory_length: int = 16
    latent_hidden: int = 512
    latent_layers: int = 4
    head_hidden: int = 256
    head_layers: int = 4
    image_scale: float = 1.0
    kl_scale: float = 0.1
    latent_scale: float = 1.0
    reward_scale: float = 10.0
    cont_scale: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (
            "action_dim",
            "encoder_hidden",
            "stoch_groups",
            "stoch_classes",
            "d_model",
            "num_layers",
            "num_heads",
            "head_dim",
            "ff_dim",
            "memory_length",
            "latent_hidden",
            "head_hidden",
        ):
            value = getattr(self, name)
            check_int(value, name, minimum=1)
        for name in ("latent_layers", "head_layers"):
            value = getattr(self, name)
            check_int(value, name, minimum=0)
        for name in ("image_scale", "kl_scale", "latent_scale", "reward_scale", "cont_scale"):
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and value >= 0, name, "a non-negative float", got=value)
        check(0.0 <= self.unimix < 1.0, "unimix", "a float in [0, 1)", got=self.unimix)
        check(0.0 <= self.dropout < 1.0, "dropout", "a float in [0, 1)", got=self.dropout)
        check(self.d_model % 2 == 0, "d_model", "an even int", got=self.d_model)

    @classmethod
    def paper(cls, **overrides: Any) -> TWMConfig:
        """The paper's sizes (defaults of every field), with overrides.

        Examples:
            >>> TWMConfig.paper(action_dim=6).num_layers
            10
        """
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> TWMConfig:
        """A small model for CPU tests: 16 x 16 images, 4 x 16 latents, 2 pre-norm layers of width 64.

        Besides the sizes it departs from the paper's settings where a test must learn in about a hundred
        optimizer steps: pre-norm layers, ``kl_scale=0.01`` and ``reward_scale=100`` (``alpha_1``; the
        reward is predicted one step ahead from the history, which is slower to learn than the images).

        Examples:
            >>> TWMConfig.tiny().image_size
            16
        """
        small = cls(
            action_dim=3,
            image_size=16,
            channels=3,
            depth=16,
            min_resolution=4,
            encoder_hidden=64,
            stoch_groups=4,
            stoch_classes=16,
            d_model=64,
            num_layers=2,
            num_heads=4,
            head_dim=16,
            ff_dim=128,
            dropout=0.0,
            pre_norm=True,
            memory_length=4,
            latent_hidden=64,
            latent_layers=1,
            head_hidden=64,
            head_layers=1,
            kl_scale=0.01,
            reward_scale=100.0,
        )
        return dataclasses.replace(small, **overrides)

    @classmethod
    def small(cls, **overrides: Any) -> TWMConfig:
        """A CPU-sized model (16 x 16 images, 16 x 16 latents, 2 pre-norm layers of width 128, a memory of
        8 steps) that learns small tasks in minutes on two cores, with the same departures as
        :meth:`tiny`: the world model of the agent's CPU presets."""
        return cls.tiny(
            depth=16,
            encoder_hidden=128,
            stoch_groups=16,
            stoch_classes=16,
            d_model=128,
            head_dim=32,
            ff_dim=256,
            memory_length=8,
            latent_hidden=128,
            head_hidden=128,
            vector_units=128,
            **overrides,
        )


class TWMState(NamedTuple):
    """The state of :class:`TWM` at one step; every field has the same leading batch dims ``(...)``.

    Attributes:
        stoch: ``(..., G, K)`` one-hot latent ``z_t`` (posterior sample, or drawn from the prior).
        logits: ``(..., G, K)`` logits of the distribution ``z_t`` was drawn from.
        prior_logits: ``(..., G, K)`` logits of the prior ``p(z_t | h_t)`` (the same tensor as ``logits``
            for prior and imagined states).
        deter: ``(..., d_model)`` hidden state ``h_t``, the Transformer output at the action token.
        reward: ``(...)`` the reward token ``r_t`` still to be fed (observed, or predicted in imagination).
        memory: ``(..., L, 3 * memory_length, d_model)`` each layer's cached inputs for the tokens before
            the pending ``r_t``.
        mem_mask: ``(..., 3 * memory_length)`` bool, which memory tokens belong to the current episode.
        pending: ``(...)`` bool, whether ``stoch`` and ``reward`` are real tokens (false in
            :meth:`TWM.initial_state`).
    """

    stoch: torch.Tensor
    logits: torch.Tensor
    prior_logits: torch.Tensor
    deter: torch.Tensor
    reward: torch.Tensor
    memory: torch.Tensor
    mem_mask: torch.Tensor
    pending: torch.Tensor


def _window_mask(valid: torch.Tensor, ids: torch.Tensor, num_queries: int, window: int) -> torch.Tensor:
    """Attention mask of the last ``num_queries`` tokens over all ``S`` tokens.

    Query ``i`` may see key ``j`` iff ``j == i``, or ``0 < i - j <= window``, the key is valid and both
    carry the same episode id (the stop-mask).

    Args:
        valid: ``(B, S)`` bool.
        ids: ``(B, S)`` int episode ids.
        num_queries: ``N``, the queries are the tokens ``S - N .. S - 1``.
        window: Maximum distance.

    Returns:
        ``(B, N, S)`` bool.
    """
    S = valid.shape[1]
    pos = torch.arange(S, device=valid.device)
    qpos = pos[S - num_queries :]
    dist = qpos[:, None] - pos[None, :]
    in_window = (dist > 0) & (dist <= window)
    same = ids[:, S - num_queries :, None] == ids[:, None, :]
    allowed = in_window[None] & same & valid[:, None, :]
    return allowed | (dist == 0)[None]


class TWM(nn.Module):
    r"""The Transformer world model (TWM) of Robine et al. (2023).

    Observation model (a VAE with the uniform prior ``p(z)``) and dynamics model
    (a Transformer-XL ``f_psi`` with predictors), see the module docstring for the token layout:

    .. math::
        z_t \sim p_\phi(z_t \mid o_t), \quad \hat o_t \sim p_\phi(\hat o_t \mid z_t), \quad
        h_t = f_\psi(z_{<t}, a_{<t}, r_{<t}), \quad
        \hat z_t, \hat r_t, \hat c_t \sim p_\psi(\cdot \mid h_t).

    Losses (averaged over the batch; the dynamics terms over the steps that have a history, i.e. not
    the first step of a sequence or of an episode):

    .. math::
        \mathcal{L}^{\text{Repr.}} = \beta\, D_{\mathrm{KL}}(p_\phi(z_t \mid o_t) \,\|\, p(z))
            - \ln p_\phi(o_t \mid z_t)

    .. math::
        \mathcal{L}^{\text{Dyn.}} = D_{\mathrm{KL}}(\mathrm{sg}(p_\phi(z_t \mid o_t)) \,\|\,
            p_\psi(\hat z_t \mid h_t)) - \alpha_1 \ln p_\psi(r_t \mid h_t) - \alpha_2 \ln p_\psi(c_t \mid h_t)

    with ``-ln p(o|z) = ||o - o_hat||^2 / 2`` and ``-ln p(r|h) = (symlog(r) - r_hat)^2 / 2``
    (unit-variance Gaussians, constants dropped; the reward predictor regresses ``symlog(r)`` and
    :meth:`reward` returns ``symexp(r_hat)``), ``c_t = 1 - is_terminal[t]`` under a Bernoulli, and the
    latents fed to the Transformer detached, so the dynamics model does not train the observation model.

    Departures from the paper, all small: the discount predictor is a continuation predictor (target
    ``1 - is_terminal`` rather than ``gamma * (1 - d)``; multiply by your discount); the next-latent
    term is a KL rather than the equal-gradient cross-entropy; ``beta`` is ours (the paper leaves it
    open). Rewards enter in ``symlog`` space, both as Transformer input tokens and as the regression
    target, so any reward scale gives finite activations and losses (TWM instead squashes the input
    reward with ``tanh`` in its environment wrapper and regresses the raw reward; a reward of ``1e30``
    then overflows the loss).

    TWM conditions on past rewards: pass ``reward=`` to :meth:`observe` (one parallel pass, as
    :meth:`loss` does). Without it the model feeds back its own reward predictions, step by step (as in
    imagination).

    Args:
        config: A :class:`TWMConfig` (``TWMConfig.paper()`` if None).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Examples:
        >>> import torch
        >>> model = TWM(TWMConfig.tiny(action_dim=2))
        >>> batch = {
        ...     "obs": torch.zeros(2, 5, 16, 16, 3, dtype=torch.uint8),
        ...     "action": torch.nn.functional.one_hot(torch.zeros(2, 5, dtype=torch.long), 2).float(),
        ...     "reward": torch.zeros(2, 5), "is_first": torch.zeros(2, 5, dtype=torch.bool),
        ...     "is_last": torch.zeros(2, 5, dtype=torch.bool),
        ...     "is_terminal": torch.zeros(2, 5, dtype=torch.bool),
        ... }
        >>> out = model.loss(batch, generator=torch.Generator().manual_seed(0))
        >>> out.loss.shape, model.deter(out.observed.posterior).shape
        (torch.Size([]), torch.Size([2, 5, 64]))

    References:
        Robine, Höftmann, Uelwer, Harmeling. Transformer-based World Models Are Happy With 100k
        Interactions. ICLR 2023. Dai et al. Transformer-XL. ACL 2019.
    """

    obs_shape: tuple[int, ...]
    action_dim: int
    feature_dim: int
    deter_dim: int

    def __init__(
        self,
        config: TWMConfig | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        config = TWMConfig.paper() if config is None else config
        check(isinstance(config, TWMConfig), "config", "a TWMConfig", got=type(config).__name__)
        self.config = config
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        c = config
        self.obs_shape = c.obs_shape
        self.action_dim = c.action_dim
        self.deter_dim = c.d_model
        self._stoch_dim = c.stoch_groups * c.stoch_classes
        self.feature_dim = c.d_model + self._stoch_dim
        self._window = 3 * c.memory_length
        # observation model
        self.encoder, self.decoder = build_codec(c, self._stoch_dim, **factory)
        self.encoder_head = MLP(
            self.encoder.out_dim, self._stoch_dim, hidden=c.encoder_hidden, layers=1, **factory
        )
        # dynamics model
        self.embed_stoch = nn.Linear(self._stoch_dim, c.d_model, **factory)
        self.embed_action = nn.Linear(c.action_dim, c.d_model, **factory)
        self.embed_reward = nn.Linear(1, c.d_model, **factory)
        self.transformer = TransformerXL(
            c.d_model,
            c.num_layers,
            c.num_heads,
            c.head_dim,
            c.ff_dim,
            dropout=c.dropout,
            pre_norm=c.pre_norm,
            **factory,
        )
        self.latent_head = MLP(
            c.d_model, self._stoch_dim, hidden=c.latent_hidden, layers=c.latent_layers, **factory
        )
        self.reward_head = MLP(c.d_model, 1, hidden=c.head_hidden, layers=c.head_layers, **factory)
        self.cont_head = MLP(c.d_model, 1, hidden=c.head_hidden, layers=c.head_layers, **factory)

    # ------------------------------------------------------------------ helpers

    def _param(self) -> torch.Tensor:
        return self.embed_stoch.weight

    def _predict_reward(self, h: torch.Tensor) -> torch.Tensor:
        """The reward predicted from ``h`` (the head regresses ``symlog(r)``)."""
        return symexp(self.reward_head(h).squeeze(-1))

    def _latent_logits(self, flat: torch.Tensor) -> torch.Tensor:
        logits = flat.unflatten(-1, (self.config.stoch_groups, self.config.stoch_classes))
        return unimix_logits(logits, self.config.unimix) if self.config.unimix > 0 else logits

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        vector = bool(self.config.vector_dim)
        embed = encode_observation(self.encoder, obs, vector=vector, dtype=self._param().dtype)
        return self._latent_logits(self.encoder_head(embed))

    def _obs_nll(self, stoch: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """``-ln p(o | z)`` per step, constants dropped: half the squared error (symlog space for vectors)."""
        vector = bool(self.config.vector_dim)
        return 0.5 * observation_nll(self.decoder, stoch.flatten(-2), obs, vector=vector)

    def _embed_pending(self, state: TWMState) -> torch.Tensor:
        """``(..., 2, d)`` embeddings of the pending ``[r_t, z_t]`` tokens."""
        r = self.embed_reward(symlog(state.reward).unsqueeze(-1))
        z = self.embed_stoch(state.stoch.flatten(-2))
        return torch.stack([r, z], dim=-2)

    def _step(
        self, state: TWMState, action: torch.Tensor, is_first: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feed ``[r_t, z_t, a_t]`` against the memory; return ``h_{t+1}``, the new memory and mask."""
        pending, mem_mask = state.pending, state.mem_mask
        if is_first is not None:
            pending = pending & ~is_first
            mem_mask = mem_mask & ~is_first[:, None]
        x = torch.cat([self._embed_pending(state), self.embed_action(action).unsqueeze(1)], dim=1)
        flag = pending[:, None]
        valid = torch.cat([mem_mask, flag, flag, torch.ones_like(flag)], dim=1)
        mask = _window_mask(valid, torch.zeros_like(valid, dtype=torch.long), 3, self._window)
        out, hidden = self.transformer(x, state.memory, mask)
        memory = torch.cat([state.memory, hidden], dim=2)[:, :, 3:]
        mem_mask = valid[:, 3:]
        if is_first is not None:  # observing: zero what the stop-mask hides, so states are canonical
            memory = memory.masked_fill(~mem_mask[:, None, :, None], 0.0)
        return out[:, 2], memory, mem_mask

    def _parallel(
        self,
        state: TWMState,
        prev_action: torch.Tensor,
        reward: torch.Tensor,
        stoch: torch.Tensor,
        is_first: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One Transformer pass over a whole sequence; ``h`` ``(B, T, d)`` and per-step memory and mask."""
        B, T = is_first.shape
        W = self._window
        steps = torch.stack(
            [
                self.embed_action(prev_action),
                self.embed_reward(symlog(reward).unsqueeze(-1)),
                self.embed_stoch(stoch.flatten(-2)),
            ],
            dim=2,
        ).reshape(B, 3 * T, -1)
        x = torch.cat([self._embed_pending(state), steps], dim=1)
        ones = torch.ones(B, 3 * T, dtype=torch.bool, device=is_first.device)
        valid = torch.cat([state.mem_mask, state.pending[:, None].expand(B, 2), ones], dim=1)
        step_id = is_first.long().cumsum(1)
        ids = torch.cat(
            [step_id.new_zeros(B, W + 2), step_id.repeat_interleave(3, 1)],
            dim=1,
        )
        mask = _window_mask(valid, ids, x.shape[1], W)
        out, hidden = self.transformer(x, state.memory, mask)
        h = out[:, 2::3]
        # memory of state t: the W tokens before its pending r_t, i.e. full-stream tokens [3t + 3, 3t + 3 + W)
        full = torch.cat([state.memory, hidden], dim=2)
        memory = full[:, :, 3:].unfold(2, W, 3).permute(0, 2, 1, 4, 3)
        win_valid = valid[:, 3:].unfold(1, W, 3)
        win_ids = ids[:, 3:].unfold(1, W, 3)
        mem_mask = win_valid & (win_ids == step_id[:, :, None])
        return h, memory, mem_mask

    # ------------------------------------------------------------------ protocol

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> TWMState:
        """The empty state: no memory, no pending tokens, zero latent and ``h``.

        Args:
            batch_size: ``B``.
            device: Device (that of the parameters if None).

        Returns:
            :class:`TWMState` with batch shape ``(B,)``.
        """
        check_int(batch_size, "batch_size", minimum=1)
        p = self._param()
        device = p.device if device is None else torch.device(device)
        c = self.config
        latent = (batch_size, c.stoch_groups, c.stoch_classes)
        return TWMState(
            stoch=torch.zeros(latent, device=device, dtype=p.dtype),
            logits=torch.zeros(latent, device=device, dtype=p.dtype),
            prior_logits=torch.zeros(latent, device=device, dtype=p.dtype),
            deter=torch.zeros((batch_size, c.d_model), device=device, dtype=p.dtype),
            reward=torch.zeros((batch_size,), device=device, dtype=p.dtype),
            memory=torch.zeros(
                (batch_size, c.num_layers, self._window, c.d_model), device=device, dtype=p.dtype
            ),
            mem_mask=torch.zeros(batch_size, self._window, dtype=torch.bool, device=device),
            pending=torch.zeros(batch_size, dtype=torch.bool, device=device),
        )

    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TWMState | None = None,
        *,
        prev_action: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        reward: torch.Tensor | None = None,
        validate: bool = True,
    ) -> Observation:
        """Posterior and prior states of a stored sequence.

        With ``reward`` the whole sequence goes through the Transformer in one pass; without it the
        model feeds back its own predicted rewards, one step at a time (both are causal and give the
        same ``h`` for the same reward tokens).

        The arguments are those of :meth:`WorldModel.observe
        <hieros_lib.world_models.WorldModel.observe>` (``reward`` gives TWM's reward
        tokens).

        Returns:
            :class:`~hieros_lib.world_models.Observation` of :class:`TWMState` ``(B, T)``.

        Raises:
            HierosError: On bad shapes, dtypes or values.
        """
        _validate_observe(self, obs, action, is_first, state, prev_action, reward, values=validate)
        B, T = is_first.shape
        dtype = self._param().dtype
        if reward is not None:
            reward = reward.to(dtype)
        if state is None:
            state = self.initial_state(B, device=obs.device)
        if prev_action is not None:
            prev_action = prev_action.to(dtype)
        prev = shift_actions(action.to(dtype), is_first, prev_action)
        post_logits = self._encode(obs)
        post_stoch = draw_latent(post_logits, sample=sample, generator=generator)
        if reward is not None:
            h, memory, mem_mask = self._parallel(state, prev, reward, post_stoch.detach(), is_first)
            prior_logits = self._latent_logits(self.latent_head(h))
            prior_reward = self._predict_reward(h)
            post_reward = reward
        else:
            hs, memories, masks, rewards = [], [], [], []
            current = state
            for t in range(T):
                h_t, memory_t, mask_t = self._step(current, prev[:, t], is_first[:, t])
                r_t = self._predict_reward(h_t)
                current = TWMState(
                    post_stoch[:, t].detach(),
                    post_logits[:, t],
                    post_logits[:, t],  # the prior of step t is computed after the loop; not read here
                    h_t,
                    r_t,
                    memory_t,
                    mask_t,
                    torch.ones_like(is_first[:, t]),
                )
                hs.append(h_t)
                memories.append(memory_t)
                masks.append(mask_t)
                rewards.append(r_t)
            h, memory, mem_mask = torch.stack(hs, 1), torch.stack(memories, 1), torch.stack(masks, 1)
            prior_logits = self._latent_logits(self.latent_head(h))
            prior_reward = post_reward = torch.stack(rewards, 1)
        prior_stoch = draw_latent(prior_logits, sample=sample, generator=generator)
        pending = torch.ones_like(is_first)
        posterior = TWMState(post_stoch, post_logits, prior_logits, h, post_reward, memory, mem_mask, pending)
        prior = TWMState(prior_stoch, prior_logits, prior_logits, h, prior_reward, memory, mem_mask, pending)
        final = TWMState(*(field[:, -1] for field in posterior))
        return Observation(posterior=posterior, prior=prior, final_state=final)

    def observe_step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: TWMState,
        *,
        reward: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = False,
    ) -> TWMState:
        """The posterior state of one step for ``B`` environments: one Transformer call (the acting path).

        Feeds the previous step's pending ``[r, z]`` tokens and ``a_{t-1}`` against the memory (all cut
        where ``is_first``), reads ``h_t``, encodes ``obs`` into ``z_t`` and keeps ``[reward, z_t]`` as the
        next pending tokens. With the observed rewards this equals :meth:`observe` with ``reward=``.

        The arguments are those of :meth:`WorldModel.observe_step
        <hieros_lib.world_models.WorldModel.observe_step>` (``reward``, the reward received on
        arriving at ``obs``, is the next reward token; the model's prediction if None).

        Returns:
            The posterior :class:`TWMState` ``(B,)``.
        """
        _validate_observe_step(self, obs, prev_action, is_first, state, reward, values=validate)
        dtype = self._param().dtype
        prev = prev_action.to(dtype) * (~is_first).to(dtype)[:, None]
        h, memory, mem_mask = self._step(state, prev, is_first)
        prior_logits = self._latent_logits(self.latent_head(h))
        post_logits = self._encode(obs)
        post_stoch = draw_latent(post_logits, sample=sample, generator=generator)
        token = self._predict_reward(h) if reward is None else reward.to(dtype)
        return TWMState(
            post_stoch, post_logits, prior_logits, h, token, memory, mem_mask, torch.ones_like(is_first)
        )

    def imagine_step(
        self,
        state: TWMState,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> TWMState:
        """The imagined state after ``action``: one Transformer call over ``[r_t, z_t, a_t]``.

        The arguments are those of :meth:`WorldModel.imagine_step
        <hieros_lib.world_models.WorldModel.imagine_step>`.

        Returns:
            :class:`TWMState` ``(B,)`` with ``h_{t+1}``, ``z_{t+1}`` drawn from the prior and the predicted
            reward as the next pending reward token.

        Raises:
            HierosError: On a wrong action shape or state.
        """
        _validate_imagine_step(self, state, action, values=validate)
        h, memory, mem_mask = self._step(state, action.to(self._param().dtype))
        logits = self._latent_logits(self.latent_head(h))
        stoch = draw_latent(logits, sample=sample, generator=generator)
        reward = self._predict_reward(h)
        return TWMState(stoch, logits, logits, h, reward, memory, mem_mask, torch.ones_like(state.pending))

    def imagine(
        self,
        start: TWMState,
        policy: Policy,
        horizon: int,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> Imagination:
        """Roll the prior forward under ``policy`` (the shared :func:`~hieros_lib.world_models.imagine`)."""
        return imagine(self, start, policy, horizon, sample=sample, generator=generator, validate=validate)

    def start_states(self, observed: Observation) -> TWMState:
        """Every posterior state of an observed batch as a start state, batch shape ``(B * T,)``.

        Each carries its own copy of the Transformer memory, ``(B * T, L, 3 * memory_length, d_model)``.
        """
        post = observed.posterior
        memory = post.memory.masked_fill(~post.mem_mask[..., None, :, None], 0.0)
        state: TWMState = flatten_time(post._replace(memory=memory))
        return state

    def loss(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> WorldModelLoss:
        """Equations 3 and 4 of the paper on a replay batch.

        Args:
            batch: Fields ``obs``, ``action``, ``reward``, ``is_first``, ``is_last``, ``is_terminal``
                (see :data:`~hieros_lib.world_models.BATCH_FIELDS`).
            generator: Random generator for the latent samples.
            validate: Also check the batch's values (once; shapes are checked either way).

        Returns:
            :class:`~hieros_lib.world_models.WorldModelLoss` with metrics ``loss/obs`` (decoder NLL),
            ``loss/encoder_kl`` (KL to the uniform prior), ``loss/latent``, ``loss/reward``,
            ``loss/cont`` (unweighted), ``loss/representation``, ``loss/dynamics`` (weighted),
            ``entropy/posterior`` and ``entropy/prior``.

        Raises:
            HierosError: On a malformed batch.
        """
        validate_batch(batch, obs_shape=self.obs_shape, action_dim=self.action_dim, values=validate)
        c = self.config
        obs, is_first = batch["obs"], batch["is_first"]
        dtype = self._param().dtype
        reward = batch["reward"].to(dtype)
        observed = self.observe(
            obs, batch["action"], is_first, reward=reward, generator=generator, validate=False
        )
        post, prior = observed.posterior, observed.prior
        # equation 3: the observation model (a VAE with a uniform prior)
        image = self._obs_nll(post.stoch, obs)
        encoder_kl = categorical_kl(post.logits, torch.zeros_like(post.logits))
        representation = (c.image_scale * image + c.kl_scale * encoder_kl).mean()
        # equation 4: the dynamics model, on steps that have a history inside the sequence
        has_history = ~is_first
        has_history[:, 0] = False
        weight = has_history.to(dtype)
        count = weight.sum().clamp(min=1.0)
        latent = categorical_kl(post.logits.detach(), prior.logits)
        reward_nll = 0.5 * (symlog(reward) - self.reward_head(post.deter).squeeze(-1)) ** 2
        cont_target = (~batch["is_terminal"]).to(dtype)
        cont_nll = bernoulli_nll(self.cont_head(post.deter).squeeze(-1), cont_target)
        terms = c.latent_scale * latent + c.reward_scale * reward_nll + c.cont_scale * cont_nll
        dynamics = (terms * weight).sum() / count
        total = representation + dynamics

        def masked(x: torch.Tensor) -> torch.Tensor:
            return ((x * weight).sum() / count).detach()

        metrics = {
            "loss/total": total.detach(),
            "loss/representation": representation.detach(),
            "loss/dynamics": dynamics.detach(),
            "loss/obs": image.mean().detach(),
            "loss/encoder_kl": encoder_kl.mean().detach(),
            "loss/latent": masked(latent),
            "loss/reward": masked(reward_nll),
            "loss/cont": masked(cont_nll),
            "entropy/posterior": categorical_entropy(post.logits).sum(-1).mean().detach(),
            "entropy/prior": masked(self.entropy(prior)),
        }
        return WorldModelLoss(loss=total, metrics=metrics, observed=observed)

    def features(self, state: TWMState) -> torch.Tensor:
        """``cat(h_t, flatten(z_t))`` ``(..., d_model + G * K)``, as in every world model of the library.

        The TWM paper's actor reads ``z_t`` alone (and its reward prediction); Hieros' actor reads
        ``(h_t, z_t)`` (its equation 3), which is what the protocol's ``features`` means.
        """
        return torch.cat([state.deter, state.stoch.flatten(-2).to(state.deter.dtype)], dim=-1)

    def deter(self, state: TWMState) -> torch.Tensor:
        """``h_t`` ``(..., d_model)``: the Transformer output at the action token ``a_{t-1}``."""
        return state.deter

    def stoch(self, state: TWMState) -> torch.Tensor:
        """``z_t``, one-hot ``(..., G, K)``."""
        return state.stoch

    def decode(self, state: TWMState) -> torch.Tensor:
        """The decoder's mean of ``z_t``: an image, float ``(..., H, W, C)`` in ``[0, 1]``, or a vector
        ``(..., D)``."""
        return decode_observation(self.decoder, state.stoch.flatten(-2), vector=bool(self.config.vector_dim))

    def reward(self, state: TWMState) -> torch.Tensor:
        """Predicted reward ``(...)``: the mean of ``p(r_t | h_t)``."""
        return self._predict_reward(state.deter)

    def cont(self, state: TWMState) -> torch.Tensor:
        """Predicted continuation probability ``(...)``: ``sigmoid`` of the predictor's logit on ``h_t``."""
        return torch.sigmoid(self.cont_head(state.deter).squeeze(-1))

    def entropy(self, state: TWMState) -> torch.Tensor:
        """Entropy ``(...)`` of the prior ``p(z_t | h_t)`` at this step, summed over the ``G`` latents."""
        return categorical_entropy(state.prior_logits).sum(-1)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"layers={c.num_layers}, d_model={c.d_model}, memory_length={c.memory_length}, "
            f"latents={c.stoch_groups}x{c.stoch_classes}"
        )
