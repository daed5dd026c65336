"""A multilayer perceptron with LayerNorm and SiLU, the DreamerV3 building block."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check, check_int

__all__ = ["MLP"]


class MLP(nn.Module):
    """``layers`` blocks of ``Linear -> LayerNorm -> activation`` followed by a final ``Linear``.

    With ``norm=True`` the hidden ``Linear`` layers have no bias (the LayerNorm that follows has one).
    Any number of leading dimensions is accepted: ``(..., in_dim) -> (..., out_dim)``.

    Args:
        in_dim: Size of the input's last dimension.
        out_dim: Size of the output's last dimension.
        hidden: Width of every hidden layer.
        layers: Number of hidden blocks (0 gives a single ``Linear``).
        norm: Whether each hidden block has a LayerNorm.
        activation: Activation module class, instantiated once per block.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        HierosError: On non-positive sizes or a negative ``layers``.

    Examples:
        >>> import torch
        >>> mlp = MLP(5, 3, hidden=16, layers=2)
        >>> mlp(torch.randn(4, 7, 5)).shape
        torch.Size([4, 7, 3])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: int = 512,
        layers: int = 2,
        norm: bool = True,
        activation: type[nn.Module] = nn.SiLU,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden)):
            check_int(value, name, minimum=1)
        check_int(layers, "layers", minimum=0)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(layers):
            blocks.append(nn.Linear(width, hidden, bias=not norm, **factory))
            if norm:
                blocks.append(nn.LayerNorm(hidden, **factory))
            blocks.append(activation())
            width = hidden
        blocks.append(nn.Linear(width, out_dim, **factory))
        self.net = nn.Sequential(*blocks)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to the last dimension.

        Args:
            x: ``(..., in_dim)`` float tensor.

        Returns:
            ``(..., out_dim)`` tensor.

        Raises:
            HierosError: If the last dimension of ``x`` is not ``in_dim``.
        """
        check(
            x.dim() >= 1 and x.shape[-1] == self.in_dim,
            "x", f"a tensor of shape (..., {self.in_dim})", got=tuple(x.shape),
        )
        out: torch.Tensor = self.net(x)
        return out
