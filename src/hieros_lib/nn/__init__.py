"""``hieros_lib.nn``: shared building blocks for world models and agents.

A leaf package (it imports only torch, numpy and einops from outside the root modules): the MLP, the
image encoder / decoder, the vector encoder / decoder (in symlog space), straight-through categorical
latents with a uniform mix, ``symlog`` / ``symexp``, the two-hot regression head, likelihoods, and
DreamerV3's KL with free bits and the dynamics / representation balance.
"""

from hieros_lib.nn._conv import ImageDecoder, ImageEncoder
from hieros_lib.nn._dists import (
    bernoulli_nll,
    categorical_entropy,
    categorical_kl,
    categorical_log_probs,
    categorical_probs,
    image_mse,
    kl_balance_loss,
    sample_onehot,
    unimix_logits,
)
from hieros_lib.nn._functional import preprocess_image, symexp, symlog
from hieros_lib.nn._mlp import MLP
from hieros_lib.nn._twohot import TwoHot
from hieros_lib.nn._vector import VectorDecoder, VectorEncoder, symlog_mse

__all__ = [
    "MLP",
    "ImageDecoder",
    "ImageEncoder",
    "TwoHot",
    "VectorDecoder",
    "VectorEncoder",
    "bernoulli_nll",
    "categorical_entropy",
    "categorical_kl",
    "categorical_log_probs",
    "categorical_probs",
    "image_mse",
    "kl_balance_loss",
    "preprocess_image",
    "sample_onehot",
    "symexp",
    "symlog",
    "symlog_mse",
    "unimix_logits",
]
