"""Two-hot head: encoding by hand, round trip through the bins, loss and mean."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_lib.errors import HierosError
from hieros_lib.nn import TwoHot, symexp, symlog


def test_default_bins() -> None:
    head = TwoHot()
    assert head.bins.shape == (255,)
    assert head.bins[0].item() == -20.0 and head.bins[-1].item() == 20.0
    assert abs(head.bins[127].item()) < 1e-12
    assert (head.bins[1] - head.bins[0]).item() == pytest.approx(40 / 254)


def test_encode_by_hand() -> None:
    head = TwoHot(num_bins=5, low=-2.0, high=2.0)  # bins -2, -1, 0, 1, 2
    y = symexp(torch.tensor([0.25, -1.5, 1.0, 7.0, -7.0, 2.0], dtype=torch.float64))
    want = torch.tensor(
        [
            [0, 0, 0.75, 0.25, 0],  # 0.25 lies between bins 0 and 1
            [0.5, 0.5, 0, 0, 0],  # -1.5 halfway between -2 and -1
            [0, 0, 0, 1, 0],  # exactly on a bin
            [0, 0, 0, 0, 1],  # clipped to the top bin
            [1, 0, 0, 0, 0],  # clipped to the bottom bin
            [0, 0, 0, 0, 1],  # exactly the top bin
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(head.encode(y), want)


@given(st.lists(st.floats(-4e8, 4e8), min_size=1, max_size=30))
def test_encode_round_trip(values: list[float]) -> None:
    head = TwoHot()
    y = torch.tensor(values, dtype=torch.float64)
    w = head.encode(y)
    assert (w >= 0).all() and ((w > 0).sum(-1) <= 2).all()
    torch.testing.assert_close(w.sum(-1), torch.ones_like(y))
    bins = torch.linspace(-20, 20, 255, dtype=torch.float64)
    torch.testing.assert_close((w * bins).sum(-1), symlog(y), rtol=1e-9, atol=1e-9)
    # a head whose softmax is exactly the two-hot predicts y back
    logits = torch.log(w.clamp_min(1e-300))
    torch.testing.assert_close(head.mean(logits), y, rtol=1e-7, atol=1e-7)


def test_mean_of_hand_distribution() -> None:
    head = TwoHot(num_bins=5, low=-2.0, high=2.0)
    probs = torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2], dtype=torch.float64)
    expected = 0.1 * -2 + 0.2 * -1 + 0.2 * 1 + 0.2 * 2
    assert head.mean(probs.log()).item() == pytest.approx(math.copysign(math.expm1(abs(expected)), expected))
    assert TwoHot().mean(torch.zeros(255)).abs().item() < 1e-5  # symmetric bins, uniform head


def test_loss_is_cross_entropy_with_two_hot_target() -> None:
    head = TwoHot(num_bins=5, low=-2.0, high=2.0)
    logits = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logits.requires_grad_(True)
    y = symexp(torch.tensor([[0.25, -1.5, 1.0, 0.0]] * 3, dtype=torch.float64)).requires_grad_(True)
    loss = head.loss(logits, y)
    assert loss.shape == (3, 4)
    logp = torch.log_softmax(logits, -1)
    # y = symexp(0.25): 0.75 on bin 2, 0.25 on bin 3
    assert loss[0, 0].item() == pytest.approx(-(0.75 * logp[0, 0, 2] + 0.25 * logp[0, 0, 3]).item())
    assert loss[1, 2].item() == pytest.approx(-logp[1, 2, 3].item())
    (g_logits,) = torch.autograd.grad(loss.sum(), logits)
    # gradient of cross-entropy w.r.t. logits: softmax - target; y is a constant target
    torch.testing.assert_close(g_logits, torch.softmax(logits, -1) - head.encode(y.detach()))
    assert not head.loss(logits.detach(), y).requires_grad


def test_validation() -> None:
    head = TwoHot()
    with pytest.raises(HierosError, match="logits"):
        head.mean(torch.zeros(3, 254))
    with pytest.raises(HierosError, match="y"):
        head.loss(torch.zeros(3, 255), torch.zeros(4))
    with pytest.raises(HierosError, match="num_bins"):
        TwoHot(num_bins=1)
