"""Subgoal autoencoder: shapes, the KL closed form, the loss by hand, learning and gradient isolation."""

from __future__ import annotations

import math

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.hrl import SubgoalAutoencoder, novelty_reward
from hieros_lib.nn import categorical_kl, symlog, unimix_logits


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
    u = torch.rand(9, 8, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    cdf = p.cumsum(-1)
    sample = torch.nn.functional.one_hot((cdf < u * cdf[..., -1:]).sum(-1), 8).double()  # inverse CDF
    diff = ae.decoder(sample.flatten(-2)) - h
    variance = h.var(0, unbiased=False)  # the first batch sets the variance
    recon = (diff**2 / (2 * variance)).sum(-1)
    assert metrics["recon"].item() == pytest.approx(recon.mean().item(), rel=1e-10)
    assert metrics["error"].item() == pytest.approx(diff.norm(dim=-1).mean().item(), rel=1e-10)
    assert loss.item() == pytest.approx((recon + 0.5 * kl).mean().item(), rel=1e-10)
    # later batches move the variance by the EMA rate (0.01)
    h2 = torch.randn(9, 6, dtype=torch.float64)
    ae.loss(h2)
    torch.testing.assert_close(ae.h_variance, 0.99 * variance + 0.01 * h2.var(0, unbiased=False))


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


def train_on_clusters(
    scale: float, *, steps: int = 1200, seed: int = 0
) -> tuple[SubgoalAutoencoder, torch.Tensor]:
    """64 clusters in R^64 with centres of norm ``scale`` (noise 5% of it), Adam lr 1e-3."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(64, 64, generator=gen)
    centers = scale * centers / centers.norm(dim=-1, keepdim=True)
    torch.manual_seed(seed)
    ae = SubgoalAutoencoder(64, hidden=128)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(0, 64, (128,), generator=gen)
        h = centers[idx] + 0.05 * scale / 8 * torch.randn(128, 64, generator=gen)
        loss, _ = ae.loss(h, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ae, centers


@pytest.mark.parametrize("scale", [10.0, 0.85])
def test_the_codes_carry_the_cluster_at_any_scale(scale: float) -> None:
    """Equation 5 with the plain Euclidean error collapses to a uniform encoder (no better than the mean,
    KL 0); measured relative to the spread of h the codes identify the clusters, at the norm of a
    clustered toy (10) and at the norm of a fresh S5WM's h (0.85)."""
    ae, centers = train_on_clusters(scale)
    with torch.no_grad():
        error = (ae.reconstruct(centers) - centers).norm(dim=-1).mean()
        mean_error = (centers - centers.mean(0)).norm(dim=-1).mean()
        logits = ae.logits(centers)
        kl = categorical_kl(logits, torch.zeros_like(logits)).mean()
        codes = {tuple(c.tolist()) for c in ae.encode(centers, sample=False).argmax(-1)}
    assert error < 0.35 * mean_error, (error, mean_error)
    assert kl > math.log(64) - 0.5  # at least the ~4.2 nats that name one of 64 clusters
    assert len(codes) >= 48  # nearly every cluster gets its own code
    familiar = novelty_reward(centers, ae).mean()
    unfamiliar = novelty_reward(scale * torch.randn(64, 64) / 8, ae).mean()
    assert familiar < 0.5 * unfamiliar


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


def test_the_standardized_space_tracks_the_mean_and_is_what_the_encoder_reads() -> None:
    """h with one large component shared by every state (as a world model's h can have): standardised by
    the running mean and deviation, the encoder's input is the differences between states."""
    gen = torch.Generator().manual_seed(0)
    offset = 10.0 * torch.randn(32, generator=gen)
    centers = offset + 0.3 * torch.randn(16, 32, generator=gen)
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(32, hidden=64, standardize=True)
    assert "h_mean" in ae.state_dict() and "h_mean" not in SubgoalAutoencoder(32).state_dict()
    with pytest.raises(HierosError, match="standardize=True"):
        SubgoalAutoencoder(32).standardized(centers)
    batch = centers[torch.randint(0, 16, (256,), generator=gen)]
    mean, variance = ae.mean_step(batch), ae.variance_step(batch)
    assert torch.allclose(mean, batch.mean(0)) and torch.equal(ae.h_mean, torch.zeros(32))  # not yet set
    ae.commit_mean(mean)
    ae.commit_variance(variance)
    standardized = ae.standardized(batch)
    assert standardized.mean(0).abs().max() < 1e-4
    assert (standardized.var(0, unbiased=False) - 1).abs().max() < 1e-3
    # the next batch moves the EMAs by variance_rate
    assert torch.allclose(ae.mean_step(batch + 1.0), mean + ae.variance_rate)
    # the encoder reads the standardised h, not symlog(h)
    with torch.no_grad():
        raw = ae.encoder(ae.standardized(centers)).unflatten(-1, (8, 8))
        assert torch.allclose(ae.logits(centers), unimix_logits(raw, ae.unimix))


def test_the_adaptive_kl_weight_follows_its_target_and_weights_the_loss() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16, kl_target=10.0)
    assert "kl_scale" in ae.state_dict() and "kl_scale" not in SubgoalAutoencoder(6).state_dict()
    assert float(ae.kl_weight) == 1.0  # Director starts at 1
    ae.adapt_kl(torch.tensor(12.0))  # above 1.1 x 10: up, but never above 1
    assert float(ae.kl_weight) == 1.0
    for _ in range(3):
        ae.adapt_kl(torch.tensor(5.0))  # below 10 / 1.1: down by 1.1 each time
    assert float(ae.kl_weight) == pytest.approx(1.1**-3)
    ae.adapt_kl(torch.tensor(10.5))  # inside the band: unchanged
    assert float(ae.kl_weight) == pytest.approx(1.1**-3)
    ae.adapt_kl(torch.tensor(11.5))
    assert float(ae.kl_weight) == pytest.approx(1.1**-2)
    for _ in range(300):
        ae.adapt_kl(torch.tensor(0.0))
    assert float(ae.kl_weight) == pytest.approx(1e-5)  # the floor
    h = torch.randn(8, 6)
    loss, metrics = ae.loss(h, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, metrics["recon"] + 1e-5 * metrics["kl"])
    fixed = SubgoalAutoencoder(6, hidden=16, beta=0.5)
    SubgoalAutoencoder(6, hidden=16).adapt_kl(torch.tensor(0.0))  # without a target: nothing to adapt
    loss, metrics = fixed.loss(h, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, metrics["recon"] + 0.5 * metrics["kl"])
    with pytest.raises(HierosError, match="kl_target"):
        SubgoalAutoencoder(6, kl_target=0.0)
