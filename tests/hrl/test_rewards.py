"""Subgoal and novelty rewards and their mixture against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hieros_lib.errors import HierosError
from hieros_lib.hrl import (
    MixedRewards,
    RewardWeights,
    SubgoalAutoencoder,
    mix_rewards,
    novelty_reward,
    subgoal_reward,
)

# ----------------------------------------------------------------------------- subgoal reward


def test_subgoal_reward_hand_values() -> None:
    g = torch.tensor([3.0, 4.0], dtype=torch.float64)  # |g| = 5
    states = torch.tensor(
        [[3.0, 4.0], [6.0, 8.0], [1.5, 2.0], [0.0, 5.0], [1.0, 0.0], [-3.0, -4.0], [4.0, -3.0], [0.0, 10.0]],
        dtype=torch.float64,
    )
    # (g / m) . (s / m) with m = max(|g|, |s|)
    want = [1.0, 50 / 100, 12.5 / 25, 20 / 25, 3 / 25, -1.0, 0.0, 40 / 100]
    torch.testing.assert_close(subgoal_reward(states, g[None]), torch.tensor(want, dtype=torch.float64))
    zero = torch.zeros(3)
    assert subgoal_reward(zero, zero).item() == 0.0


def test_subgoal_reward_punishes_overshooting_like_director() -> None:
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    scales = torch.tensor([0.25, 0.5, 1.0, 1.5, 2.0, 4.0], dtype=torch.float64)
    rewards = subgoal_reward(scales[:, None] * g, g[None])
    # s = c g gives c below the goal and 1 / c beyond it: the peak is at the goal itself
    want = torch.where(scales <= 1, scales, 1 / scales)
    torch.testing.assert_close(rewards, want)
    assert rewards.argmax().item() == 2
    assert (rewards[3:].diff() < 0).all()  # going further past the goal keeps lowering the reward


_vec = arrays(float, 6, elements=st.floats(-100, 100, allow_nan=False))


@given(_vec, _vec)
def test_subgoal_reward_is_at_most_one_and_largest_at_the_goal(s: object, g: object) -> None:
    state = torch.as_tensor(s, dtype=torch.float64)
    goal = torch.as_tensor(g, dtype=torch.float64)
    r = subgoal_reward(state, goal).item()
    assert -1 - 1e-12 <= r <= 1 + 1e-12
    if goal.norm() > 1e-3:
        assert subgoal_reward(goal, goal).item() == pytest.approx(1.0)
        assert r <= subgoal_reward(goal, goal).item() + 1e-12


def test_subgoal_reward_broadcasts_a_goal_over_time() -> None:
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(3, 5, 4, generator=gen)  # (B, T, D)
    goals = torch.randn(3, 4, generator=gen)  # (B, D), held over the horizon
    got = subgoal_reward(states, goals[:, None])  # the time axis made explicit
    assert got.shape == (3, 5)
    for t in range(5):
        for b in range(3):
            s, g = states[b, t], goals[b]
            m = max(s.norm().item(), g.norm().item())
            assert got[b, t].item() == pytest.approx((s @ g).item() / m**2, rel=1e-5)
    with pytest.raises(HierosError, match="goal"):
        subgoal_reward(states, torch.randn(3, 1, 5))
    with pytest.raises(HierosError, match="goal"):
        subgoal_reward(states, torch.randn(2, 1, 4))


def test_subgoal_reward_refuses_a_goal_without_its_time_axis() -> None:
    """(B, D) against (B, H + 1, D) with B == H + 1 would broadcast B against time: refused."""
    gen = torch.Generator().manual_seed(1)
    states = torch.randn(4, 4, 6, generator=gen)
    with pytest.raises(HierosError, match="rank"):
        subgoal_reward(states, torch.randn(4, 6, generator=gen))


def test_subgoal_reward_is_finite_for_huge_inputs() -> None:
    g = torch.tensor([3e20, 4e20])
    s = torch.tensor([[3e20, 4e20], [-6e20, 1e19], [1.0, 2.0]])
    r = subgoal_reward(s, g[None])
    assert bool(torch.isfinite(r).all()) and bool((r.abs() <= 1.0).all())
    assert r[0].item() == pytest.approx(1.0)


def test_subgoal_reward_gradient_isolation() -> None:
    state = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    goal = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert not subgoal_reward(state, goal).requires_grad
    r = subgoal_reward(state, goal, differentiable=True)
    g_state, g_goal = torch.autograd.grad(r.sum(), (state, goal))
    m = torch.maximum(state.norm(dim=-1), goal.norm(dim=-1))
    ref = ((state * goal).sum(-1) / m**2).sum()
    w_state, w_goal = torch.autograd.grad(ref, (state, goal))
    torch.testing.assert_close(g_state, w_state)
    torch.testing.assert_close(g_goal, w_goal)


# ----------------------------------------------------------------------------- novelty reward


def _constant_decoder(ae: SubgoalAutoencoder, value: torch.Tensor) -> None:
    """Make the decoder output ``value`` for every subgoal: a perfect reconstruction of ``value``."""
    last = ae.decoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(value)


def test_novelty_is_zero_on_a_perfect_reconstruction_and_the_distance_otherwise() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(4, hidden=16)
    # large values: a reconstruction of symlog(h) compared with h would be far off
    c = torch.tensor([50.0, -20.0, 3.0, 0.0])
    _constant_decoder(ae, c)
    h = torch.stack([c, c + torch.tensor([3.0, 4.0, 0.0, 0.0]), c + torch.tensor([0.0, 0.0, 0.0, -2.0])])
    torch.testing.assert_close(novelty_reward(h, ae), torch.tensor([0.0, 5.0, 2.0]))
    assert novelty_reward(h, ae, sample=True, generator=torch.Generator().manual_seed(1))[0].item() == 0.0


def test_novelty_gradient_isolation() -> None:
    torch.manual_seed(0)
    ae = SubgoalAutoencoder(6, hidden=16)
    h = torch.randn(5, 6, requires_grad=True)
    r = novelty_reward(h, ae)
    assert not r.requires_grad  # no path to the world model (h) or the autoencoder
    r = novelty_reward(h, ae, differentiable=True)
    r.sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    assert all(p.grad is not None for p in ae.decoder.parameters())


def test_novelty_rejects_wrong_inputs() -> None:
    ae = SubgoalAutoencoder(6, hidden=16)
    with pytest.raises(HierosError, match="h"):
        novelty_reward(torch.randn(5, 7), ae)
    with pytest.raises(HierosError, match="autoencoder"):
        novelty_reward(torch.randn(5, 6), torch.nn.Linear(6, 6))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- mixing


def test_mix_rewards_hand_values_and_terms_kept_apart() -> None:
    extr = torch.tensor([1.0, 2.0])
    sub = torch.tensor([0.5, -1.0])
    nov = torch.tensor([2.0, 0.0])
    mixed = mix_rewards(extr, sub, nov)
    assert isinstance(mixed, MixedRewards)
    torch.testing.assert_close(mixed.total, torch.tensor([1 + 0.15 + 0.2, 2 - 0.3 + 0.0]))
    assert mixed.terms["extrinsic"] is extr and mixed.terms["subgoal"] is sub
    assert mixed.terms["novelty"] is nov
    assert mixed.weights == {"extrinsic": 1.0, "subgoal": 0.3, "novelty": 0.1}
    assert RewardWeights() == (1.0, 0.3, 0.1)


def test_mix_rewards_missing_terms_and_custom_weights() -> None:
    extr = torch.tensor([[1.0, -1.0]])
    top = mix_rewards(extr, novelty=torch.tensor([[4.0, 1.0]]), weights=RewardWeights(2.0, 0.5, 0.25))
    assert sorted(top.terms) == ["extrinsic", "novelty"]
    assert top.weights == {"extrinsic": 2.0, "novelty": 0.25}
    torch.testing.assert_close(top.total, torch.tensor([[3.0, -1.75]]))
    torch.testing.assert_close(mix_rewards(extr).total, extr)
    with pytest.raises(HierosError, match="subgoal"):
        mix_rewards(extr, torch.zeros(2))
    assert math.isclose(mix_rewards(extr, extr, extr).total[0, 0].item(), 1.4, rel_tol=1e-6)
