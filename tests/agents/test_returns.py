"""λ-returns against a plain loop, and the percentile return normaliser."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_lib.agents import ReturnNormalizer, lambda_return
from hieros_lib.errors import HierosError


def loop_return(
    reward: list[float], value: list[float], cont: list[float], discount: float, lam: float
) -> list[float]:
    """The formula of the design, written out: R[k] = r[k+1] + g c[k+1] ((1 - l) v[k+1] + l R[k+1])."""
    horizon = len(reward) - 1
    out = [0.0] * (horizon + 1)
    out[horizon] = value[horizon]
    for k in range(horizon - 1, -1, -1):
        out[k] = reward[k + 1] + discount * cont[k + 1] * ((1 - lam) * value[k + 1] + lam * out[k + 1])
    return out[:horizon]


@given(
    st.integers(1, 8),
    st.floats(0.5, 1.0),
    st.sampled_from([0.0, 0.3, 0.95, 1.0]),
    st.integers(0, 2**31 - 1),
)
def test_lambda_return_equals_the_loop(horizon: int, discount: float, lam: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    reward = torch.randn(3, horizon + 1, generator=g, dtype=torch.float64)
    value = torch.randn(3, horizon + 1, generator=g, dtype=torch.float64)
    cont = (torch.rand(3, horizon + 1, generator=g, dtype=torch.float64) > 0.2).double()
    got = lambda_return(reward, value, cont, discount=discount, lam=lam)
    for b in range(3):
        want = loop_return(reward[b].tolist(), value[b].tolist(), cont[b].tolist(), discount, lam)
        torch.testing.assert_close(got[b], torch.tensor(want, dtype=torch.float64))


def test_lambda_return_special_cases() -> None:
    reward = torch.tensor([[9.0, 1.0, 2.0, 3.0]])
    value = torch.tensor([[5.0, 10.0, 20.0, 30.0]])
    ones = torch.ones(1, 4)
    # lam = 0: one-step TD targets r[k+1] + g v[k+1] (the reward of state 0 is never used)
    torch.testing.assert_close(
        lambda_return(reward, value, ones, discount=0.5, lam=0.0),
        torch.tensor([[1 + 5.0, 2 + 10.0, 3 + 15.0]]),
    )
    # lam = 1: discounted rewards bootstrapped with v[H]
    torch.testing.assert_close(
        lambda_return(reward, value, ones, discount=0.5, lam=1.0),
        torch.tensor([[1 + 1 + 0.75 + 3.75, 2 + 1.5 + 7.5, 3 + 15.0]]),
    )
    # cont = 0 at state 2 (a terminal state): nothing after it counts for the returns before it
    cont = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    got = lambda_return(reward, value, cont, discount=0.5, lam=1.0)
    torch.testing.assert_close(got, torch.tensor([[1 + 0.5 * 2, 2.0, 3 + 15.0]]))


def test_lambda_return_validation() -> None:
    with pytest.raises(HierosError, match="reward"):
        lambda_return(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), discount=0.9, lam=0.9)
    with pytest.raises(HierosError, match="value"):
        lambda_return(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3), discount=0.9, lam=0.9)
    with pytest.raises(HierosError, match="lam"):
        lambda_return(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), discount=0.9, lam=1.5)


def test_return_normalizer_tracks_percentiles_and_round_trips() -> None:
    norm = ReturnNormalizer(rate=0.01)
    returns = torch.arange(101.0)  # P5 = 5, P95 = 95
    norm.update(returns)
    assert norm.low.item() == pytest.approx(0.05) and norm.high.item() == pytest.approx(0.95)
    assert norm.scale().item() == 1.0  # never below the limit: small returns are not amplified
    for _ in range(2000):
        norm.update(returns)
    assert norm.scale().item() == pytest.approx(90.0, rel=1e-3)
    other = ReturnNormalizer()
    other.load_state_dict(norm.state_dict())
    assert other.scale().item() == norm.scale().item()
