"""S5 blocks (norm, S5, activation, dropout, residual) and stacks of them, with explicit state."""

from __future__ import annotations

import math
from typing import Any, Literal, cast

import torch
from torch import nn
from torch.nn import functional as F

from hieros_lib.errors import check, check_int
from hieros_lib.ssm._s5 import S5

__all__ = ["S5Block", "S5Stack"]

Activation = Literal["glu", "half_glu1", "half_glu2", "gelu"]
_ACTIVATIONS = ("glu", "half_glu1", "half_glu2", "gelu")


def _linear(
    width: int,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> nn.Linear:
    """A square Linear with PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from ``generator``."""
    layer = nn.Linear(width, width, device=device, dtype=dtype)
    bound = 1.0 / math.sqrt(width)
    with torch.no_grad():
        for param in (layer.weight, layer.bias):
            draw = torch.rand(param.shape, generator=generator, dtype=torch.float64) * 2 - 1
            param.copy_(draw * bound)
    return layer


class S5Block(nn.Module):
    r"""One S5 sequence layer: (pre-)norm, :class:`S5`, activation, dropout, residual.

    With ``prenorm`` (default): ``out = x + act(S5(LayerNorm(x)))``; otherwise
    ``out = LayerNorm(x + act(S5(x)))``. Activations (``g = dropout(gelu(y))``, ``y`` the S5 output):

    * ``"glu"``: ``W_1 g * sigmoid(W_2 g)``;
    * ``"half_glu1"``: ``g * sigmoid(W_2 g)``;
    * ``"half_glu2"``: ``y * sigmoid(W_2 g)``;
    * ``"gelu"``: ``g``;

    each followed by dropout. The state is the S5 layer's ``(B, P)`` complex state; ``forward``, ``step`` and
    ``initial_state`` behave as in :class:`S5`.

    Args:
        d_model: ``H``.
        d_state: State size of the S5 layer (see :class:`S5`).
        blocks: HiPPO-N blocks ``J``.
        dropout: Dropout probability.
        activation: ``"glu"``, ``"half_glu1"``, ``"half_glu2"`` or ``"gelu"``.
        prenorm: Normalise the block input (True) or the block output (False).
        generator: Source of the random initialisation.
        device: Device of the parameters.
        dtype: Real dtype of the parameters.
        **s5_kwargs: Passed to :class:`S5` (``conj_sym``, ``discretization``, ``clip_eigs``, ``dt_min``, ...).

    Examples:
        >>> import torch
        >>> block = S5Block(8, 16, generator=torch.Generator().manual_seed(0))
        >>> y, state = block(torch.randn(2, 5, 8))
        >>> y.shape, state.shape
        (torch.Size([2, 5, 8]), torch.Size([2, 8]))
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        blocks: int = 1,
        dropout: float = 0.0,
        activation: Activation = "glu",
        prenorm: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **s5_kwargs: Any,
    ) -> None:
        super().__init__()
        check(activation in _ACTIVATIONS, "activation", f"one of {_ACTIVATIONS}", got=repr(activation))
        check(0.0 <= dropout < 1.0, "dropout", "a probability in [0, 1)", got=dropout)
        self.activation: Activation = activation
        self.prenorm = prenorm
        self.norm = nn.LayerNorm(d_model, device=device, dtype=dtype)
        self.s5 = S5(
            d_model, d_state, blocks=blocks, generator=generator, device=device, dtype=dtype, **s5_kwargs
        )
        self.out1: nn.Linear | None = (
            _linear(d_model, generator, device, dtype) if activation == "glu" else None
        )
        self.out2: nn.Linear | None = (
            _linear(d_model, generator, device, dtype) if activation != "gelu" else None
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def P(self) -> int:  # noqa: N802 - the paper's name
        """Number of stored complex modes of the S5 layer."""
        return self.s5.P

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state ``(batch_size, P)`` (see :meth:`S5.initial_state`)."""
        return self.s5.initial_state(batch_size, device=device)

    def _check_input(self, x: torch.Tensor, name: str, shape: str, dims: int) -> None:
        """The block's own input check: the norm comes before the S5 layer's check (pre-norm)."""
        width = self.s5.d_model
        check(
            isinstance(x, torch.Tensor) and x.dim() == dims and x.shape[-1] == width,
            name,
            f"a tensor of shape {shape} with H={width}",
            got=lambda: f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__,
        )
        check(x.is_floating_point(), name, "a floating-point tensor", got=x.dtype)
        check(x.device == self.norm.weight.device, name, f"a tensor on {self.norm.weight.device}",
              got=x.device)

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        if self.activation == "half_glu2":
            assert self.out2 is not None
            z = y * torch.sigmoid(self.out2(self.dropout(F.gelu(y))))
        else:
            g = self.dropout(F.gelu(y))
            if self.activation == "glu":
                assert self.out1 is not None and self.out2 is not None
                z = self.out1(g) * torch.sigmoid(self.out2(g))
            elif self.activation == "half_glu1":
                assert self.out2 is not None
                z = g * torch.sigmoid(self.out2(g))
            else:
                z = g
        return self.dropout(z)

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        reset: torch.Tensor | None = None,
        return_states: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Run the block over ``x (B, T, H)``; returns ``(y, final_state)`` or ``(y, final_state, states)``.

        Args and returns as in :meth:`S5.forward`.
        """
        self._check_input(x, "x", "(B, T, H)", 3)
        h = self.norm(x) if self.prenorm else x
        y, final, states = self.s5(h, state=state, reset=reset, return_states=True)
        out = x + self._activate(y)
        if not self.prenorm:
            out = self.norm(out)
        return (out, final, states) if return_states else (out, final)

    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None, reset: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on ``x_t (B, H)``; returns ``(y_t, state)`` (see :meth:`S5.step`)."""
        self._check_input(x_t, "x_t", "(B, H)", 2)
        h = self.norm(x_t) if self.prenorm else x_t
        y, state = self.s5.step(h, state, reset=reset)
        out = x_t + self._activate(y)
        if not self.prenorm:
            out = self.norm(out)
        return out, state


class S5Stack(nn.Module):
    """A stack of :class:`S5Block`; the state is a tuple with one ``(B, P)`` complex tensor per block.

    Hieros' S5 world model uses ``S5Stack(256, 128, 8, blocks=4)`` (model width 256, state size 128, 8
    blocks, ``J = 4``); pass ``conj_sym=False`` to keep all 128 complex modes as the official code does
    (``P = 128``), or keep the default ``conj_sym=True`` for the S5 reference's halved equivalent
    (``P = 64``).

    Args:
        d_model: ``H``.
        d_state: State size of every S5 layer (see :class:`S5`).
        num_blocks: Number of blocks.
        blocks: HiPPO-N blocks ``J`` of every S5 layer (the same meaning as in :class:`S5`; the stack's
            :class:`S5Block` layers are in ``layers``).
        dropout: Dropout probability in every block.
        final_norm: Apply a LayerNorm to the stack output (usual after pre-norm blocks).
        generator: Source of the random initialisation.
        device: Device of the parameters.
        dtype: Real dtype of the parameters.
        **block_kwargs: Passed to every :class:`S5Block` (``activation``, ``prenorm``, S5 options).

    Attributes:
        layers: The ``num_blocks`` :class:`S5Block` s, in order (a :class:`torch.nn.ModuleList`).

    Examples:
        >>> import torch
        >>> stack = S5Stack(8, 16, 3, generator=torch.Generator().manual_seed(0))
        >>> x = torch.randn(2, 5, 8)
        >>> y, final, states = stack(x, return_states=True)
        >>> len(final), states[0].shape
        (3, torch.Size([2, 5, 8]))
        >>> y_t, state = stack.step(x[:, 0], stack.initial_state(2))
        >>> torch.allclose(y_t, y[:, 0], atol=1e-5)
        True
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        num_blocks: int,
        *,
        blocks: int = 1,
        dropout: float = 0.0,
        final_norm: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        check_int(num_blocks, "num_blocks", minimum=1)
        self.layers = nn.ModuleList(
            S5Block(
                d_model,
                d_state,
                blocks=blocks,
                dropout=dropout,
                generator=generator,
                device=device,
                dtype=dtype,
                **block_kwargs,
            )
            for _ in range(num_blocks)
        )
        self.final_norm: nn.LayerNorm | None = (
            nn.LayerNorm(d_model, device=device, dtype=dtype) if final_norm else None
        )

    def _blocks(self) -> list[S5Block]:
        return [cast(S5Block, layer) for layer in self.layers]

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, ...]:
        """One zero state ``(batch_size, P)`` per block."""
        return tuple(layer.initial_state(batch_size, device=device) for layer in self._blocks())

    def _check_state(self, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor | None, ...]:
        if state is None:
            return (None,) * len(self.layers)
        check(
            isinstance(state, (tuple, list)) and len(state) == len(self.layers),
            "state",
            f"a tuple of {len(self.layers)} (B, P) tensors, one per block",
            got=f"{type(state).__name__} of length {len(state) if isinstance(state, (tuple, list)) else '-'}",
        )
        return tuple(state)

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, ...] | None = None,
        reset: torch.Tensor | None = None,
        return_states: bool = False,
    ) -> tuple[Any, ...]:
        """Run every block over ``x (B, T, H)``.

        Returns:
            ``(y (B, T, H), final_state)`` with ``final_state`` a tuple of ``(B, P)`` tensors, and with
            ``return_states`` also a tuple of every block's states ``(B, T, P)``.
        """
        states_in = self._check_state(state)
        finals, all_states = [], []
        for layer, s in zip(self._blocks(), states_in, strict=True):
            x, final, states = layer(x, state=s, reset=reset, return_states=True)
            finals.append(final)
            all_states.append(states)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if return_states:
            return x, tuple(finals), tuple(all_states)
        return x, tuple(finals)

    def step(
        self,
        x_t: torch.Tensor,
        state: tuple[torch.Tensor, ...] | None,
        reset: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One step on ``x_t (B, H)``; returns ``(y_t, state)`` with one new state per block."""
        states_in = self._check_state(state)
        new = []
        for layer, s in zip(self._blocks(), states_in, strict=True):
            x_t, s_new = layer.step(x_t, s, reset=reset)
            new.append(s_new)
        if self.final_norm is not None:
            x_t = self.final_norm(x_t)
        return x_t, tuple(new)
