"""Convolutional image encoder and decoder in the style of DreamerV3."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check, check_int

__all__ = ["ImageDecoder", "ImageEncoder"]


class _ChannelNorm(nn.Module):
    """LayerNorm over the channel dimension of a ``(N, C, H, W)`` tensor."""

    def __init__(self, channels: int, **factory: Any) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return out


def _num_stages(image_size: int, min_resolution: int) -> int:
    check_int(image_size, "image_size", minimum=1)
    check_int(min_resolution, "min_resolution", minimum=1)
    ratio = image_size // min_resolution
    stages = round(math.log2(ratio)) if ratio >= 1 else 0
    check(
        image_size % min_resolution == 0 and ratio >= 2 and 2**stages == ratio,
        "image_size", f"min_resolution={min_resolution} times a power of two (at least 2)", got=image_size,
    )
    return stages


class ImageEncoder(nn.Module):
    """Stride-2 convolutions with channel LayerNorm and SiLU, down to ``min_resolution``, then flatten.

    Stage ``i`` (``i = 0 .. n - 1`` with ``n = log2(image_size / min_resolution)``) is a
    ``Conv2d(kernel 4, stride 2, padding 1)`` to ``depth * 2**i`` channels, a LayerNorm over channels and
    SiLU, halving the resolution. The output has ``out_dim = depth * 2**(n-1) * min_resolution**2``
    features (4096 for the defaults).

    Args:
        in_channels: Channels ``C`` of the input image.
        depth: Channels of the first stage; doubled at each further stage.
        image_size: Height and width ``H = W`` of the input.
        min_resolution: Height and width after the last stage.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        HierosError: If ``image_size / min_resolution`` is not a power of two at least 2, or a size is not
            positive.

    Examples:
        >>> import torch
        >>> enc = ImageEncoder(depth=4)
        >>> enc(torch.zeros(2, 5, 3, 64, 64)).shape, enc.out_dim
        (torch.Size([2, 5, 512]), 512)
    """

    out_dim: int

    def __init__(
        self,
        *,
        in_channels: int = 3,
        depth: int = 32,
        image_size: int = 64,
        min_resolution: int = 4,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", minimum=1)
        check_int(depth, "depth", minimum=1)
        stages = _num_stages(image_size, min_resolution)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(stages):
            out = depth * 2**i
            layers += [
                nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=False, **factory),
                _ChannelNorm(out, **factory),
                nn.SiLU(),
            ]
            channels = out
        self.net = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.image_size = image_size
        self.out_dim = channels * min_resolution**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            x: ``(..., C, H, W)`` float images, e.g. from :func:`preprocess_image`.

        Returns:
            ``(..., out_dim)`` features.

        Raises:
            HierosError: If ``x`` is not floating point or its last three dimensions are not
                ``(in_channels, image_size, image_size)``.
        """
        expected = (self.in_channels, self.image_size, self.image_size)
        check(x.is_floating_point(), "x", "a floating-point image tensor (use preprocess_image)", got=x.dtype)
        check(x.dim() >= 3 and tuple(x.shape[-3:]) == expected, "x",
              f"a tensor of shape (..., {expected[0]}, {expected[1]}, {expected[2]})", got=tuple(x.shape))
        lead = x.shape[:-3]
        y: torch.Tensor = self.net(x.reshape(-1, *expected))
        return y.reshape(*lead, self.out_dim)


class ImageDecoder(nn.Module):
    """The mirror of :class:`ImageEncoder`: a linear layer to ``min_resolution`` and transposed convs.

    A ``Linear`` maps the input to ``depth * 2**(n-1)`` channels at ``min_resolution``; ``n - 1`` stages
    of ``ConvTranspose2d(kernel 4, stride 2, padding 1)`` with channel LayerNorm and SiLU halve the
    channels and double the resolution; a last transposed conv (with bias, no norm) gives the
    ``out_channels`` mean image at ``image_size``, in the preprocessed space of
    :func:`preprocess_image`.

    Args:
        in_dim: Size of the input features.
        out_channels: Channels ``C`` of the output image.
        depth: Channels of the encoder's first stage (the decoder's last hidden stage).
        image_size: Height and width of the output.
        min_resolution: Height and width after the linear layer.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        HierosError: On invalid sizes, as for :class:`ImageEncoder`.

    Examples:
        >>> import torch
        >>> dec = ImageDecoder(10, depth=4)
        >>> dec(torch.zeros(2, 5, 10)).shape
        torch.Size([2, 5, 3, 64, 64])
    """

    def __init__(
        self,
        in_dim: int,
        *,
        out_channels: int = 3,
        depth: int = 32,
        image_size: int = 64,
        min_resolution: int = 4,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int(in_dim, "in_dim", minimum=1)
        check_int(out_channels, "out_channels", minimum=1)
        check_int(depth, "depth", minimum=1)
        stages = _num_stages(image_size, min_resolution)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        channels = depth * 2 ** (stages - 1)
        self.linear = nn.Linear(in_dim, channels * min_resolution**2, **factory)
        layers: list[nn.Module] = []
        for i in reversed(range(stages - 1)):
            out = depth * 2**i
            layers += [
                nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=False, **factory),
                _ChannelNorm(out, **factory),
                nn.SiLU(),
            ]
            channels = out
        layers.append(nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1, **factory))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_channels = out_channels
        self.image_size = image_size
        self._start = (depth * 2 ** (stages - 1), min_resolution, min_resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decode features to mean images.

        Args:
            x: ``(..., in_dim)`` features.

        Returns:
            ``(..., C, H, W)`` mean images.

        Raises:
            HierosError: If the last dimension of ``x`` is not ``in_dim``.
        """
        check(x.dim() >= 1 and x.shape[-1] == self.in_dim, "x", f"a tensor of shape (..., {self.in_dim})",
              got=tuple(x.shape))
        lead = x.shape[:-1]
        h = self.linear(x.reshape(-1, self.in_dim)).reshape(-1, *self._start)
        y: torch.Tensor = self.net(h)
        return y.reshape(*lead, self.out_channels, self.image_size, self.image_size)
