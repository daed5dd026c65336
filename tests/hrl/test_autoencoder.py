"""Subgoal autoencoder: shapes, the KL closed form, the loss by hand, learning and gradient isolation."""

from __future__ import annotations

import math

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.hrl import SubgoalAutoencoder, novelty_reward
from hieros_lib.nn import symlog


def test_shapes_and_onehot() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(10, groups=4, classes=5, hidden=16)
    h = torch.randn(3, 7, 10)
    g = ae.encode(h, generator=torch.Generator().manual_seed(0))
    assert g.shape == (3, 7, 4, 5)
    torch.testing.assert_close(g.detach().sum(-1), torch.ones(3, 7, 4))
    mode = ae.encode(h, sample=False)
    torch.testing.assert_close(mode.detach().argmax(-1), ae.logits(h).argmax(-1))
    assert ae.decode(g).shape == (3, 7, 10) and ae.reconstruct(h).shape == (3, 7, 10)
    with pytest.raises(HierosError, match="h"):
        ae.encode(torch.randn(3, 9))
    with pytest.raises(HierosError, match="subgoal"):
        ae.decode(torch.zeros(3, 5, 4))


def _hand_probs(ae: SubgoalAutoencoder, h: torch.Tensor) -> torch.Tensor:
    raw = ae.encoder(symlog(h)).reshape(*h.shape[:-1], ae.groups, ae.classes)
    return (1 - ae.unimix) * torch.softmax(raw, -1) + ae.unimix / ae.classes


def test_loss_and_kl_closed_form_for_a_uniform_prior() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16, beta=0.5).double()
    h = torch.randn(9, 6, dtype=torch.float64) * 3
    loss, metrics = ae.loss(h, generator=torch.Generator().manual_seed(7))
    p = _hand_probs(ae, h)
    kl = (math.log(8) + (p * p.log()).sum(-1)).sum(-1)  # sum over groups of log K - H(p_group)
    assert metrics["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-10)
    assert metrics["entropy"].item() == pytest.approx(-(p * p.log()).sum((-2, -1)).mean().item(), rel=1e-10)
    # the same sampled subgoal, decoded by hand
    sample = torch.nn.functional.one_hot(
        torch.multinomial(p.reshape(-1, 8), 1, generator=torch.Generator().manual_seed(7)).reshape(9, 8), 8
    ).double()
    recon = (ae.decoder(sample.flatten(-2)) - h).norm(dim=-1)
    assert metrics["recon"].item() == pytest.approx(recon.mean().item(), rel=1e-10)
    assert loss.item() == pytest.approx((recon + 0.5 * kl).mean().item(), rel=1e-10)


def test_kl_limits_uniform_and_peaked() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16).double()
    last = ae.encoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    h = torch.randn(4, 6, dtype=torch.float64)
    assert ae.loss(h)[1]["kl"].item() == pytest.approx(0.0, abs=1e-12)  # uniform encoder
    with torch.no_grad():
        last.bias.copy_(torch.tensor([1e3, 0, 0, 0, 0, 0, 0, 0] * 8))  # one class per group
    top, rest = 0.99 + 0.01 / 8, 0.01 / 8
    per_group = top * math.log(top * 8) + 7 * rest * math.log(rest * 8)
    assert ae.loss(h)[1]["kl"].item() == pytest.approx(8 * per_group, rel=1e-9)


def test_learns_to_reconstruct_clustered_states() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 32, generator=gen) * 2

    def batch(n: int) -> torch.Tensor:
        return centers[torch.randint(0, 4, (n,), generator=gen)] + 0.05 * torch.randn(n, 32, generator=gen)

    ae = SubgoalAutoencoder(32, hidden=64)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = ae.loss(batch(64), generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert end < 0.35 * start, (start, end)
    # each cluster is reconstructed (through the mode), and points far from the data look novel
    recon = ae.reconstruct(centers).detach()
    assert ((recon - centers).norm(dim=-1) < 0.2 * centers.norm(dim=-1)).all()
    familiar = novelty_reward(batch(64), ae).mean()
    unfamiliar = novelty_reward(torch.randn(64, 32, generator=gen) * 2, ae).mean()
    assert familiar < 0.2 * unfamiliar


def test_loss_gradients_reach_the_autoencoder_only() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16)
    h = torch.randn(8, 6, requires_grad=True)
    loss, metrics = ae.loss(h)
    assert all(not v.requires_grad for v in metrics.values())
    loss.backward()
    assert h.grad is None  # the world model that produced h is not trained by this loss
    for name, p in ae.named_parameters():  # the encoder learns through the straight-through sample
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    loss, _ = ae.loss(h, detach_input=False)
    loss.backward()
    assert h.grad is not None and h.grad.abs().sum() > 0


def test_validation() -> None:
    with pytest.raises(HierosError, match="beta"):
        SubgoalAutoencoder(4, beta=-1.0)
    with pytest.raises(HierosError, match="groups"):
        SubgoalAutoencoder(4, groups=0)
    with pytest.raises(HierosError, match="h"):
        SubgoalAutoencoder(4).loss(torch.zeros(0, 4))


def test_state_dict_round_trip_and_seeded_loss() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16)
    torch.manual_seed(1)
    other = SubgoalAutoencoder(6, hidden=16)
    other.load_state_dict(ae.state_dict())
    h = torch.randn(4, 6)
    a, _ = ae.loss(h, generator=torch.Generator().manual_seed(3))
    b, _ = other.loss(h, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()
