"""The observation codec every world model builds: the config fields, the encoder and the decoder.

Images ``(H, W, C)`` uint8 go through the convolutional :class:`~hieros_lib.nn.ImageEncoder` /
:class:`~hieros_lib.nn.ImageDecoder` (pixels scaled to ``[-0.5, 0.5]``, squared-error reconstruction);
float vectors ``(D,)`` through the MLP :class:`~hieros_lib.nn.VectorEncoder` /
:class:`~hieros_lib.nn.VectorDecoder` (inputs and targets in ``symlog`` space). A model keeps the two
modules as its own ``encoder`` and ``decoder`` attributes and calls the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check_int
from hieros_lib.nn import (
    ImageDecoder,
    ImageEncoder,
    VectorDecoder,
    VectorEncoder,
    image_mse,
    preprocess_image,
    symexp,
    symlog_mse,
)

__all__: list[str] = []


@dataclass(frozen=True, kw_only=True)
class ObservationConfig:
    """The observation fields of every world model's config (S5WM, RSSM, TWM).

    Observations are images ``(image_size, image_size, channels)`` unless ``vector_dim`` is set, in which
    case they are float vectors ``(vector_dim,)``, read by an MLP encoder of ``vector_layers`` layers of
    ``vector_units`` (inputs in symlog space) and reconstructed in symlog space. ``depth`` (channels of
    the first convolutional stage, doubled each stage) and ``min_resolution`` (the resolution after the
    last stage) size the image encoder and decoder.
    """

    image_size: int = 64
    channels: int = 3
    vector_dim: int | None = None
    vector_units: int = 512
    vector_layers: int = 2
    depth: int = 32
    min_resolution: int = 4

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """``(vector_dim,)`` for vector observations, else ``(image_size, image_size, channels)``."""
        if self.vector_dim:
            return (self.vector_dim,)
        return (self.image_size, self.image_size, self.channels)

    def __post_init__(self) -> None:
        if self.vector_dim is not None:
            check_int(self.vector_dim, "vector_dim", minimum=1)
        check_int(self.vector_layers, "vector_layers", minimum=0)
        for name in ("image_size", "channels", "depth", "min_resolution", "vector_units"):
            check_int(getattr(self, name), name, minimum=1)


def build_codec(
    config: ObservationConfig, decoder_input: int, **factory: Any
) -> tuple[ImageEncoder | VectorEncoder, ImageDecoder | VectorDecoder]:
    """The encoder and the decoder (reading ``decoder_input`` features) for ``config``'s observations."""
    if config.vector_dim:
        units, layers = config.vector_units, config.vector_layers
        encoder: ImageEncoder | VectorEncoder = VectorEncoder(
            config.vector_dim, units, hidden=units, layers=layers, **factory
        )
        decoder: ImageDecoder | VectorDecoder = VectorDecoder(
            decoder_input, config.vector_dim, hidden=units, layers=layers, **factory
        )
        return encoder, decoder
    encoder = ImageEncoder(
        in_channels=config.channels,
        depth=config.depth,
        image_size=config.image_size,
        min_resolution=config.min_resolution,
        **factory,
    )
    decoder = ImageDecoder(
        decoder_input,
        out_channels=config.channels,
        depth=config.depth,
        image_size=config.image_size,
        min_resolution=config.min_resolution,
        **factory,
    )
    return encoder, decoder


def encode_observation(
    encoder: nn.Module, obs: torch.Tensor, *, vector: bool, dtype: torch.dtype
) -> torch.Tensor:
    """uint8 ``(..., H, W, C)`` images or float ``(..., D)`` vectors -> the embedding ``(..., E)``."""
    out: torch.Tensor = encoder(obs.to(dtype) if vector else preprocess_image(obs).to(dtype))
    return out


def observation_nll(
    decoder: nn.Module, inputs: torch.Tensor, obs: torch.Tensor, *, vector: bool
) -> torch.Tensor:
    """Reconstruction error per step: the squared error summed over the image (pixels in the encoder's
    scale), or over the vector in symlog space."""
    recon = decoder(inputs)
    if vector:
        return symlog_mse(recon, obs)
    target = preprocess_image(obs).to(torch.promote_types(recon.dtype, torch.float32))  # no bf16 targets
    return image_mse(recon, target)


def decode_observation(decoder: nn.Module, inputs: torch.Tensor, *, vector: bool) -> torch.Tensor:
    """The decoder's mean in observation space: an image, float ``(..., H, W, C)`` clamped to ``[0, 1]``,
    or a vector ``(..., D)`` (``symexp`` of the symlog prediction)."""
    out: torch.Tensor = decoder(inputs)
    if vector:
        return symexp(out)
    return (out + 0.5).clamp(0.0, 1.0).movedim(-3, -1)
