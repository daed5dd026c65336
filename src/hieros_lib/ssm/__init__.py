"""``hieros_lib.ssm``: resettable linear scans and the S5 layer.

Public names:

* :func:`linear_scan`: ``x[t] = a[t] * x[t-1] + b[t]`` with resets and an initial state; backends
  ``"sequential"`` (reference), ``"parallel"`` (pure PyTorch), ``"triton"`` (GPU) and ``"auto"``.
* :class:`S5`: the S5 layer (HiPPO-N init, conjugate symmetry, ZOH / bilinear, resets, state carry,
  step mode).
* :class:`S5Block`, :class:`S5Stack`: norm, S5, activation, dropout, residual; a stack keeps one
  state per block.
* :func:`hippo_legs`, :func:`hippo_n`: the HiPPO-LegS matrix and the eigen-decomposition of its normal part.
"""

from hieros_lib.ssm._blocks import S5Block, S5Stack
from hieros_lib.ssm._init import hippo_legs, hippo_n
from hieros_lib.ssm._s5 import S5
from hieros_lib.ssm._scan import linear_scan

__all__ = ["S5", "S5Block", "S5Stack", "hippo_legs", "hippo_n", "linear_scan"]
