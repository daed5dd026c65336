"""Resettable first-order linear scans: validation, the sequential reference and the backend dispatcher.

The recurrence is ``x[t] = a[t] * x[t-1] + b[t]`` with ``x[-1] = initial_state`` (zeros when ``None``); where
``reset[:, t]`` is true the carried state is replaced by zeros first, so ``x[t] = b[t]`` there.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Literal

import torch

from hieros_lib.errors import HierosError, check

__all__ = ["Backend", "linear_scan", "linear_scan_sequential"]

Backend = Literal["auto", "sequential", "parallel", "triton"]
_BACKENDS = ("auto", "sequential", "parallel", "triton")

# The (real) precision of every dtype the scan accepts, for the "same precision" check.
_PRECISION: dict[torch.dtype, torch.dtype] = {
    torch.float32: torch.float32,
    torch.complex64: torch.float32,
    torch.float64: torch.float64,
    torch.complex128: torch.float64,
}

# Low-precision ``b`` (accumulated in float32; ``a`` and ``initial_state`` must then be float32 / complex64).
_LOW_PRECISION = (torch.bfloat16, torch.float16)

# ``backend="auto"`` on CPU uses the sequential loop for sequences shorter than this, and the chunked parallel
# scan from here on. Measured with ``benchmarks/bench_scan.py`` (forward + backward); see docs/benchmarks.md.
AUTO_PARALLEL_MIN_T = 16


def _validate(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.dtype]:
    """Check shapes, dtypes and devices; return ``(a, b, reset, initial_state, dtype)``.

    ``a`` and ``initial_state`` come back in the common dtype ``dtype``; ``b`` is returned as given (the
    Triton kernel reads low-precision or real ``b`` directly; the PyTorch backends cast it).
    """
    check(isinstance(b, torch.Tensor), "b", "a tensor of shape (B, T, P)", got=type(b).__name__)
    check(
        isinstance(a, torch.Tensor), "a", "a tensor of shape (P,), (B, P) or (B, T, P)", got=type(a).__name__
    )
    check(b.dim() == 3, "b", "a tensor of shape (B, T, P)", got=f"shape {tuple(b.shape)}")
    batch, length, width = b.shape
    check(
        batch >= 1 and length >= 1 and width >= 1,
        "b",
        "a non-empty (B, T, P) tensor",
        got=f"shape {tuple(b.shape)}",
    )
    check(
        b.dtype in _PRECISION or b.dtype in _LOW_PRECISION,
        "b",
        "dtype float32, float64, complex64, complex128 (or bfloat16 / float16, accumulated in float32)",
        got=b.dtype,
    )
    precision = _PRECISION.get(b.dtype, torch.float32)
    expected_a = f"shape (P,), (B, P) or (B, T, P) with B={batch}, T={length}, P={width}"
    check(
        tuple(a.shape) in ((width,), (batch, width), (batch, length, width)),
        "a",
        expected_a,
        got=f"shape {tuple(a.shape)}",
    )
    check(a.device == b.device, "a", f"a tensor on the device of b ({b.device})", got=a.device)
    check(
        a.dtype in _PRECISION and _PRECISION[a.dtype] == precision,
        "a",
        f"a real or complex dtype of the precision of b ({precision})",
        got=a.dtype,
    )
    # bfloat16 / float16 ``b`` is accumulated (and returned) in float32.
    dtype = torch.promote_types(a.dtype, b.dtype if b.dtype in _PRECISION else torch.float32)
    if initial_state is not None:
        check(
            isinstance(initial_state, torch.Tensor),
            "initial_state",
            f"a tensor of shape ({batch}, {width})",
            got=type(initial_state).__name__,
        )
        check(
            tuple(initial_state.shape) == (batch, width),
            "initial_state",
            f"a tensor of shape (B, P) = ({batch}, {width})",
            got=f"shape {tuple(initial_state.shape)}",
        )
        check(
            initial_state.device == b.device,
            "initial_state",
            f"a tensor on the device of b ({b.device})",
            got=initial_state.device,
        )
        check(
            initial_state.dtype in _PRECISION and _PRECISION[initial_state.dtype] == precision,
            "initial_state",
            f"a real or complex dtype of the precision of b ({precision})",
            got=initial_state.dtype,
        )
        dtype = torch.promote_types(dtype, initial_state.dtype)
    if reset is not None:
        check(
            isinstance(reset, torch.Tensor),
            "reset",
            f"a bool tensor of shape (B, T) = ({batch}, {length})",
            got=type(reset).__name__,
        )
        check(
            tuple(reset.shape) == (batch, length),
            "reset",
            f"a bool tensor of shape (B, T) = ({batch}, {length})",
            got=f"shape {tuple(reset.shape)}",
        )
        check(reset.dtype == torch.bool, "reset", "dtype torch.bool", got=reset.dtype)
        check(
            reset.device == b.device, "reset", f"a tensor on the device of b ({b.device})", got=reset.device
        )
    a = a.to(dtype)
    if initial_state is not None:
        initial_state = initial_state.to(dtype)
    return a, b, reset, initial_state, dtype


def linear_scan_sequential(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: a plain loop over time, differentiated by autograd. Inputs are already validated."""
    batch, length, width = b.shape
    x = initial_state if initial_state is not None else b.new_zeros(batch, width)
    # unbind (not b[:, t]) so that autograd does not build a full-size gradient for every step.
    b_steps = b.unbind(1)
    a_steps = a.unbind(1) if a.dim() == 3 else (a,) * length
    states = []
    for t in range(length):
        if reset is not None:
            x = torch.where(reset[:, t, None], torch.zeros_like(x), x)
        x = a_steps[t] * x + b_steps[t]
        states.append(x)
    return torch.stack(states, dim=1), x


