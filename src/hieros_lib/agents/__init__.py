"""``hieros_lib.agents``: λ-returns, DreamerV3's actor-critic, and one level of Hieros (:class:`Subactor`).

* :func:`lambda_return` and :class:`ReturnNormalizer`: returns over imagined trajectories and their
  percentile scale (DreamerV3 2023);
* :class:`ActorCritic`: a discrete actor (environment actions or ``8 x 8`` subgoals) and one two-hot
  critic per reward term of equation 1, trained by REINFORCE on normalised advantages (a continuous
  actor optionally by dynamics backpropagation);
* :class:`Subactor`: a world model (any registered), an actor-critic and an optional subgoal
  autoencoder: with one level, a DreamerV3-style agent;
* :class:`Hieros`: the hierarchy of subactors, each level proposing subgoals to the one below.
"""

from hieros_lib.agents._actor_critic import (
    CONTINUOUS_GRADIENTS,
    REWARD_TERMS,
    ActorCritic,
    ActorCriticConfig,
    ActorCriticLoss,
)
from hieros_lib.agents._hieros import Hieros
from hieros_lib.agents._hieros_config import HierosConfig, HierosState, LevelStep
from hieros_lib.agents._hieros_replay import HierosReplay
from hieros_lib.agents._returns import ReturnNormalizer, lambda_return
from hieros_lib.agents._subactor import Subactor, SubactorConfig, SubactorState

__all__ = [
    "CONTINUOUS_GRADIENTS",
    "REWARD_TERMS",
    "ActorCritic",
    "ActorCriticConfig",
    "ActorCriticLoss",
    "Hieros",
    "HierosConfig",
    "HierosReplay",
    "HierosState",
    "LevelStep",
    "ReturnNormalizer",
    "Subactor",
    "SubactorConfig",
    "SubactorState",
    "lambda_return",
]
