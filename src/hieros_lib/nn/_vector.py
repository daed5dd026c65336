"""Encoder and decoder for vector observations (DreamerV3's MLP path, in symlog space)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check, check_int
from hieros_lib.nn._functional import symlog
from hieros_lib.nn._mlp import MLP

__all__ = ["VectorDecoder", "VectorEncoder", "symlog_mse"]


class VectorEncoder(nn.Module):
    """``symlog`` of a float observation vector, then an :class:`MLP` to an embedding.

    ``symlog`` squashes inputs of any scale into a range a network handles (DreamerV3), so raw vector
    observations need no normalisation.

    Args:
        in_dim: ``D``, the observation size.
        out_dim: Size of the embedding (``out_dim``).
        hidden: Width of the hidden layers.
        layers: Number of hidden layers.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Examples:
        >>> import torch
        >>> enc = VectorEncoder(7, 32, hidden=16)
        >>> enc(torch.randn(4, 5, 7)).shape, enc.out_dim
        (torch.Size([4, 5, 32]), 32)
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", minimum=1)
        self.out_dim = check_int(out_dim, "out_dim", minimum=1)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.net = MLP(in_dim, out_dim, hidden=hidden, layers=layers, **factory)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` float observations -> ``(..., out_dim)`` embeddings."""
        check(obs.is_floating_point(), "obs", "a floating-point tensor", got=obs.dtype)
        out: torch.Tensor = self.net(symlog(obs))
        return out


class VectorDecoder(nn.Module):
    """An :class:`MLP` from model features to the observation vector **in symlog space**.

    Its output is a prediction of ``symlog(obs)``; train it with :func:`symlog_mse` and map predictions
    back with :func:`~hieros_lib.nn.symexp`.

    Args:
        in_dim: Size of the features.
        out_dim: ``D``, the observation size.
        hidden: Width of the hidden layers.
        layers: Number of hidden layers.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Examples:
        >>> import torch
        >>> dec = VectorDecoder(32, 7, hidden=16)
        >>> dec(torch.randn(4, 32)).shape
        torch.Size([4, 7])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", minimum=1)
        self.out_dim = check_int(out_dim, "out_dim", minimum=1)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.net = MLP(in_dim, out_dim, hidden=hidden, layers=layers, **factory)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., in_dim)`` -> ``(..., D)`` predicted ``symlog(obs)``."""
        out: torch.Tensor = self.net(features)
        return out


def symlog_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error in symlog space summed over the last dimension, ``sum_d (pred - symlog(target))^2``.

    The negative log-likelihood (up to a constant and a factor 2) of a unit-variance Gaussian over
    ``symlog(obs)``: DreamerV3's reconstruction loss for vector observations.

    Args:
        pred: ``(..., D)`` predicted ``symlog(obs)``.
        target: ``(..., D)`` raw observations.

    Returns:
        ``(...)`` summed squared error.

    Examples:
        >>> import torch
        >>> symlog_mse(torch.zeros(2, 3), torch.zeros(2, 3))
        tensor([0., 0.])
    """
    check(
        isinstance(target, torch.Tensor) and target.shape == pred.shape,
        "target",
        f"a tensor of shape {tuple(pred.shape)}",
        got=getattr(target, "shape", type(target).__name__),
    )
    return (pred - symlog(target.to(pred.dtype))).square().sum(-1)
