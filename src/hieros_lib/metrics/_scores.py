"""Reference scores of the Atari 100k games and the human-normalised score."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import overload

import numpy as np

from hieros_lib._games import ATARI100K_GAMES, atari_game
from hieros_lib.errors import check, is_real

__all__ = ["ATARI100K_GAMES", "HUMAN_SCORES", "RANDOM_SCORES", "human_normalized_score"]

RANDOM_SCORES = MappingProxyType(
    {
        "Alien": 227.8,
        "Amidar": 5.8,
        "Assault": 222.4,
        "Asterix": 210.0,
        "BankHeist": 14.2,
        "BattleZone": 2360.0,
        "Boxing": 0.1,
        "Breakout": 1.7,
        "ChopperCommand": 811.0,
        "CrazyClimber": 10780.5,
        "DemonAttack": 152.1,
        "Freeway": 0.0,
        "Frostbite": 65.2,
        "Gopher": 257.6,
        "Hero": 1027.0,
        "Jamesbond": 29.0,
        "Kangaroo": 52.0,
        "Krull": 1598.0,
        "KungFuMaster": 258.5,
        "MsPacman": 307.3,
        "Pong": -20.7,
        "PrivateEye": 24.9,
        "Qbert": 163.9,
        "RoadRunner": 11.5,
        "Seaquest": 68.4,
        "UpNDown": 533.4,
    }
)
"""Score of the uniformly random policy per game (read-only mapping).

Source: the values every Atari 100k paper normalises with (DQN's random baseline as tabulated by
Badia et al. 2020 and used by SimPLe, SPR, TWM, IRIS and DreamerV3; e.g. ``RANDOM.json`` of IRIS's
results and ``baselines.yaml`` of DreamerV3 hold the same numbers).
"""

HUMAN_SCORES = MappingProxyType(
    {
        "Alien": 7127.7,
        "Amidar": 1719.5,
        "Assault": 742.0,
        "Asterix": 8503.3,
        "BankHeist": 753.1,
        "BattleZone": 37187.5,
        "Boxing": 12.1,
        "Breakout": 30.5,
        "ChopperCommand": 7387.8,
        "CrazyClimber": 35829.4,
        "DemonAttack": 1971.0,
        "Freeway": 29.6,
        "Frostbite": 4334.7,
        "Gopher": 2412.5,
        "Hero": 30826.4,
        "Jamesbond": 302.8,
        "Kangaroo": 3035.0,
        "Krull": 2665.5,
        "KungFuMaster": 22736.3,
        "MsPacman": 6951.6,
        "Pong": 14.6,
        "PrivateEye": 69571.3,
        "Qbert": 13455.0,
        "RoadRunner": 7845.0,
        "Seaquest": 42054.7,
        "UpNDown": 11693.2,
    }
)
"""Score of the human tester per game, the "30 minutes of play" condition (read-only mapping).

Source: as :data:`RANDOM_SCORES` (the human baseline of Mnih et al. 2015 / Badia et al. 2020 used by all
Atari 100k papers, e.g. Alien 7127.7).
"""


@overload
def human_normalized_score(game: str, score: float) -> float: ...
@overload
def human_normalized_score(game: str, score: np.ndarray) -> np.ndarray: ...


def human_normalized_score(game: str, score: float | np.ndarray) -> float | np.ndarray:
    """``(score - random) / (human - random)`` for one game: 0 is random play, 1 is the human tester.

    Args:
        game: An Atari 100k game in any usual spelling (see :func:`hieros_lib.envs.atari_game`).
        score: A raw game score, or an array of them.

    Returns:
        The human-normalised score(s), of the shape of ``score``.

    Raises:
        HierosError: On an unknown game or a name that is not a string; a score that is not a finite
            real number (or an array of them): booleans, complex numbers, strings, NaN and infinities
            are refused.

    Examples:
        >>> human_normalized_score("Pong", 14.6), round(human_normalized_score("ms_pacman", 307.3), 6)
        (1.0, 0.0)
    """
    name = atari_game(game)
    low, high = RANDOM_SCORES[name], HUMAN_SCORES[name]
    if isinstance(score, np.ndarray):
        check(score.dtype.kind in "iuf", "score", "an array of real numbers", got=f"dtype {score.dtype}")
        check(bool(np.isfinite(score).all()), "score", "finite scores", got="NaN or inf")
        return (score.astype(np.float64) - low) / (high - low)
    check(is_real(score) and math.isfinite(float(score)), "score", "a finite real number",
          got=repr(score))
    return (float(score) - low) / (high - low)

