"""hieros-lib: reusable PyTorch components for sample-efficient model-based reinforcement learning.

The root package is deliberately tiny: importing it loads no subpackage. Import what you need::

    from hieros_lib.ssm import S5
    from hieros_lib.replay import ETBSampler

Subpackages (their layering is on the architecture page of the docs): :mod:`hieros_lib.ssm`,
:mod:`hieros_lib.replay`, :mod:`hieros_lib.nn`, :mod:`hieros_lib.world_models`, :mod:`hieros_lib.hrl`,
:mod:`hieros_lib.agents`, :mod:`hieros_lib.envs`, :mod:`hieros_lib.metrics`.
"""

from hieros_lib._version import __version__
from hieros_lib.errors import HierosError

__all__ = ["HierosError", "__version__"]
