"""Image encoder / decoder: stage layout, channel LayerNorm, shapes and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hieros_lib.errors import HierosError
from hieros_lib.nn import ImageDecoder, ImageEncoder, preprocess_image


def _stage_outputs(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Inputs of every SiLU, i.e. the normalised output of every hidden stage."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].detach()))
             for m in module.modules() if isinstance(m, nn.SiLU)]
    module(x)
    for h in hooks:
        h.remove()
    return seen


def test_encoder_stages_and_channel_norm() -> None:
    torch.manual_seed(0)
    enc = ImageEncoder(depth=4)
    assert enc.out_dim == 32 * 4 * 4
    x = torch.randn(2, 3, 64, 64)
    stages = _stage_outputs(enc, x)
    assert [tuple(s.shape[1:]) for s in stages] == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (32, 4, 4)]
    for s in stages:  # LayerNorm over channels: every pixel has zero mean, unit variance over channels
        torch.testing.assert_close(s.mean(1), torch.zeros_like(s.mean(1)), atol=1e-5, rtol=0)
        var = s.var(1, unbiased=False)  # var / (var + eps) of the raw activations: at most 1, mostly ~1
        assert var.max().item() <= 1 + 1e-4 and var.median().item() > 0.99
    torch.testing.assert_close(enc(x), nn.functional.silu(stages[-1]).flatten(1))


def test_encoder_other_sizes_and_leading_dims() -> None:
    enc = ImageEncoder(in_channels=1, depth=2, image_size=32, min_resolution=8)
    assert enc.out_dim == 4 * 8 * 8
    x = torch.randn(2, 3, 1, 32, 32)
    y = enc(x)
    assert y.shape == (2, 3, enc.out_dim)
    torch.testing.assert_close(y[1, 2], enc(x[1, 2]))  # per-image, no mixing across the batch


def test_decoder_mirrors_encoder() -> None:
    torch.manual_seed(0)
    dec = ImageDecoder(10, depth=4)
    z = torch.randn(2, 5, 10)
    stages = _stage_outputs(dec, z)
    assert [tuple(s.shape[1:]) for s in stages] == [(16, 8, 8), (8, 16, 16), (4, 32, 32)]
    out = dec(z)
    assert out.shape == (2, 5, 3, 64, 64)
    torch.testing.assert_close(out[1, 3], dec(z[1, 3]))


def test_encoder_decoder_gradients() -> None:
    torch.manual_seed(0)
    enc, dec = ImageEncoder(depth=2), ImageDecoder(64, depth=2)
    head = nn.Linear(enc.out_dim, 64)
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (4, 4, 4, 3), generator=gen, dtype=torch.uint8)  # 16x16 blocks
    img = preprocess_image(blocks.repeat_interleave(16, 1).repeat_interleave(16, 2))
    img = img.requires_grad_(True)
    loss = (dec(head(enc(img))) - img.detach()).square().sum((-3, -2, -1)).mean()
    loss.backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    for module in (enc, dec):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_validation() -> None:
    enc = ImageEncoder(depth=2)
    with pytest.raises(HierosError, match="x"):
        enc(torch.zeros(2, 64, 64, 3))  # channels last
    with pytest.raises(HierosError, match="x"):
        enc(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(HierosError, match="image_size"):
        ImageEncoder(image_size=48)
    with pytest.raises(HierosError, match="x"):
        ImageDecoder(8, depth=2)(torch.zeros(2, 7))


def test_factory_dtype() -> None:
    enc = ImageEncoder(depth=2, image_size=16, dtype=torch.float64)
    dec = ImageDecoder(8, depth=2, image_size=16, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in [*enc.parameters(), *dec.parameters()])
    assert dec(torch.zeros(1, 8, dtype=torch.float64)).dtype == torch.float64
    assert enc(torch.zeros(1, 3, 16, 16, dtype=torch.float64)).shape == (1, enc.out_dim)
