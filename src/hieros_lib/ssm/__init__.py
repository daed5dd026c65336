"""``hieros_lib.ssm``: resettable linear scans and the S5 layer.

Public names:

* :func:`linear_scan`: ``x[t] = a[t] * x[t-1] + b[t]`` with resets and an initial state; backends
  ``"sequential"`` (reference), ``"parallel"`` (pure PyTorch), ``"triton"`` (GPU) and ``"auto"``.
"""

from hieros_lib.ssm._scan import linear_scan

__all__ = ["linear_scan"]
