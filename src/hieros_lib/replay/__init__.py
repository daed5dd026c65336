"""``hieros_lib.replay``: sequence replay storage and samplers (uniform, TWM visit-count, ETBS).

A leaf package: it needs only numpy and torch. :class:`SequenceReplay` stores steps from parallel
environments and hands out ``(B, T, ...)`` sequences; which sequences is decided by a sampler behind the
small :class:`Sampler` protocol, which works on its own under any buffer.
"""

from hieros_lib.replay._samplers import ETBSampler, Sampler, TimeBalancedSampler, UniformSampler, etbs_cdf
from hieros_lib.replay._storage import REQUIRED_FIELDS, SequenceReplay

__all__ = [
    "REQUIRED_FIELDS",
    "ETBSampler",
    "Sampler",
    "SequenceReplay",
    "TimeBalancedSampler",
    "UniformSampler",
    "etbs_cdf",
]
