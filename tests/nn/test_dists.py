"""Categorical latents, KL terms and likelihoods against closed forms and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import entropy as scipy_entropy

from hieros_lib.errors import HierosError
from hieros_lib.nn import (
    bernoulli_nll,
    categorical_entropy,
    categorical_kl,
    image_mse,
    kl_balance_loss,
    sample_onehot,
    unimix_logits,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- unimix


def test_unimix_closed_form_and_floor() -> None:
    logits = torch.randn(3, 32, 32, generator=_gen(), dtype=torch.float64) * 30  # very peaked
    u, K = 0.01, 32
    probs = unimix_logits(logits, u).exp()
    torch.testing.assert_close(probs, 0.99 * torch.softmax(logits, -1) + u / K)
    assert probs.min().item() >= u / K * (1 - 1e-9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 32, dtype=torch.float64))
    # a one-hot-like categorical gets exactly (1 - u) + u / K on its class and u / K elsewhere
    peaked = unimix_logits(torch.tensor([1e4, 0.0, 0.0, 0.0], dtype=torch.float64), 0.04).exp()
    torch.testing.assert_close(peaked, torch.tensor([0.97, 0.01, 0.01, 0.01], dtype=torch.float64))


def test_unimix_zero_is_log_softmax_and_validation() -> None:
    logits = torch.randn(4, 5, generator=_gen())
    torch.testing.assert_close(unimix_logits(logits, 0.0), torch.log_softmax(logits, -1))
    with pytest.raises(HierosError, match="unimix"):
        unimix_logits(logits, 1.5)


# ----------------------------------------------------------------------------- sampling


def test_sample_is_onehot_and_seeded() -> None:
    logits = torch.randn(5, 32, 32, generator=_gen())
    s = sample_onehot(logits, generator=_gen(1))
    assert s.shape == logits.shape and s.dtype == logits.dtype
    assert set(s.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(s.detach().sum(-1), torch.ones(5, 32))
    torch.testing.assert_close(s, sample_onehot(logits, generator=_gen(1)))


def test_sample_frequencies_follow_probs() -> None:
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = probs.log().expand(20000, 4)
    counts = sample_onehot(logits, generator=_gen(3)).detach().sum(0) / 20000
    # binomial standard error is below 0.0035; 5 sigma
    torch.testing.assert_close(counts, probs, atol=0.018, rtol=0)


def test_straight_through_gradient_equals_probs_gradient() -> None:
    logits = torch.randn(3, 4, 6, generator=_gen(), dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, 4, 6, generator=_gen(1), dtype=torch.float64)
    (got,) = torch.autograd.grad((sample_onehot(logits, generator=_gen(2)) * upstream).sum(), logits)
    (want,) = torch.autograd.grad((torch.softmax(logits, -1) * upstream).sum(), logits)
    torch.testing.assert_close(got, want)
    assert got.abs().sum() > 0


# ----------------------------------------------------------------------------- entropy and KL


def test_entropy_hand_values() -> None:
    assert categorical_entropy(torch.zeros(7, dtype=torch.float64)).item() == pytest.approx(math.log(7))
    p = torch.tensor([0.25, 0.75], dtype=torch.float64)
    want = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert categorical_entropy(p.log() + 3.0).item() == pytest.approx(want)
    assert categorical_entropy(torch.randn(2, 3, 5)).shape == (2, 3)  # only the last dim is reduced


def test_kl_closed_form_summed_over_groups() -> None:
    lhs = torch.randn(2, 3, 4, 5, generator=_gen(), dtype=torch.float64)
    rhs = torch.randn(2, 3, 4, 5, generator=_gen(1), dtype=torch.float64)
    got = categorical_kl(lhs, rhs)
    assert got.shape == (2, 3)
    p, q = torch.softmax(lhs, -1).numpy(), torch.softmax(rhs, -1).numpy()
    for b in range(2):
        for t in range(3):
            want = sum(scipy_entropy(p[b, t, g], q[b, t, g]) for g in range(4))
            assert got[b, t].item() == pytest.approx(want, rel=1e-10)
    # hand value: KL([0.5, 0.5] || [0.9, 0.1])
    hand = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl = categorical_kl(torch.tensor([[0.5, 0.5]]).log(), torch.tensor([[0.9, 0.1]]).log())
    assert kl.item() == pytest.approx(hand, rel=1e-5)
    assert categorical_kl(lhs, lhs + 7.0).abs().max().item() < 1e-12  # logit shifts do not matter


def test_kl_rejects_mismatched_shapes() -> None:
    with pytest.raises(HierosError, match="rhs_logits"):
        categorical_kl(torch.zeros(2, 4, 5), torch.zeros(2, 4, 6))
    with pytest.raises(HierosError, match="lhs_logits"):
        categorical_kl(torch.zeros(5), torch.zeros(5))


# ----------------------------------------------------------------------------- KL balance and free bits


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Plain KL(p || q) summed over groups, written out independently."""
    p = torch.softmax(p_logits, -1)
    return (p * (p.log() - torch.softmax(q_logits, -1).log())).sum((-2, -1))


