"""A Transformer-XL decoder: relative-position self-attention over new tokens and a cached memory.

This is the aggregation model of TWM (Robine et al., 2023), built after Dai et al. (2019): every layer
attends from the new tokens to the concatenation of its cached *memory* (the inputs that layer saw for
earlier tokens) and the new tokens themselves, with sinusoidal relative positional encodings and the
two learned global biases ``u`` (content) and ``v`` (position). Which key each query may see is given
entirely by a boolean mask built by the caller (causality, a sliding window and TWM's stop-mask across
episode borders all live there), so processing a segment in one pass or in pieces with the cached memory
gives the same result.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check, check_int

__all__ = ["RelativeMultiHeadAttention", "TransformerXL", "TransformerXLLayer", "relative_positions"]


def relative_positions(
    num_positions: int, dim: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    r"""Sinusoidal encodings of the relative distances ``0 .. num_positions - 1``.

    .. math::
        R[d, 2k] = \sin(d / 10000^{2k / D}), \qquad R[d, 2k + 1] = \cos(d / 10000^{2k / D})

    (laid out as all sines, then all cosines).

    Args:
        num_positions: Number of distances.
        dim: Encoding size ``D`` (even).
        device: Device of the result.
        dtype: Dtype of the result (float32 if None).

    Returns:
        ``(num_positions, dim)``.

    Examples:
        >>> relative_positions(5, 4)[0].tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    check(dim % 2 == 0, "dim", "an even int", got=dim)
    dtype = dtype or torch.float32
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim))
    dist = torch.arange(num_positions, device=device, dtype=torch.float64)
    angles = dist[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


class RelativeMultiHeadAttention(nn.Module):
    r"""Multi-head self-attention with Transformer-XL relative positions.

    For a query token at absolute position ``i`` and a key at ``j <= i`` (distance ``d = i - j``), head
    scores are

    .. math::
        s_{ij} = \frac{(q_i + u)^\top k_j + (q_i + v)^\top W_R R_{d}}{\sqrt{d_h}},

    masked where the caller's mask is false, soft-maxed over the keys and used to average the values.
    Queries are the new tokens; keys and values are ``[memory; new tokens]``.

    Args:
        d_model: Token size.
        num_heads: Number of heads.
        head_dim: Size ``d_h`` of each head.
        dropout: Dropout on the attention weights.
        device: Device of the parameters.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int,
        *,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.query = nn.Linear(d_model, inner, bias=False, **factory)
        self.key_value = nn.Linear(d_model, 2 * inner, bias=False, **factory)
        self.position = nn.Linear(d_model, inner, bias=False, **factory)
        self.out = nn.Linear(inner, d_model, bias=False, **factory)
        self.u = nn.Parameter(torch.empty(num_heads, head_dim, **factory))
        self.v = nn.Parameter(torch.empty(num_heads, head_dim, **factory))
        nn.init.xavier_uniform_(self.u)
        nn.init.xavier_uniform_(self.v)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attend from ``x`` to ``[memory; x]``.

        Args:
            x: ``(B, N, d_model)`` new tokens (absolute positions ``M .. M + N - 1``).
            memory: ``(B, M, d_model)`` cached tokens (positions ``0 .. M - 1``); ``M`` may be 0.
            mask: ``(B, N, M + N)`` bool, true where the query may attend to the key. Every row must
                allow at least one key.

        Returns:
            ``(B, N, d_model)``.
        """
        B, N, _ = x.shape
        M = memory.shape[1]
        H, Dh = self.num_heads, self.head_dim
        full = torch.cat([memory, x], dim=1)
        q = self.query(x).view(B, N, H, Dh)
        k, v = self.key_value(full).view(B, M + N, 2, H, Dh).unbind(2)
        pos = relative_positions(M + N, x.shape[-1], device=x.device, dtype=x.dtype)
        r = self.position(pos).view(M + N, H, Dh)
        content = torch.einsum("bihd,bjhd->bhij", q + self.u, k)
        by_distance = torch.einsum("bihd,rhd->bhir", q + self.v, r)
        # distance of query i (absolute M + i) to key j; negative distances are masked anyway
        dist = (torch.arange(N, device=x.device)[:, None] + M) - torch.arange(M + N, device=x.device)[None]
        index = dist.clamp(min=0).expand(B, H, N, M + N)
        scores = (content + torch.gather(by_distance, -1, index)) / math.sqrt(Dh)
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        y = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(B, N, H * Dh)
        out: torch.Tensor = self.out(y)
        return out


class TransformerXLLayer(nn.Module):
    """One Transformer-XL layer: relative attention and a feed-forward block, each residual.

    Post-norm (Transformer-XL's original): ``y = LN(x + Attn(x, memory)); out = LN(y + FF(y))``.
    Pre-norm: ``y = x + Attn(LN(x), LN(memory)); out = y + FF(LN(y))``. ``FF = Linear -> SiLU -> Linear``.

    Args:
        d_model: Token size.
        num_heads: Number of attention heads.
        head_dim: Size of each head.
        ff_dim: Hidden size of the feed-forward block.
        dropout: Dropout on attention weights and on both residual branches.
        pre_norm: Normalise the inputs of each block instead of the outputs.
        device: Device of the parameters.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int,
        ff_dim: int,
        *,
        dropout: float = 0.0,
        pre_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.pre_norm = pre_norm
        self.attention = RelativeMultiHeadAttention(d_model, num_heads, head_dim, dropout=dropout, **factory)
        self.norm1 = nn.LayerNorm(d_model, **factory)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, ff_dim, **factory),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, d_model, **factory),
        )
        self.norm2 = nn.LayerNorm(d_model, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, N, d)`` new tokens, ``(B, M, d)`` memory, ``(B, N, M + N)`` mask -> ``(B, N, d)``."""
        if self.pre_norm:
            y = x + self.dropout(self.attention(self.norm1(x), self.norm1(memory), mask))
            return y + self.dropout(self.feed_forward(self.norm2(y)))
        y = self.norm1(x + self.dropout(self.attention(x, memory, mask)))
        out: torch.Tensor = self.norm2(y + self.dropout(self.feed_forward(y)))
        return out


class TransformerXL(nn.Module):
    r"""A stack of :class:`TransformerXLLayer` with a per-layer cached memory.

    Layer ``l`` attends over ``[memory[:, l]; x_l]``, where ``x_l`` is its input for the new tokens
    and ``memory[:, l]`` holds the inputs layer ``l`` saw for the ``M`` tokens before them. Besides the
    output, :meth:`forward` returns every layer's input for the new tokens, which is what the caller
    appends to the memory. Processing ``[x_1; x_2]`` in one pass equals processing ``x_1`` and then
    ``x_2`` with the memory extended by the layer inputs of ``x_1``, as long as the mask describes the
    same visible keys (Dai et al., 2019). Gradients are not stopped at the memory; detach it yourself
    when carrying it across training segments. With ``pre_norm`` a final LayerNorm follows the last
    layer.

    Args:
        d_model: Token size.
        num_layers: Number of layers ``L``.
        num_heads: Number of attention heads.
        head_dim: Size of each head.
        ff_dim: Hidden size of the feed-forward blocks.
        dropout: Dropout rate.
        pre_norm: Pre-norm layers (see :class:`TransformerXLLayer`) and a final LayerNorm.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Examples:
        >>> import torch
        >>> net = TransformerXL(8, 2, 2, 4, 16)
        >>> x = torch.randn(1, 3, 8)
        >>> mask = torch.ones(3, 3, dtype=torch.bool).tril()[None]
        >>> y, hidden = net(x, net.empty_memory(1), mask)
        >>> y.shape, hidden.shape
        (torch.Size([1, 3, 8]), torch.Size([1, 2, 3, 8]))
    """

    def __init__(
        self,
        d_model: int,
        num_layers: int,
        num_heads: int,
        head_dim: int,
        ff_dim: int,
        *,
        dropout: float = 0.0,
        pre_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("d_model", d_model),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("head_dim", head_dim),
            ("ff_dim", ff_dim),
        ):
            check_int(value, name, minimum=1)
        check(d_model % 2 == 0, "d_model", "an even int (sinusoidal positions)", got=d_model)
        check(0.0 <= dropout < 1.0, "dropout", "a float in [0, 1)", got=dropout)
        self.d_model = d_model
        self.num_layers = num_layers
        self.layers = nn.ModuleList(
            TransformerXLLayer(
                d_model,
                num_heads,
                head_dim,
                ff_dim,
                dropout=dropout,
                pre_norm=pre_norm,
                device=device,
                dtype=dtype,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model, device=device, dtype=dtype) if pre_norm else nn.Identity()

    def empty_memory(self, batch_size: int, length: int = 0) -> torch.Tensor:
        """A zero memory ``(batch_size, L, length, d_model)`` on the parameters' device and dtype."""
        p = next(self.parameters())
        return p.new_zeros(batch_size, self.num_layers, length, self.d_model)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the new tokens through every layer.

        Args:
            x: ``(B, N, d_model)`` embedded new tokens.
            memory: ``(B, L, M, d_model)`` cached layer inputs of the ``M`` previous tokens.
            mask: ``(B, N, M + N)`` bool, true where a query may attend to a key (keys ordered as
                memory, then new tokens). Each row needs at least one true entry.

        Returns:
            ``(out, hidden)``: ``out`` ``(B, N, d_model)`` the last layer's output; ``hidden``
            ``(B, L, N, d_model)`` each layer's input for the new tokens (the memory to append).

        Raises:
            HierosError: On mismatched shapes.
        """
        check(
            x.dim() == 3 and x.shape[-1] == self.d_model,
            "x",
            f"a tensor of shape (B, N, {self.d_model})",
            got=tuple(x.shape),
        )
        B, N, _ = x.shape
        check(
            memory.dim() == 4
            and memory.shape[0] == B
            and memory.shape[1] == self.num_layers
            and memory.shape[3] == self.d_model,
            "memory",
            f"a tensor of shape ({B}, {self.num_layers}, M, {self.d_model})",
            got=tuple(memory.shape),
        )
        M = memory.shape[2]
        check(
            mask.shape == (B, N, M + N) and mask.dtype == torch.bool,
            "mask",
            f"a bool tensor of shape {(B, N, M + N)}",
            got=f"{mask.dtype} {tuple(mask.shape)}",
        )
        hidden = []
        for index, layer in enumerate(self.layers):
            hidden.append(x)
            x = layer(x, memory[:, index], mask)
        return self.final_norm(x), torch.stack(hidden, dim=1)
