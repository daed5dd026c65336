"""symlog / symexp and image preprocessing against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_lib.errors import HierosError
from hieros_lib.nn import preprocess_image, symexp, symlog


def test_symlog_hand_values() -> None:
    x = torch.tensor([-(math.e**2 - 1), -(math.e - 1), 0.0, math.e - 1, math.e**3 - 1], dtype=torch.float64)
    torch.testing.assert_close(symlog(x), torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(symexp(torch.tensor([-2.0, 0.0, 1.0], dtype=torch.float64)),
                               torch.tensor([-(math.e**2 - 1), 0.0, math.e - 1], dtype=torch.float64))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20))
def test_symexp_inverts_symlog(values: list[float]) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(symlog(symexp(symlog(x))), symlog(x))


def test_symlog_is_identity_near_zero() -> None:
    x = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(symlog(x).sum(), x)
    assert grad.item() == pytest.approx(1.0)
    (grad,) = torch.autograd.grad(symexp(x).sum(), x)
    assert grad.item() == pytest.approx(1.0)
    x = torch.tensor([-3.0, 2.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(symlog(x).sum(), x)
    torch.testing.assert_close(grad, torch.tensor([0.25, 1 / 3], dtype=torch.float64))


def test_preprocess_image_values_and_layout() -> None:
    gen = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (2, 3, 5, 4, 3), generator=gen, dtype=torch.uint8)
    out = preprocess_image(obs)
    assert out.shape == (2, 3, 3, 5, 4) and out.dtype == torch.float32
    # pixel (h=1, w=2, c=0) of item (1, 2) moves to (c=0, h=1, w=2)
    assert out[1, 2, 0, 1, 2].item() == pytest.approx(obs[1, 2, 1, 2, 0].item() / 255 - 0.5)
    assert preprocess_image(torch.zeros(1, 1, 1, dtype=torch.uint8)).item() == -0.5
    assert preprocess_image(torch.full((1, 1, 1), 255, dtype=torch.uint8)).item() == 0.5
    assert preprocess_image(torch.full((1, 1, 1), 51, dtype=torch.uint8)).item() == pytest.approx(-0.3)


def test_preprocess_image_rejects_bad_input() -> None:
    with pytest.raises(HierosError, match="obs"):
        preprocess_image(torch.zeros(4, 4, 3))
    with pytest.raises(HierosError, match="obs"):
        preprocess_image(torch.zeros(4, 3, dtype=torch.uint8))
