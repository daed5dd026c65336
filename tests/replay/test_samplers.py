"""Sampler contract tests (every sampler through the same checks) and TWM visit-count tests."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from hieros_lib.errors import HierosError
from hieros_lib.replay import ETBSampler, Sampler, TimeBalancedSampler, UniformSampler

ALPHA = 1e-6  # false-alarm rate of every statistical check; bounds below are derived from it

FACTORIES: dict[str, Callable[..., Sampler]] = {
    "uniform": lambda generator: UniformSampler(generator=generator),
    "time_balanced": lambda generator: TimeBalancedSampler(temperature=20.0, generator=generator),
    "time_balanced_no_replacement": lambda generator: TimeBalancedSampler(
        temperature=2.0, replacement=False, generator=generator
    ),
    "etbs": lambda generator: ETBSampler(temperature=0.3, generator=generator),
    "etbs_full": lambda generator: ETBSampler(temperature=1.0, generator=generator),
}


def _drive(sampler: Sampler, steps: list[tuple[int, int | None, int, int]]) -> list[np.ndarray]:
    """Run (num_new, num_items_after_insert, num_items_to_sample, batch_size) steps; return the draws."""
    out = []
    for num_new, stored, n, batch in steps:
        sampler.on_insert(num_new, stored)
        out.append(sampler.sample(n, batch))
    return out


# A stream that grows, then is capped at 50 items (oldest dropped on each insert).
STREAM = [(10, 10, 10, 4), (7, 17, 17, 3), (40, 50, 50, 8)] + [(3, 50, 50, 5)] * 6


def chi_square_rejects(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Pearson chi-square test of counts against probs at level ALPHA (bins with tiny mass are pooled)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    expected = probs * total
    order = np.argsort(expected)
    # Pool the smallest bins until each pooled bin expects at least 5 draws.
    pooled_obs, pooled_exp, acc_o, acc_e = [], [], 0.0, 0.0
    for i in order:
        acc_o += counts[i]
        acc_e += expected[i]
        if acc_e >= 5.0:
            pooled_obs.append(acc_o)
            pooled_exp.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0:
        pooled_obs[-1] += acc_o
        pooled_exp[-1] += acc_e
    o, e = np.array(pooled_obs), np.array(pooled_exp)
    statistic = float(((o - e) ** 2 / e).sum())
    return statistic > stats.chi2.ppf(1.0 - ALPHA, df=len(o) - 1)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sampler_contract(name: str) -> None:
    sampler = FACTORIES[name](0)
    assert isinstance(sampler, Sampler)
    for n in (1, 2, 3, 17, 1_000_000):
        sampler.on_insert(n - getattr(sampler, "num_known", 0), n)
        batch = min(n, 4)
        idx = sampler.sample(n, batch)
        assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (batch,)
        assert ((idx >= 0) & (idx < n)).all()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sampler_is_deterministic_under_a_seed_or_generator(name: str) -> None:
    a = _drive(FACTORIES[name](123), STREAM)
    b = _drive(FACTORIES[name](np.random.default_rng(123)), STREAM)
    c = _drive(FACTORIES[name](124), STREAM)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip_mid_stream(name: str) -> None:
    sampler = FACTORIES[name](7)
    _drive(sampler, STREAM[:4])
    state = sampler.state_dict()
    frozen = copy.deepcopy(state)
    rest_a = _drive(sampler, STREAM[4:])
    # Drawing after state_dict() must not change the saved state.
    assert state.keys() == frozen.keys()
    for key in state:
        if isinstance(state[key], np.ndarray):
            assert np.array_equal(state[key], frozen[key])
        else:
            assert state[key] == frozen[key]
    restored = FACTORIES[name](999)  # another seed: the state must carry everything
    restored.load_state_dict(state)
    rest_b = _drive(restored, STREAM[4:])
    assert all(np.array_equal(x, y) for x, y in zip(rest_a, rest_b))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_state_dict_rejects_other_kinds_and_keeps_state(name: str) -> None:
    sampler = FACTORIES[name](3)
    _drive(sampler, STREAM[:3])
    before = copy.deepcopy(sampler.state_dict())
    other = next(f for n, f in FACTORIES.items() if n.split("_")[0] != name.split("_")[0])(0).state_dict()
    bad_rng = dict(before, rng={"bit_generator": "NoSuchGenerator"})
    for bad in (other, bad_rng, {"kind": before["kind"]}, "not a dict"):
        with pytest.raises(HierosError):
            sampler.load_state_dict(bad)  # type: ignore[arg-type]
    after = sampler.state_dict()
    assert after["rng"] == before["rng"]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_bad_arguments_raise_hieros_error(name: str) -> None:
    sampler = FACTORIES[name](0)
    sampler.on_insert(5, 5)
    for n, b in ((0, 1), (5, 0), (-1, 2), (5, -3), (2.5, 1), (True, 1)):
        with pytest.raises(HierosError):
            sampler.sample(n, b)  # type: ignore[arg-type]
    with pytest.raises(HierosError):
        FACTORIES[name]("seed")  # type: ignore[arg-type]


def test_constructor_arguments_are_validated() -> None:
    for t in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(HierosError):
            TimeBalancedSampler(temperature=t)
    for t in (-0.1, 1.5, math.nan):
        with pytest.raises(HierosError):
            ETBSampler(temperature=t)


def test_uniform_draws_are_uniform() -> None:
    n, draws = 25, 200_000
    idx = UniformSampler(generator=11).sample(n, draws)
    counts = np.bincount(idx, minlength=n)
    assert not chi_square_rejects(counts, np.full(n, 1.0 / n))
    skewed = np.arange(1, n + 1, dtype=np.float64)
    assert chi_square_rejects(counts, skewed / skewed.sum())  # the check can fail


# ----------------------------------------------------------------------------------- TWM (equation 6)
def _softmax_reference(visits: np.ndarray, temperature: float) -> np.ndarray:
    weights = np.array([math.exp(-v / temperature) for v in visits.tolist()])
    return weights / weights.sum()


def _twm_with_visits(visits: list[int], temperature: float, seed: int = 0) -> TimeBalancedSampler:
    sampler = TimeBalancedSampler(temperature=temperature, generator=seed)
    state = sampler.state_dict()
    state["visits"] = np.array(visits, dtype=np.int64)
    sampler.load_state_dict(state)
    return sampler


def test_twm_probabilities_equal_softmax_of_hand_built_visits() -> None:
    visits = [0, 3, 10, 40, 0, 1000, 7]
    for temperature in (1.0, 20.0, 300.0):
        sampler = _twm_with_visits(visits, temperature)
        np.testing.assert_allclose(
            sampler.probabilities(7), _softmax_reference(np.array(visits), temperature), rtol=1e-12, atol=0
        )
        # The newest 4 items only (the 3 oldest were dropped).
        np.testing.assert_allclose(
            sampler.probabilities(4), _softmax_reference(np.array(visits[3:]), temperature), rtol=1e-12
        )


def test_twm_draws_follow_equation_6() -> None:
    visits = [0, 20, 40, 60, 80, 100, 5]
    sampler = _twm_with_visits(visits, temperature=20.0, seed=5)
    idx = sampler.sample(7, 200_000)  # one batch: every draw uses the same probabilities
    counts = np.bincount(idx, minlength=7)
    assert not chi_square_rejects(counts, _softmax_reference(np.array(visits), 20.0))
    assert chi_square_rejects(counts, _softmax_reference(np.array(visits), 15.0))
    assert chi_square_rejects(counts, np.full(7, 1 / 7))


def test_twm_counts_every_draw_and_forgets_dropped_items() -> None:
    sampler = TimeBalancedSampler(temperature=20.0, generator=1)
    sampler.on_insert(10)
    counts = np.zeros(10, dtype=np.int64)
    for _ in range(30):
        idx = sampler.sample(10, 6)
        np.add.at(counts, idx, 1)  # duplicates in a batch count once each
    assert np.array_equal(sampler.visits(10), counts)
    np.testing.assert_allclose(sampler.probabilities(10), _softmax_reference(counts, 20.0), rtol=1e-12)
    # Five new items arrive and the five oldest leave: ages shift, new items start at zero.
    sampler.on_insert(5, num_items=10)
    assert np.array_equal(sampler.visits(10), np.concatenate([counts[5:], np.zeros(5, np.int64)]))
    # A smaller num_items at sampling time also drops the oldest.
    idx = sampler.sample(4, 3)
    expected = np.concatenate([counts[5:], np.zeros(5, np.int64)])[6:]
    np.add.at(expected, idx, 1)
    assert np.array_equal(sampler.visits(4), expected)


def test_twm_new_items_are_favoured_after_visits() -> None:
    sampler = TimeBalancedSampler(temperature=1.0, generator=2)
    sampler.on_insert(100)
    for _ in range(200):
        sampler.sample(100, 1)
    sampler.on_insert(1, 101)
    p = sampler.probabilities(101)
    assert p[-1] == p.max() and sampler.visits(101)[-1] == 0


def test_twm_without_replacement_draws_distinct_items() -> None:
    sampler = TimeBalancedSampler(replacement=False, generator=0)
    sampler.on_insert(8)
    idx = sampler.sample(8, 8)
    assert sorted(idx.tolist()) == list(range(8))
    with pytest.raises(HierosError):
        sampler.sample(8, 9)


def test_twm_rejects_more_items_than_inserted() -> None:
    sampler = TimeBalancedSampler(generator=0)
    sampler.on_insert(3)
    with pytest.raises(HierosError):
        sampler.sample(4, 1)
    with pytest.raises(HierosError):
        sampler.on_insert(1, num_items=5)
    with pytest.raises(HierosError):
        sampler.on_insert(-1)


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_state_survives_json_for_every_bit_generator(bit_generator: str) -> None:
    import json

    sampler = ETBSampler(generator=np.random.Generator(getattr(np.random, bit_generator)(3)))
    sampler.sample(10, 3)
    restored = ETBSampler(generator=0)
    restored.load_state_dict(json.loads(json.dumps(sampler.state_dict())))
    assert np.array_equal(sampler.sample(100, 50), restored.sample(100, 50))
