"""``hieros_lib.metrics``: Atari 100k reference scores and the aggregate statistics of the field.

A leaf package (NumPy only). :func:`human_normalized_score` with the random and human references of the
26 games; :func:`mean`, :func:`median`, :func:`iqm`, :func:`optimality_gap` and
:func:`performance_profile` over a ``(runs, tasks)`` score matrix as rliable defines them; and
:func:`stratified_bootstrap_ci`, percentile intervals from a stratified bootstrap with an explicit
generator.

Examples:
    >>> import numpy as np
    >>> from hieros_lib.metrics import human_normalized_score, iqm
    >>> hns = np.array([[human_normalized_score("Pong", 5.0), human_normalized_score("Krull", 8130.0)]])
    >>> round(float(iqm(hns)), 3)
    3.424
"""

from hieros_lib.metrics._aggregate import (
    iqm,
    mean,
    median,
    optimality_gap,
    performance_profile,
    stratified_bootstrap_ci,
)
from hieros_lib.metrics._scores import ATARI100K_GAMES, HUMAN_SCORES, RANDOM_SCORES, human_normalized_score

__all__ = [
    "ATARI100K_GAMES",
    "HUMAN_SCORES",
    "RANDOM_SCORES",
    "human_normalized_score",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "performance_profile",
    "stratified_bootstrap_ci",
]