def test_kl_balance_values_above_free_bits() -> None:
    post = torch.randn(4, 8, 6, generator=_gen(), dtype=torch.float64) * 3
    prior = torch.randn(4, 8, 6, generator=_gen(1), dtype=torch.float64) * 3
    kl = _kl(post, prior)
    assert kl.min().item() > 1.0  # the test needs every KL above the free bits
    loss, dyn, rep = kl_balance_loss(post, prior, free_bits=1.0, dyn_scale=0.5, rep_scale=0.1)
    torch.testing.assert_close(dyn, kl)
    torch.testing.assert_close(rep, kl)
    torch.testing.assert_close(loss, 0.6 * kl)


def test_kl_balance_gradients_follow_the_stop_gradients() -> None:
    post = (torch.randn(4, 8, 6, generator=_gen(), dtype=torch.float64) * 3).requires_grad_(True)
    prior = (torch.randn(4, 8, 6, generator=_gen(1), dtype=torch.float64) * 3).requires_grad_(True)
    loss, _, _ = kl_balance_loss(post, prior, free_bits=1.0, dyn_scale=0.5, rep_scale=0.1)
    g_post, g_prior = torch.autograd.grad(loss.sum(), (post, prior))
    kl_post, kl_prior = torch.autograd.grad(_kl(post, prior).sum(), (post, prior))
    # the posterior is trained only by the representation term, the prior only by the dynamics term
    torch.testing.assert_close(g_post, 0.1 * kl_post)
    torch.testing.assert_close(g_prior, 0.5 * kl_prior)


def test_free_bits_clip_value_and_gradient() -> None:
    post = (torch.randn(6, 4, 5, generator=_gen(), dtype=torch.float64) * 0.3).requires_grad_(True)
    prior = (torch.randn(6, 4, 5, generator=_gen(1), dtype=torch.float64) * 0.3).requires_grad_(True)
    kl = _kl(post, prior).detach()
    free = float(kl.median())
    below = kl < free
    assert below.any() and (~below).any()
    loss, dyn, rep = kl_balance_loss(post, prior, free_bits=free, dyn_scale=2.0, rep_scale=3.0)
    torch.testing.assert_close(dyn, kl)  # logged values are before the clip
    torch.testing.assert_close(rep, kl)
    torch.testing.assert_close(loss, 5.0 * torch.clamp(kl, min=free))
    g_post, g_prior = torch.autograd.grad(loss.sum(), (post, prior))
    assert g_post[below].abs().max() == 0 and g_prior[below].abs().max() == 0
    assert g_post[~below].abs().sum() > 0 and g_prior[~below].abs().sum() > 0
    with pytest.raises(HierosError, match="free_bits"):
        kl_balance_loss(post, prior, free_bits=-1.0)


# ----------------------------------------------------------------------------- likelihoods


def test_bernoulli_nll_hand_values() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0, 200.0, -200.0], dtype=torch.float64)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    want = [math.log(2), -math.log(sig(2.0)), -math.log(1 - sig(-1.0)), 200.0, 0.0]
    got = bernoulli_nll(logits, target)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    assert bernoulli_nll(torch.zeros(3), torch.tensor([True, False, True])).shape == (3,)
    with pytest.raises(HierosError, match="target"):
        bernoulli_nll(torch.zeros(3), torch.zeros(4))


def test_image_mse_hand_values() -> None:
    pred = torch.zeros(2, 5, 3, 4, 4)
    target = torch.zeros(2, 5, 3, 4, 4)
    target[1, 2, 0, 1, 1] = 2.0
    target[1, 2, 2, 3, 0] = -1.0
    got = image_mse(pred, target)
    assert got.shape == (2, 5)
    want = torch.zeros(2, 5)
    want[1, 2] = 5.0
    torch.testing.assert_close(got, want)
    with pytest.raises(HierosError, match="target"):
        image_mse(pred, target[..., :3])


def test_sample_onehot_passes_nan_on_instead_of_a_valid_looking_sample() -> None:
    """NaN logits (a diverged model) give NaN samples, which the losses downstream show; the inputs that
    reach a model's sampling (observations, actions, states) are checked at the model's boundary."""
    logits = torch.zeros(2, 4)
    logits[1, 2] = float("nan")
    sample = sample_onehot(logits, generator=torch.Generator().manual_seed(0))
    assert torch.isnan(sample[1]).all() and torch.isfinite(sample[0]).all()
