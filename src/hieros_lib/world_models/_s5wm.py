"""S5WM: the S5-based world model of Hieros (paper section 2.2, appendix E)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from hieros_lib.errors import check, check_int
from hieros_lib.nn import MLP, symlog
from hieros_lib.ssm import S5Stack
from hieros_lib.world_models._algorithms import shift_actions
from hieros_lib.world_models._latent import LatentConfig, LatentWorldModel, draw_latent
from hieros_lib.world_models._protocol import Observation
from hieros_lib.world_models._validate import (
    _validate_imagine_step,
    _validate_observe,
    _validate_observe_step,
)

__all__ = ["S5WM", "S5WMConfig", "S5WMState"]


class S5WMState(NamedTuple):
    """State of :class:`S5WM`; every field has leading batch dims ``(...)``.

    Attributes:
        deter: ``(..., deter_dim)`` deterministic state ``h_t``.
        stoch: ``(..., G, K)`` one-hot latent ``z_t``.
        logits: ``(..., G, K)`` logits ``z_t`` was drawn from (posterior or prior).
        prior_logits: ``(..., G, K)`` logits of the prior ``p(z_t | m_t)`` of this step (the same tensor
            as ``logits`` for prior and imagined states).
        ssm: One complex ``(..., P)`` tensor per S5 block: the internal S5 states ``x_t`` after step
            ``t`` (what the next step continues from).
    """

    deter: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor
    prior_logits: torch.Tensor
    ssm: tuple[torch.Tensor, ...]


@dataclass(frozen=True, kw_only=True)
class S5WMConfig(LatentConfig):
    """Configuration of :class:`S5WM` (defaults: Hieros appendix E); the other fields (image or vector
    observations, latents, heads, loss weights) are those every model shares.

    Attributes:
        model_dim: S5 model dimension ``H`` (256).
        state_dim: S5 state dimension (128; 64 stored modes per block with conjugate symmetry).
        ssm_blocks: HiPPO-N initialisation blocks ``J`` (4).
        num_layers: Number of S5 blocks in the stack (8).
        dropout: Dropout inside the S5 blocks.
        deter_dim: Size of ``h_t`` (256).
        deter_source: ``"state"``: ``h_t`` is a linear projection of the real parts of the internal S5
            states of all blocks (the paper's choice); ``"output"``: a projection of the sequence
            output ``m_t`` (the appendix G.2 ablation).
        symlog_deter: Apply ``symlog`` to ``h_t`` (as the official code does).

    Examples:
        >>> S5WMConfig.tiny(action_dim=3).num_layers
        2
    """

    depth: int = 24
    units: int = 256
    model_dim: int = 256
    state_dim: int = 128
    ssm_blocks: int = 4
    num_layers: int = 8
    dropout: float = 0.0
    deter_dim: int = 256
    deter_source: str = "state"
    symlog_deter: bool = True

    @classmethod
    def paper(cls, **overrides: Any) -> S5WMConfig:
        """Hieros appendix E: S5 256 / 128, J = 4, 8 blocks, h 256, z 32x32, MLP units 256."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> S5WMConfig:
        """A small model on 16x16 images, for tests."""
        base: dict[str, Any] = {
            "image_size": 16,
            "depth": 8,
            "stoch_groups": 8,
            "stoch_classes": 8,
            "units": 64,
            "head_layers": 1,
            "model_dim": 32,
            "state_dim": 16,
            "ssm_blocks": 2,
            "num_layers": 2,
            "deter_dim": 32,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> S5WMConfig:
        """A CPU-sized model (16 x 16 images, 16 x 16 latents, S5 width 128, 2 blocks) that learns small
        tasks in minutes on two cores: the world model of the agent's CPU presets."""
        base: dict[str, Any] = {
            "image_size": 16,
            "depth": 16,
            "stoch_groups": 16,
            "stoch_classes": 16,
            "units": 128,
            "head_layers": 1,
            "model_dim": 128,
            "state_dim": 64,
            "ssm_blocks": 2,
            "num_layers": 2,
            "deter_dim": 128,
            "vector_units": 128,
        }
        return cls(**{**base, **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("model_dim", "state_dim", "ssm_blocks", "num_layers", "deter_dim"):
            value = getattr(self, name)
            check_int(value, name, minimum=1)
        check(
            self.deter_source in ("state", "output"),
            "deter_source",
            "'state' or 'output'",
            got=repr(self.deter_source),
        )
        check(0.0 <= self.dropout < 1.0, "dropout", "a float in [0, 1)", got=self.dropout)


class S5WM(LatentWorldModel):
    r"""The S5-based world model of Hieros.

    .. math::
        (m_t, x_t) &= f_\theta(x_{t-1}, [z_{t-1}, a_{t-1}]) \quad \text{(a stack of S5 blocks)} \\
        h_t &= \operatorname{symlog}(W \operatorname{Re}[x_t^{(1)}, \dots, x_t^{(L)}]) \\
        z_t &\sim q(z_t \mid o_t) \qquad \hat z_t \sim p(\hat z_t \mid m_t) \\
        \hat r_t, \hat c_t, \hat o_t &\sim p(\cdot \mid h_t, z_t)

    The posterior reads the observation alone, so all ``z_t`` of a replay sequence are computed at once
    and the S5 stack runs over the whole sequence in parallel (a scan), with its state reset to zero
    wherever ``is_first`` (and ``z_{t-1}``, ``a_{t-1}`` zeroed there). Imagination runs the same stack
    one step at a time at constant cost per step. ``a_{t-1}`` comes from
    :func:`~hieros_lib.world_models.shift_actions`: unlike the official code, the prior for ``z_t``
    never sees ``a_t``.

    Args:
        config: :class:`S5WMConfig`.
        device: Device of the parameters (built on the CPU, then moved; as :class:`TWM` takes it).
        dtype: Floating dtype of the parameters (e.g. ``torch.bfloat16``; the S5 scan still runs in
            float32 / complex64).

    Examples:
        >>> import torch
        >>> model = S5WM(S5WMConfig.tiny(action_dim=3))
        >>> obs = torch.zeros(2, 5, 16, 16, 3, dtype=torch.uint8)
        >>> out = model.observe(obs, torch.zeros(2, 5, 3), torch.zeros(2, 5, dtype=torch.bool))
        >>> model.features(out.posterior).shape
        torch.Size([2, 5, 96])
        >>> vector = S5WM(S5WMConfig.tiny(action_dim=3, vector_dim=7))  # vector observations
        >>> vector.obs_shape
        (7,)

    References:
        Mattes, Schlosser, Herbrich, "Hieros: Hierarchical Imagination on Structured State Space Sequence
        World Models", arXiv 2310.05167, section 2.2.
    """

    def __init__(
        self,
        config: S5WMConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(config, S5WMConfig), "config", "an S5WMConfig", got=type(config).__name__)
        self._build_shared(config, config.deter_dim)
        self.in_layer = nn.Sequential(
            nn.Linear(self.stoch_dim + config.action_dim, config.model_dim, bias=False),
            nn.LayerNorm(config.model_dim),
            nn.SiLU(),
        )
        self.sequence = S5Stack(
            config.model_dim,
            config.state_dim,
            config.num_layers,
            blocks=config.ssm_blocks,
            dropout=config.dropout,
        )
        state_size = sum(int(s.shape[-1]) for s in self.sequence.initial_state(1))
        source_dim = state_size if config.deter_source == "state" else config.model_dim
        self.deter_proj = nn.Linear(source_dim, config.deter_dim)
        self.prior_net = MLP(config.model_dim, self.stoch_dim, hidden=config.units, layers=1)
        self.post_net = MLP(self.encoder.out_dim, self.stoch_dim, hidden=config.units, layers=1)

        if device is not None or dtype is not None:  # built on the CPU in float32, then moved
            self.to(device=device, dtype=dtype)

    def _deter(self, ssm: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        if self.config.deter_source == "state":
            source = torch.cat([s.real for s in ssm], -1).to(output.dtype)
        else:
            source = output
        deter = self.deter_proj(source)
        return symlog(deter) if self.config.symlog_deter else deter

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> S5WMState:
        """The state before an episode: zero S5 states, zero ``z`` and ``h``, uniform logits.

        Args:
            batch_size: ``B``.
            device: Device (the parameters' if None).

        Returns:
            :class:`S5WMState` with batch shape ``(B,)``.
        """
        check_int(batch_size, "batch_size", minimum=1)
        param = self.deter_proj.weight
        device = param.device if device is None else torch.device(device)
        g, k = self.config.stoch_groups, self.config.stoch_classes
        zeros = torch.zeros(batch_size, g, k, device=device, dtype=param.dtype)
        deter = torch.zeros(batch_size, self.deter_dim, device=device, dtype=param.dtype)
        ssm = tuple(self.sequence.initial_state(batch_size, device=device))
        return S5WMState(deter, zeros, zeros, zeros, ssm)

    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: S5WMState | None = None,
        *,
        prev_action: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        reward: torch.Tensor | None = None,
        validate: bool = True,
    ) -> Observation:
        """Posterior and prior states of a stored sequence, in parallel over time.

        The arguments are those of :meth:`WorldModel.observe
        <hieros_lib.world_models.WorldModel.observe>` (``reward`` is validated and not used: this
        model does not condition on rewards).

        Returns:
            :class:`~hieros_lib.world_models.Observation` with :class:`S5WMState` fields ``(B, T, ...)``.

        Raises:
            HierosError: On bad shapes, dtypes or values.
        """
        _validate_observe(self, obs, action, is_first, state, prev_action, reward, values=validate)
        batch = is_first.shape[0]
        dtype = self.deter_proj.weight.dtype
        if state is None:
            state = self.initial_state(batch, device=obs.device)
        prev = shift_actions(action.to(dtype), is_first, prev_action)
        post_logits = self._logits(self.post_net(self._embed(obs)))
        post_stoch = draw_latent(post_logits, sample=sample, generator=generator)
        prev_stoch = torch.cat([state.stoch.unsqueeze(1), post_stoch[:, :-1]], 1)
        prev_stoch = prev_stoch * (~is_first)[..., None, None].to(dtype)
        inputs = self.in_layer(torch.cat([prev_stoch.flatten(-2), prev], -1))
        output, final_ssm, ssm = self.sequence(inputs, state=state.ssm, reset=is_first, return_states=True)
        deter = self._deter(tuple(ssm), output)
        prior_logits = self._logits(self.prior_net(output))
        prior_stoch = draw_latent(prior_logits, sample=sample, generator=generator)
        ssm = tuple(ssm)
        posterior = S5WMState(deter, post_stoch, post_logits, prior_logits, ssm)
        prior = S5WMState(deter, prior_stoch, prior_logits, prior_logits, ssm)
        final = S5WMState(
            deter[:, -1], post_stoch[:, -1], post_logits[:, -1], prior_logits[:, -1], tuple(final_ssm)
        )
        return Observation(posterior, prior, final)

    def observe_step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: S5WMState,
        *,
        reward: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = False,
    ) -> S5WMState:
        """The posterior state of one step for ``B`` environments: the acting path, one S5 step.

        Equals :meth:`observe` run step by step (a test checks it). The S5 stack runs in its recurrent
        mode; where ``is_first``, the state, ``z_{t-1}`` and ``a_{t-1}`` are reset first.

        The arguments are those of :meth:`WorldModel.observe_step
        <hieros_lib.world_models.WorldModel.observe_step>` (``reward`` is not used).

        Returns:
            The posterior :class:`S5WMState` ``(B,)``.
        """
        _validate_observe_step(self, obs, prev_action, is_first, state, reward, values=validate)
        dtype = self.deter_proj.weight.dtype
        keep = (~is_first).to(dtype)
        prev_stoch = state.stoch.flatten(-2) * keep[:, None]
        prev = prev_action.to(dtype) * keep[:, None]
        inputs = self.in_layer(torch.cat([prev_stoch, prev], -1))
        output, ssm = self.sequence.step(inputs, state.ssm, reset=is_first)
        ssm = tuple(ssm)
        prior_logits = self._logits(self.prior_net(output))
        post_logits = self._logits(self.post_net(self._embed(obs)))
        post_stoch = draw_latent(post_logits, sample=sample, generator=generator)
        return S5WMState(self._deter(ssm, output), post_stoch, post_logits, prior_logits, ssm)

    def imagine_step(
        self,
        state: S5WMState,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> S5WMState:
        """One prior step of the S5 stack in recurrent mode: constant cost per step.

        The arguments are those of :meth:`WorldModel.imagine_step
        <hieros_lib.world_models.WorldModel.imagine_step>`.

        Returns:
            The next :class:`S5WMState` ``(B,)`` (prior).
        """
        _validate_imagine_step(self, state, action, values=validate)
        inputs = self.in_layer(torch.cat([state.stoch.flatten(-2), action.to(state.deter.dtype)], -1))
        output, ssm = self.sequence.step(inputs, state.ssm)
        ssm = tuple(ssm)
        logits = self._logits(self.prior_net(output))
        stoch = draw_latent(logits, sample=sample, generator=generator)
        return S5WMState(self._deter(ssm, output), stoch, logits, logits, ssm)
