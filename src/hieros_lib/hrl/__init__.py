"""``hieros_lib.hrl``: the subgoal autoencoder and the intrinsic rewards of Hieros.

:class:`SubgoalAutoencoder` compresses the world model's deterministic state ``h`` into a discrete
subgoal (8 one-hot vectors of size 8) and back; :func:`subgoal_reward` is Director's max-cosine reward
between ``h`` and a decoded goal; :func:`novelty_reward` is the autoencoder's reconstruction error;
:func:`mix_rewards` forms equation 1 of the paper for an agent with one critic (the Hieros agent keeps one
critic per term and weighs their advantages with the same :class:`RewardWeights`). Rewards carry no
gradient into the world model or the autoencoder unless ``differentiable=True`` is passed.
"""

from hieros_lib.hrl._autoencoder import SubgoalAutoencoder
from hieros_lib.hrl._rewards import MixedRewards, RewardWeights, mix_rewards, novelty_reward, subgoal_reward

__all__ = [
    "MixedRewards",
    "RewardWeights",
    "SubgoalAutoencoder",
    "mix_rewards",
    "novelty_reward",
    "subgoal_reward",
]
