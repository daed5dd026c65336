"""Aggregate metrics against their definitions (rliable's), hand values and the Hieros paper's table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import trim_mean

from hieros_lib.errors import HierosError
from hieros_lib.metrics import (
    ATARI100K_GAMES,
    HUMAN_SCORES,
    RANDOM_SCORES,
    human_normalized_score,
    iqm,
    mean,
    median,
    optimality_gap,
    performance_profile,
    stratified_bootstrap_ci,
)

matrices = arrays(
    np.float64,
    st.tuples(st.integers(1, 7), st.integers(1, 9)),
    elements=st.floats(-5, 5, allow_nan=False, allow_subnormal=False),
)


@given(matrices)
def test_aggregates_equal_rliables_definitions(scores: np.ndarray) -> None:
    """rliable: mean / median over tasks of per-task means; IQM = trim_mean(0.25) and the optimality gap
    over all run x task entries (rliable/metrics.py)."""
    np.testing.assert_allclose(mean(scores), np.mean(np.mean(scores, axis=0)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(median(scores), np.median(np.mean(scores, axis=0)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(iqm(scores), trim_mean(scores, proportiontocut=0.25, axis=None), atol=1e-12)
    np.testing.assert_allclose(optimality_gap(scores), 1.0 - np.mean(np.minimum(scores, 1.0)), atol=1e-12)


def test_hand_values() -> None:
    scores = np.array([[0.0, 1.0, 4.0, 10.0], [2.0, 1.0, 0.0, 10.0]])
    assert float(mean(scores)) == pytest.approx((1.0 + 1.0 + 2.0 + 10.0) / 4)
    assert float(median(scores)) == pytest.approx(1.5)  # per-task means 1, 1, 2, 10
    assert float(iqm(scores)) == pytest.approx(np.mean([1.0, 1.0, 2.0, 4.0]))  # drop 0, 0 and 10, 10
    assert float(optimality_gap(scores)) == pytest.approx(1 - (0 + 1 + 1 + 1 + 1 + 1 + 0 + 1) / 8)
    assert float(optimality_gap(scores, threshold=2.0)) == pytest.approx(2 - 10 / 8)
    np.testing.assert_allclose(performance_profile(scores, [-1.0, 0.5, 5.0]), [1.0, 0.75, 0.25])


def test_batched_evaluation_equals_one_by_one() -> None:
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(6, 3, 5))
    for fn in (mean, median, iqm, optimality_gap):
        np.testing.assert_allclose(fn(stack), [float(fn(m)) for m in stack])


def test_the_papers_hieros_scores_give_its_mean_and_median() -> None:
    """Table 2 of the Hieros paper (25 games, UpNDown missing): mean 1.20, median 0.56 as in Table 1."""
    hieros = {
        "Alien": 828, "Amidar": 127, "Assault": 1764, "Asterix": 899, "BankHeist": 177,
        "Battle Zone": 15140, "Boxing": 65, "Breakout": 10, "Chop.Command": 1475, "CrazyClimber": 50857,
        "DemonAttack": 1480, "Freeway": 31, "Frostbite": 2901, "Gopher": 1473, "Hero": 7890,
        "JamesBond": 939, "Kangaroo": 6590, "Krull": 8130, "KungFuMaster": 18793, "Ms.Packman": 1771,
        "Pong": 5, "PrivateEye": 1507, "Qbert": 770, "RoadRunner": 16950, "Seaquest": 560,
    }  # fmt: skip
    hns = np.array([[human_normalized_score(game, score) for game, score in hieros.items()]])
    assert round(float(mean(hns)), 2) == 1.20
    assert round(float(median(hns)), 2) == 0.56


def test_reference_scores_cover_the_26_games() -> None:
    assert len(ATARI100K_GAMES) == 26
    assert set(RANDOM_SCORES) == set(HUMAN_SCORES) == set(ATARI100K_GAMES)
    for game in ATARI100K_GAMES:
        assert human_normalized_score(game, RANDOM_SCORES[game]) == pytest.approx(0.0)
        assert human_normalized_score(game, HUMAN_SCORES[game]) == pytest.approx(1.0)
    np.testing.assert_allclose(human_normalized_score("breakout", np.array([1.7, 30.5])), [0.0, 1.0])
    with pytest.raises(HierosError, match="Alien"):
        human_normalized_score("Tetris", 1.0)


def test_bootstrap_is_stratified_by_task() -> None:
    """Every task's runs are equal, tasks differ: a stratified resample never changes the mean (a
    bootstrap that mixed tasks would)."""
    scores = np.tile(np.arange(8.0), (5, 1))
    point, low, high = stratified_bootstrap_ci(scores, mean, reps=500, generator=0)
    assert point == low == high == pytest.approx(3.5)


def test_bootstrap_honours_its_generator_and_covers() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(1.0, 0.5, size=(10, 6))
    a = stratified_bootstrap_ci(scores, iqm, reps=2000, generator=7)
    b = stratified_bootstrap_ci(scores, iqm, reps=2000, generator=np.random.default_rng(7))
    c = stratified_bootstrap_ci(scores, iqm, reps=2000, generator=8)
    assert a == b and a != c
    np.random.seed(0)  # the global generator plays no part
    d = stratified_bootstrap_ci(scores, iqm, reps=2000, generator=7)
    assert d == a
    # 95% intervals of the mean of normal data cover the true mean in about 95% of experiments
    hits = 0
    for trial in range(200):
        data = np.random.default_rng(100 + trial).normal(2.0, 1.0, size=(12, 4))
        _, low, high = stratified_bootstrap_ci(data, mean, reps=1000, generator=trial)
        hits += low <= 2.0 <= high
    assert 0.88 <= hits / 200 <= 0.99, hits


def test_bad_inputs_are_library_errors() -> None:
    with pytest.raises(HierosError, match="scores"):
        mean(np.zeros(3))
    with pytest.raises(HierosError, match="scores"):
        iqm(np.array([[np.nan, 1.0]]))
    with pytest.raises(HierosError, match="confidence"):
        stratified_bootstrap_ci(np.ones((2, 2)), mean, confidence=1.0)
    with pytest.raises(HierosError, match="reps"):
        stratified_bootstrap_ci(np.ones((2, 2)), mean, reps=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scores",
    [
        "1.0",
        [["a", "b"]],
        [[1.0, 2.0], [3.0]],  # ragged
        {"Pong": [1.0]},
        np.array([[1.0 + 2j, 0.5]]),  # complex: the imaginary part would be dropped
        np.array([[True, False]]),
        [[1.0, float("nan")]],
        [[1.0, float("inf")]],
    ],
)
def test_every_aggregate_refuses_what_is_not_a_matrix_of_finite_real_scores(scores: object) -> None:
    for function in (mean, median, iqm, optimality_gap):
        with pytest.raises(HierosError, match="scores"):
            function(scores)  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="scores"):
        performance_profile(scores, [0.5])  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="scores"):
        stratified_bootstrap_ci(scores, iqm, reps=10, generator=0)  # type: ignore[arg-type]


def test_scores_game_names_thresholds_and_statistics_are_checked() -> None:
    for bad in (float("nan"), float("inf"), True, "3", 1 + 2j, None):
        with pytest.raises(HierosError, match="score"):
            human_normalized_score("Pong", bad)  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="score"):
        human_normalized_score("Pong", np.array([1.0, np.nan]))
    for game in (3, None, True, b"Pong"):
        with pytest.raises(HierosError, match="game"):
            human_normalized_score(game, 1.0)  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="thresholds"):
        performance_profile([[0.5, 1.0]], [float("nan")])
    with pytest.raises(HierosError, match="statistic"):
        stratified_bootstrap_ci(np.ones((3, 2)), None, reps=10, generator=0)  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="statistic"):  # one value per task instead of one per matrix
        stratified_bootstrap_ci(np.ones((3, 2)), lambda s: s.mean(axis=-2), reps=10, generator=0)