def _triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def _linear_scan_triton(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    check(
        b.is_cuda or interpret,
        "b",
        "a CUDA tensor for backend='triton' (the GPU kernel: `pip install hieros-lib[triton]`; "
        "TRITON_INTERPRET=1 runs it on CPU)",
        got=b.device,
    )
    if not _triton_importable():
        raise HierosError(
            "backend: 'triton' needs the triton package; install it with `pip install hieros-lib[triton]`"
        )
    try:
        module = importlib.import_module("hieros_lib.ssm._triton_scan")
    except ImportError as err:
        raise HierosError(
            "backend: the 'triton' scan could not be imported; install its dependency with "
            f"`pip install hieros-lib[triton]` ({err})"
        ) from err
    if a.dim() == 2:  # (B, P): the kernel takes (P,) or (B, T, P), and reads stride-0 views without a copy
        a = a[:, None, :].expand(b.shape[0], b.shape[1], a.shape[1])
    states, final_state = module.triton_linear_scan(a, b, reset, initial_state)
    return states, final_state


def linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    reset: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Solve the resettable first-order linear recurrence ``x[t] = a[t] * x[t-1] + b[t]`` over time.

    .. math::

        x_t = a_t \odot (1 - d_t)\, x_{t-1} + b_t, \qquad x_{-1} = h_0,

    where :math:`d_t` is ``reset[:, t]`` (a start flag: the state *entering* step ``t`` is the zero state)
    and :math:`h_0` is ``initial_state`` (zeros when ``None``). A reset at ``t = 0`` discards ``h_0``.
    Real and complex tensors are supported; ``a``, ``b`` and ``initial_state`` are promoted to one dtype
    (they must share a precision: float32 with complex64, float64 with complex128).

    All backends are differentiable in ``a``, ``b`` and ``initial_state`` and compute the same function:

    * ``"sequential"``: the reference, a plain loop over time differentiated by autograd.
    * ``"parallel"``: pure PyTorch, chunked along time (a loop inside chunks vectorised over all chunks,
      a short loop carrying the state across chunks), with a hand-written reverse-scan adjoint.
    * ``"triton"``: the GPU kernel (needs ``pip install hieros-lib[triton]`` and CUDA tensors).
    * ``"auto"``: ``"triton"`` for CUDA tensors when triton is installed, otherwise the faster of
      ``"sequential"`` and ``"parallel"`` for the sequence length (measured thresholds, see
      ``docs/benchmarks.md``).

    Args:
        a: Decay, shape ``(P,)``, ``(B, P)`` or ``(B, T, P)`` (broadcast over batch and time).
        b: Input, shape ``(B, T, P)``, float32 / float64 / complex64 / complex128; bfloat16 / float16 is
            accepted with float32 ``a`` (accumulated and returned in float32; the Triton kernel reads it
            without a copy, the PyTorch backends cast it first).
        reset: Optional start flags, bool ``(B, T)``.
        initial_state: Optional ``x[-1]``, shape ``(B, P)``.
        backend: ``"auto"``, ``"sequential"``, ``"parallel"`` or ``"triton"``.

    Returns:
        ``(states, final_state)``: every state ``x[t]`` ``(B, T, P)`` and the last one ``(B, P)``.

    Raises:
        HierosError: If a shape, dtype or device is wrong, or the backend is unknown or unavailable.

    Examples:
        >>> import torch
        >>> a = torch.full((1,), 0.5)
        >>> b = torch.ones(1, 4, 1)
        >>> reset = torch.tensor([[False, False, True, False]])
        >>> states, final = linear_scan(a, b, reset=reset, backend="sequential")
        >>> states.flatten().tolist()
        [1.0, 1.5, 1.0, 1.5]
    """
    check(backend in _BACKENDS, "backend", f"one of {_BACKENDS}", got=repr(backend))
    a, b, reset, initial_state, dtype = _validate(a, b, reset, initial_state)
    if backend == "auto":
        if b.is_cuda and _triton_importable():
            backend = "triton"
        elif b.is_cuda or b.shape[1] >= AUTO_PARALLEL_MIN_T:
            backend = "parallel"
        else:
            backend = "sequential"
    if backend == "triton":
        return _linear_scan_triton(a, b, reset, initial_state)
    b = b.to(dtype)
    if backend == "sequential":
        return linear_scan_sequential(a, b, reset, initial_state)
    from hieros_lib.ssm._parallel import linear_scan_parallel

    return linear_scan_parallel(a, b, reset, initial_state)
