"""Elementwise transforms: ``symlog`` / ``symexp`` and image preprocessing."""

from __future__ import annotations

import torch

from hieros_lib.errors import check

__all__ = ["preprocess_image", "symexp", "symlog"]


def symlog(x: torch.Tensor) -> torch.Tensor:
    """Symmetric logarithm, ``sign(x) * log(1 + |x|)`` (DreamerV3).

    It is the identity near zero and logarithmic for large magnitudes, so targets of very different
    scales can be regressed with one loss. :func:`symexp` is its inverse. Its derivative is
    ``1 / (1 + |x|)`` everywhere, including ``1`` at ``x = 0``.

    Args:
        x: Any real tensor.

    Returns:
        A tensor of the same shape and dtype.

    Examples:
        >>> import torch
        >>> symlog(torch.tensor([-(torch.e - 1.0), 0.0, torch.e - 1.0]))
        tensor([-1.,  0.,  1.])
    """
    # Written with two clamped branches (not sign(x) * log1p(|x|)) so the gradient at 0 is 1, not 0.
    return torch.where(x >= 0, torch.log1p(x.clamp(min=0)), -torch.log1p((-x).clamp(min=0)))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`symlog`, ``sign(x) * (exp(|x|) - 1)``.

    Args:
        x: Any real tensor.

    Returns:
        A tensor of the same shape and dtype.

    Examples:
        >>> import torch
        >>> symexp(symlog(torch.tensor([-100.0, 0.5, 3.0])))
        tensor([-100.0000,    0.5000,    3.0000])
    """
    return torch.where(x >= 0, torch.expm1(x.clamp(min=0)), -torch.expm1((-x).clamp(min=0)))


def preprocess_image(obs: torch.Tensor) -> torch.Tensor:
    """Turn stored uint8 images, channels last, into float images, channels first, in ``[-0.5, 0.5]``.

    ``out = obs / 255 - 0.5``, with the last three dimensions moved from ``(H, W, C)`` to ``(C, H, W)``.

    Args:
        obs: ``(..., H, W, C)`` ``torch.uint8`` tensor (as Gymnasium gives images).

    Returns:
        ``(..., C, H, W)`` ``torch.float32`` tensor on the same device.

    Raises:
        HierosError: If ``obs`` is not uint8 or has fewer than three dimensions.

    Examples:
        >>> import torch
        >>> obs = torch.full((2, 64, 64, 3), 255, dtype=torch.uint8)
        >>> x = preprocess_image(obs)
        >>> tuple(x.shape), x.dtype, x.max().item()
        ((2, 3, 64, 64), torch.float32, 0.5)
    """
    check(isinstance(obs, torch.Tensor), "obs", "a torch.Tensor", got=type(obs).__name__)
    check(obs.dtype == torch.uint8, "obs", "a torch.uint8 tensor of shape (..., H, W, C)", got=obs.dtype)
    check(obs.dim() >= 3, "obs", "a tensor of shape (..., H, W, C)", got=tuple(obs.shape))
    return obs.movedim(-1, -3).to(torch.float32) / 255.0 - 0.5
