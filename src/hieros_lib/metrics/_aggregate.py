"""Aggregate statistics over runs x tasks, as rliable defines them (Agarwal et al., NeurIPS 2021).

Every function takes a score matrix of shape ``(runs, tasks)`` (usually human-normalised scores: one row
per seed, one column per game) and also any leading batch dimensions ``(..., runs, tasks)``, which the
bootstrap uses to evaluate thousands of resamples at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hieros_lib.errors import HierosError, check, check_float, check_int

__all__ = [
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "performance_profile",
    "stratified_bootstrap_ci",
]

Statistic = Callable[[np.ndarray], np.ndarray]


def _real_array(values: object, name: str, expected: str) -> np.ndarray:
    """``values`` as a float64 array of real numbers; anything else (strings, dicts, ragged lists,
    booleans, complex numbers) raises :class:`~hieros_lib.errors.HierosError` naming ``name``."""
    check(not isinstance(values, (str, bytes, dict)), name, expected, got=type(values).__name__)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise HierosError(f"{name}: expected {expected}, got {type(values).__name__} ({err})") from err
    check(array.dtype.kind in "iuf", name, f"{expected} of real numbers", got=f"dtype {array.dtype}")
    return array.astype(np.float64)


def _scores(scores: np.ndarray | list[list[float]], name: str = "scores") -> np.ndarray:
    array = _real_array(scores, name, "an array of shape (runs, tasks)")
    check(array.ndim >= 2, name, "an array of shape (runs, tasks)", got=array.shape)
    check(array.shape[-1] >= 1 and array.shape[-2] >= 1, name, "at least one run and one task",
          got=array.shape)
    check(bool(np.isfinite(array).all()), name, "finite scores", got="NaN or inf")
    return array


def mean(scores: np.ndarray) -> np.ndarray:
    """Mean over tasks of the per-task mean over runs (rliable's ``aggregate_mean``).

    Args:
        scores: ``(..., runs, tasks)``.

    Returns:
        ``(...)`` (a 0-d array for one matrix; use ``float()``).

    Examples:
        >>> float(mean([[0.0, 1.0], [1.0, 2.0]]))
        1.0
    """
    return _scores(scores).mean(axis=-2).mean(axis=-1)


def median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of the per-task mean over runs (rliable's ``aggregate_median``).

    Examples:
        >>> float(median([[0.0, 1.0, 5.0], [1.0, 2.0, 5.0]]))
        1.5
    """
    return np.median(_scores(scores).mean(axis=-2), axis=-1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of all ``runs x tasks`` scores.

    As ``scipy.stats.trim_mean(scores, 0.25, axis=None)``: with ``n`` scores, ``int(0.25 n)`` are cut from
    each end of the sorted scores and the rest averaged (rliable's ``aggregate_iqm``).

    Examples:
        >>> float(iqm([[0.0, 1.0, 2.0, 100.0]]))
        1.5
    """
    array = _scores(scores)
    flat = np.sort(array.reshape(*array.shape[:-2], -1), axis=-1)
    n = flat.shape[-1]
    cut = int(0.25 * n)
    return flat[..., cut : n - cut].mean(axis=-1)


def optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """How far the scores fall short of ``threshold``: ``threshold - mean(min(scores, threshold))``.

    The mean runs over all ``runs x tasks`` entries (rliable's ``aggregate_optimality_gap``, ``gamma = 1``:
    scores above human level earn nothing more). Lower is better.

    Examples:
        >>> float(optimality_gap([[0.5, 2.0]]))
        0.25
    """
    threshold = check_float(threshold, "threshold")
    array = _scores(scores)
    clipped = np.minimum(array, threshold)
    return threshold - clipped.reshape(*array.shape[:-2], -1).mean(axis=-1)


def performance_profile(scores: np.ndarray, thresholds: np.ndarray | list[float]) -> np.ndarray:
    """The score distribution: for each threshold ``tau``, the fraction of runs with a score above it.

    The fraction runs over all ``runs x tasks`` entries (rliable's ``run_score_deviation``,
    ``mean(scores > tau)``), so plotting it against ``thresholds`` gives rliable's performance profile.

    Args:
        scores: ``(..., runs, tasks)``.
        thresholds: ``(K,)`` thresholds ``tau``.

    Returns:
        ``(..., K)`` fractions in ``[0, 1]``.

    Examples:
        >>> performance_profile([[0.2, 0.8], [1.5, 0.1]], [0.0, 0.5, 1.0]).tolist()
        [1.0, 0.5, 0.25]
    """
    array = _scores(scores)
    taus = _real_array(thresholds, "thresholds", "a non-empty 1-D array")
    check(taus.ndim == 1 and taus.size >= 1, "thresholds", "a non-empty 1-D array", got=taus.shape)
    check(not bool(np.isnan(taus).any()), "thresholds", "numbers (not NaN)", got=taus.tolist())
    flat = array.reshape(*array.shape[:-2], -1)
    return (flat[..., None, :] > taus[:, None]).mean(axis=-1)


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: Statistic,
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    generator: int | np.random.Generator | None = None,
    chunk: int = 1000,
) -> tuple[float, float, float]:
    """Percentile confidence interval of an aggregate statistic by stratified bootstrap.

    Each resample draws, independently for every task, ``runs`` runs *of that task* with replacement
    (the task columns are kept: stratified by task, rliable's ``StratifiedBootstrap``), evaluates
    ``statistic`` on the resampled matrix, and the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the ``reps`` values. Unlike rliable, whose bootstrap draws
    from NumPy's global generator, the randomness here comes only from ``generator``: the same seed gives
    the same interval.

    Args:
        scores: ``(runs, tasks)``.
        statistic: One of :func:`mean`, :func:`median`, :func:`iqm`, :func:`optimality_gap`, or any
            function mapping ``(..., runs, tasks)`` to ``(...)``.
        reps: Number of bootstrap resamples (rliable uses 50,000; 10,000 gives intervals stable to about
            1% of their width).
        confidence: Coverage of the interval, in ``(0, 1)``.
        generator: A seed or a :class:`numpy.random.Generator` (used, not copied); None for fresh entropy.
        chunk: Resamples evaluated at once (bounds memory to ``chunk * runs * tasks`` floats).

    Returns:
        ``(point, low, high)``: the statistic on ``scores`` and the interval.

    Raises:
        HierosError: On a bad matrix, ``reps``, ``confidence`` or generator, or a ``statistic`` that is
            not callable or does not map ``(..., runs, tasks)`` to ``(...)``.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scores = rng.normal(1.0, 0.2, size=(5, 26))
        >>> point, low, high = stratified_bootstrap_ci(scores, iqm, reps=2000, generator=0)
        >>> bool(low < point < high)
        True
    """
    array = _scores(scores)
    check(array.ndim == 2, "scores", "an array of shape (runs, tasks)", got=array.shape)
    check(callable(statistic), "statistic", "a function of (..., runs, tasks) -> (...), e.g. iqm",
          got=type(statistic).__name__)
    point = np.asarray(statistic(array))
    check(point.size == 1 and point.dtype.kind in "iuf", "statistic",
          "a function of (..., runs, tasks) -> (...) giving one real number for one matrix",
          got=f"{point.dtype} of shape {point.shape}")
    reps = check_int(reps, "reps", minimum=1)
    chunk = check_int(chunk, "chunk", minimum=1)
    confidence = check_float(confidence, "confidence", minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check(confidence < 1.0, "confidence", "a float in (0, 1)", got=confidence)
    if isinstance(generator, np.random.Generator):
        rng = generator
    elif generator is None:
        rng = np.random.default_rng()
    else:
        rng = np.random.default_rng(check_int(generator, "generator", minimum=0))
    runs, tasks = array.shape
    columns = np.arange(tasks)
    values = []
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        rows = rng.integers(0, runs, size=(n, runs, tasks))  # per task, its own resampled runs
        value = np.asarray(statistic(array[rows, columns]))
        check(value.shape == (n,), "statistic", f"one value per matrix of a batch: shape ({n},)",
              got=value.shape)
        values.append(value)
    stats = np.concatenate(values)
    alpha = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [alpha, 100.0 - alpha])
    return float(point.reshape(())), float(low), float(high)
