"""ETBS against the paper's math: equation 24 against the integral of equation 21, and the sampler's
draws against the distribution that equations 12 and 24 define, with tolerances derived from the sample
size (Dvoretzky-Kiefer-Wolfowitz for the CDF, Pearson chi-square for the probabilities, Hoeffding for
small n). Each check is also run against deliberately wrong CDFs to show that it can fail."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import integrate, stats

from hieros_lib.errors import HierosError
from hieros_lib.replay import ETBSampler, etbs_cdf

ALPHA = 1e-6  # false-alarm rate of every statistical check


def dkw_bound(num_draws: int) -> float:
    """P(sup |empirical CDF - CDF| > eps) <= 2 exp(-2 M eps^2) = ALPHA (Massart's constant)."""
    return math.sqrt(math.log(2.0 / ALPHA) / (2.0 * num_draws))


# ---- the reference, written from the paper independently of the library --------------------------
def skewed_density(x: float, n: int) -> float:
    """Equation 21: p_s(x) = (ln n - ln x) / (n - 2 ln n + 2 ln 2 - 2) on [2, n]."""
    return (math.log(n) - math.log(x)) / (n - 2 * math.log(n) + 2 * math.log(2) - 2)


def reference_cdf(x: np.ndarray, n: int) -> np.ndarray:
    """Equations 22-23: CDF_s(x) = P_s(x) - P_s(2) with the antiderivative P_s of equation 23."""

    def antiderivative(z: np.ndarray) -> np.ndarray:
        return z * (np.log(z) - math.log(n) - 1) / (2 * math.log(n) - n - 2 * math.log(2) + 2)

    return antiderivative(np.asarray(x, dtype=np.float64)) - antiderivative(np.array(2.0))


def invert(cdf: Callable[[np.ndarray], np.ndarray], targets: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Vectorised bisection for an increasing cdf on [lo, hi]."""
    a = np.full_like(targets, lo, dtype=np.float64)
    b = np.full_like(targets, hi, dtype=np.float64)
    for _ in range(80):
        mid = 0.5 * (a + b)
        below = cdf(mid) < targets
        a = np.where(below, mid, a)
        b = np.where(below, b, mid)
    return 0.5 * (a + b)


def cdf_component_cdf(n: int, cdf: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """P(index < m), m = 0..n, for index = floor(n * cdf(X)), X ~ U[2, n]: (cdf^-1(m / n) - 2) / (n - 2)."""
    m = np.arange(n + 1, dtype=np.float64)
    positions = invert(cdf, m / n, 2.0, float(n))
    positions[0], positions[-1] = 2.0, float(n)
    return (positions - 2.0) / (n - 2.0)


def etbs_index_cdf(n: int, tau: float, cdf: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Equation 12 as a mixture: tau * (CDF component) + (1 - tau) * uniform; returns P(index < m)."""
    cdf = cdf or (lambda x: reference_cdf(x, n))
    uniform = np.arange(n + 1, dtype=np.float64) / n
    return tau * cdf_component_cdf(n, cdf) + (1 - tau) * uniform


def empirical_index_cdf(indices: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(indices, minlength=n)
    return np.concatenate([[0.0], np.cumsum(counts)]) / indices.size


def ks_distance(indices: np.ndarray, n: int, expected_cdf: np.ndarray) -> float:
    return float(np.abs(empirical_index_cdf(indices, n) - expected_cdf).max())


# ---- closed form -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 10, 1000, 1_000_000])
def test_equation_24_is_the_integral_of_equation_21(n: int) -> None:
    xs = np.unique(np.concatenate([[2.0, float(n)], np.geomspace(2.0, n, 9), np.linspace(2.0, n, 7)]))
    integral = np.array([integrate.quad(skewed_density, 2.0, x, args=(n,), limit=200)[0] for x in xs])
    np.testing.assert_allclose(etbs_cdf(xs, n), integral, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(etbs_cdf(xs, n), reference_cdf(xs, n), rtol=1e-12, atol=1e-12)
    assert abs(float(etbs_cdf(2.0, n))) < 1e-12 and abs(float(etbs_cdf(float(n), n)) - 1) < 1e-12
    assert (np.diff(etbs_cdf(xs, n)) > 0).all()


def test_etbs_cdf_rejects_degenerate_n() -> None:
    for n in (0, 1, 2):
        with pytest.raises(HierosError):
            etbs_cdf(2.0, n)


# ---- draws against the closed-form CDF (tau = 1: only the CDF component) -----------------------------
def _normalised(
    cdf: Callable[[np.ndarray], np.ndarray], lo: float, hi: float
) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: (cdf(x) - cdf(np.array(lo))) / (cdf(np.array(hi)) - cdf(np.array(lo)))


WRONG_CDFS: dict[str, Callable[[int], Callable[[np.ndarray], np.ndarray]]] = {
    # ln(capacity) in place of ln(n) (the official code scales by the capacity, 1e6)
    "capacity in place of n": lambda n: _normalised(lambda x: reference_cdf(x, 10**6), 2.0, float(n)),
    # the identity (no transform: plain uniform sampling)
    "no transform": lambda n: lambda x: (x - 2.0) / (n - 2.0),
    # integrating from 1 instead of 2 (equation 22 with the wrong lower limit)
    "lower limit 1": lambda n: _normalised(lambda x: reference_cdf(x, n), 1.0, float(n)),
    # a density ln(n / x)^2 instead of ln(n / x)
    "squared log density": lambda n: _normalised(
        lambda x: x * ((np.log(x / n)) ** 2 - 2 * np.log(x / n) + 2), 2.0, float(n)
    ),
}


@pytest.mark.parametrize("n", [3, 7, 1000])
def test_cdf_component_matches_equation_24(n: int) -> None:
    draws = 400_000
    indices = ETBSampler(temperature=1.0, generator=2024).sample(n, draws)
    expected = etbs_index_cdf(n, 1.0)
    eps = dkw_bound(draws)
    assert ks_distance(indices, n, expected) <= eps


@pytest.mark.parametrize(
    ("n", "wrong"),
    [(7, w) for w in sorted(WRONG_CDFS)] + [(1000, w) for w in sorted(WRONG_CDFS) if w != "lower limit 1"],
)
def test_cdf_check_fails_on_a_wrong_cdf(n: int, wrong: str) -> None:
    # (At n = 1000 integrating from 1 instead of 2 moves the CDF by less than 400k draws can resolve.)
    draws = 400_000
    indices = ETBSampler(temperature=1.0, generator=2024).sample(n, draws)
    expected = etbs_index_cdf(n, 1.0, WRONG_CDFS[wrong](n))
    assert ks_distance(indices, n, expected) > dkw_bound(draws)


# ---- the mixture of equation 12 ------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "tau"), [(1000, 0.3), (50, 0.3), (7, 0.6)])
def test_mixture_matches_equation_12(n: int, tau: float) -> None:
    draws = 400_000
    indices = ETBSampler(temperature=tau, generator=7).sample(n, draws)
    expected_cdf = etbs_index_cdf(n, tau)
    assert ks_distance(indices, n, expected_cdf) <= dkw_bound(draws)
    # Per-item probabilities: chi-square with the item masses of equation 12.
    probs = np.diff(expected_cdf)
    counts = np.bincount(indices, minlength=n)
    statistic = float(((counts - draws * probs) ** 2 / (draws * probs)).sum())
    assert statistic <= stats.chi2.ppf(1 - ALPHA, df=n - 1)
    # The same checks reject the wrong temperature and the official code's capacity-scaled CDF.
    for wrong in (
        etbs_index_cdf(n, 1 - tau),
        etbs_index_cdf(n, tau, WRONG_CDFS["capacity in place of n"](n)),
    ):
        wrong_probs = np.diff(wrong)
        wrong_stat = float(((counts - draws * wrong_probs) ** 2 / (draws * wrong_probs)).sum())
        assert ks_distance(indices, n, wrong) > dkw_bound(draws)
        assert wrong_stat > stats.chi2.ppf(1 - ALPHA, df=n - 1)


def test_mixture_favours_the_newest_items() -> None:
    n, draws = 10_000, 200_000
    indices = ETBSampler(temperature=0.3, generator=3).sample(n, draws)
    oldest, newest = (indices < n // 10).mean(), (indices >= n - n // 10).mean()
    expected = etbs_index_cdf(n, 0.3)
    exp_old, exp_new = expected[n // 10], 1 - expected[n - n // 10]
    assert exp_new > exp_old  # the transform counteracts the oversampling of old items
    eps = dkw_bound(draws)
    assert abs(oldest - exp_old) <= eps and abs(newest - exp_new) <= eps


# ---- small n -------------------------------------------------------------------------------------------
def test_small_n_falls_back_to_uniform() -> None:
    sampler = ETBSampler(temperature=1.0, generator=0)
    assert (sampler.sample(1, 100) == 0).all()
    draws = 100_000
    share = sampler.sample(2, draws).mean()  # fraction of index 1
    hoeffding = math.sqrt(math.log(2 / ALPHA) / (2 * draws))
    assert abs(share - 0.5) <= hoeffding


def test_every_item_can_be_drawn() -> None:
    for n in (3, 4, 10):
        indices = ETBSampler(temperature=1.0, generator=n).sample(n, 20_000)
        assert set(indices.tolist()) == set(range(n))


def test_draws_depend_on_current_size_not_history() -> None:
    # O(1) per draw and stateless in the items: the same seed gives the same draws at any n history.
    a = ETBSampler(generator=9)
    b = ETBSampler(generator=9)
    a.on_insert(10**6, 10**6)
    assert np.array_equal(a.sample(500, 64), b.sample(500, 64))
