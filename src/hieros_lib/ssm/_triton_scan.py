"""Triton kernel for the resettable first-order linear scan (the ``backend="triton"`` path).

This module imports :mod:`triton` at its top and is therefore only ever imported lazily, by the
``linear_scan`` dispatcher or by code that asks for this backend; ``import hieros_lib.ssm`` never loads it.

The recurrence, per batch element ``b`` and channel ``p``:

.. math::

    x_t = \\bar a_t\\, x_{t-1} + b_t, \\qquad x_{-1} = h_0, \\qquad
    \\bar a_t = (1 - d_t)\\, a_t,

where ``d_t`` is the reset (start) flag, so a reset is the plain scan with ``a_t = 0``; no three-tuple
operator is needed. ``a`` is ``(P,)`` (time- and batch-invariant, read once per program) or ``(B, T, P)``;
the reset-masked ``a`` and the broadcast of a ``(P,)`` ``a`` are formed in registers, never in memory.

Kernel structure (forward): one program per ``(batch element, block of BLOCK_P channels)``; it walks the
time axis in chunks of ``BLOCK_T`` steps, scans each chunk with ``tl.associative_scan`` under the operator
``(a_l, b_l) . (a_r, b_r) = (a_r a_l, a_r b_l + b_r)`` and applies the carried state:
``x_t = A_t * carry + B_t``, where ``(A_t, B_t)`` is the chunk-local prefix. Every input element is read
once and every state written once (about 16 bytes per complex64 element). Complex numbers are handled as
interleaved float pairs (``torch.view_as_real``, no copy); arithmetic is fp32 (fp64 for float64 /
complex128 inputs) whatever the input dtype, so bf16 / fp16 ``b`` accumulates in fp32.

Backward is the adjoint scan, run in reverse time with ``a`` shifted by one step:

.. math::

    g_t = \\partial L / \\partial x_t + \\overline{\\bar a_{t+1}}\\, g_{t+1}, \\qquad
    g_{T-1} = \\partial L / \\partial x_{T-1} + \\partial L / \\partial x_{\\text{final}},

    \\partial L / \\partial b_t = g_t, \\qquad
    \\partial L / \\partial a_t = (1 - d_t)\\, g_t\\, \\overline{x_{t-1}}, \\qquad
    \\partial L / \\partial h_0 = \\overline{\\bar a_0}\\, g_0

(PyTorch's conjugate-Wirtinger convention; the bars are conjugates, a no-op for real inputs). Each backward
chunk is loaded in reversed time order and scanned forward with the same operator, so no reverse scan
primitive is needed. For a ``(P,)`` ``a`` its gradient is reduced over time in registers, written per
``(batch element, channel)`` and summed over the batch by PyTorch.

Interpreter mode: ``triton.jit`` reads ``TRITON_INTERPRET`` when it decorates a function. The kernels are
therefore built on first use, once per mode, so that setting ``TRITON_INTERPRET=1`` any time before a call
(for example in a test fixture, within one process) runs them on the CPU through Triton's interpreter.

The loop over chunks is software-pipelined (``tl.range(num_stages=...)``): the loads of the next chunks
are in flight, as asynchronous copies into shared memory, while the current chunk is scanned.

Limits: block sizes and pipeline depth come from a simple heuristic, not auto-tuned, and their speed
has not been measured yet (no GPU was available when the kernel was written; the tests check it under
the interpreter and compile it for sm_90). One program per ``(b, channel block)`` walks all of ``T``, so
a small ``B * P`` (a few hundred programs or fewer) leaves a large GPU under-occupied: time is not split
across programs. Mixed real / complex inputs are promoted to complex before the kernel (a copy of the
real one); float64 / complex128 run unpipelined.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any

import torch
import triton
import triton.language as tl

__all__ = ["triton_linear_scan"]


# ----------------------------------------------------------------------------------------------------
# Kernels (built lazily, once per interpreter mode; see the module docstring).
# ----------------------------------------------------------------------------------------------------


def _combine_complex_fn(ar_l, ai_l, br_l, bi_l, ar_r, ai_r, br_r, bi_r):  # type: ignore[no-untyped-def]
    # Apply the left (earlier) element, then the right one: x -> a_r (a_l x + b_l) + b_r.
    ar = ar_r * ar_l - ai_r * ai_l
    ai = ar_r * ai_l + ai_r * ar_l
    br = ar_r * br_l - ai_r * bi_l + br_r
    bi = ar_r * bi_l + ai_r * br_l + bi_r
    return ar, ai, br, bi


def _combine_real_fn(a_l, b_l, a_r, b_r):  # type: ignore[no-untyped-def]
    return a_r * a_l, a_r * b_l + b_r


def _add_fn(x, y):  # type: ignore[no-untyped-def]
    return x + y


# Always compiled-mode JIT functions: the compiled kernels call them, and the interpreter's scan and
# reduce call their plain Python ``.fn``, so one object serves both modes. The kernels use only
# ``tl`` builtins plus these (no ``@jit`` helpers of ``triton.language.standard`` such as ``tl.sum`` or
# ``tl.zeros``, whose mode is fixed when triton is imported), so the interpreter works whether
# ``TRITON_INTERPRET`` was set before or after ``import triton``.
_combine_complex = triton.JITFunction(_combine_complex_fn)
_combine_real = triton.JITFunction(_combine_real_fn)
_add = triton.JITFunction(_add_fn)


def _fwd_kernel(  # type: ignore[no-untyped-def]
    a_ptr,
    b_ptr,
    r_ptr,
    h_ptr,
    x_ptr,
    f_ptr,
    T,
    P,
    s_ab,
    s_at,
    s_ap,
    s_bb,
    s_bt,
    s_bp,
    s_rb,
    s_rt,
    s_hb,
    s_hp,
    s_xb,
    s_xt,
    s_xp,
    s_fb,
    s_fp,
    IS_COMPLEX: tl.constexpr,
    A_PER_STEP: tl.constexpr,
    HAS_RESET: tl.constexpr,
    HAS_H0: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_P: tl.constexpr,
    NUM_STAGES: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < P
    rows = tl.arange(0, BLOCK_T)
    a_base = a_ptr + pid_b * s_ab
    b_base = b_ptr + pid_b * s_bb
    x_base = x_ptr + pid_b * s_xb
    r_base = r_ptr + pid_b * s_rb

    # Time-invariant a: read once per program.
    a_re = tl.load(a_ptr + offs_p * s_ap, mask=mask_p, other=1.0).to(ACC)
    a_im = tl.full([BLOCK_P], 0.0, dtype=ACC)
    if IS_COMPLEX:
        a_im = tl.load(a_ptr + offs_p * s_ap + 1, mask=mask_p, other=0.0).to(ACC)

    c_re = tl.full([BLOCK_P], 0.0, dtype=ACC)
    c_im = tl.full([BLOCK_P], 0.0, dtype=ACC)
    if HAS_H0:
        c_re = tl.load(h_ptr + pid_b * s_hb + offs_p * s_hp, mask=mask_p, other=0.0).to(ACC)
        if IS_COMPLEX:
            c_im = tl.load(h_ptr + pid_b * s_hb + offs_p * s_hp + 1, mask=mask_p, other=0.0).to(ACC)

    for start in tl.range(0, T, BLOCK_T, num_stages=NUM_STAGES):
        t = (start + rows).to(tl.int64)
        mask_t = t < T
        m2 = mask_t[:, None] & mask_p[None, :]
        off_b = t[:, None] * s_bt + offs_p[None, :] * s_bp
        br = tl.load(b_base + off_b, mask=m2, other=0.0).to(ACC)
        if A_PER_STEP:
            off_a = t[:, None] * s_at + offs_p[None, :] * s_ap
            ar = tl.load(a_base + off_a, mask=m2, other=1.0).to(ACC)
        else:
            ar = tl.broadcast_to(a_re[None, :], (BLOCK_T, BLOCK_P))
        if HAS_RESET:
            keep = tl.load(r_base + t * s_rt, mask=mask_t, other=0) == 0
            ar = tl.where(keep[:, None], ar, 0.0)
        # The last valid row of this chunk holds the state to carry into the next one.
        last = tl.minimum(T - start, BLOCK_T) - 1
        sel = rows[:, None] == last
        off_x = t[:, None] * s_xt + offs_p[None, :] * s_xp
        if IS_COMPLEX:
            bi = tl.load(b_base + off_b + 1, mask=m2, other=0.0).to(ACC)
            if A_PER_STEP:
                ai = tl.load(a_base + off_a + 1, mask=m2, other=0.0).to(ACC)
            else:
                ai = tl.broadcast_to(a_im[None, :], (BLOCK_T, BLOCK_P))
            if HAS_RESET:
                ai = tl.where(keep[:, None], ai, 0.0)
            pa_re, pa_im, pb_re, pb_im = tl.associative_scan(
                (ar, ai, br, bi), axis=0, combine_fn=_combine_complex
            )
            x_re = pa_re * c_re[None, :] - pa_im * c_im[None, :] + pb_re
            x_im = pa_re * c_im[None, :] + pa_im * c_re[None, :] + pb_im
            tl.store(x_base + off_x, x_re.to(x_ptr.dtype.element_ty), mask=m2)
            tl.store(x_base + off_x + 1, x_im.to(x_ptr.dtype.element_ty), mask=m2)
            c_re = tl.reduce(tl.where(sel, x_re, 0.0), 0, _add)
            c_im = tl.reduce(tl.where(sel, x_im, 0.0), 0, _add)
        else:
            pa, pb = tl.associative_scan((ar, br), axis=0, combine_fn=_combine_real)
            x_re = pa * c_re[None, :] + pb
            tl.store(x_base + off_x, x_re.to(x_ptr.dtype.element_ty), mask=m2)
            c_re = tl.reduce(tl.where(sel, x_re, 0.0), 0, _add)

    f_off = pid_b * s_fb + offs_p * s_fp
    tl.store(f_ptr + f_off, c_re.to(f_ptr.dtype.element_ty), mask=mask_p)
    if IS_COMPLEX:
        tl.store(f_ptr + f_off + 1, c_im.to(f_ptr.dtype.element_ty), mask=mask_p)


def _bwd_kernel(  # type: ignore[no-untyped-def]
    a_ptr,
    r_ptr,
    h_ptr,
    x_ptr,
    dx_ptr,
    df_ptr,
    db_ptr,
    da_ptr,
    dh_ptr,
    T,
    P,
    s_ab,
    s_at,
    s_ap,
    s_rb,
    s_rt,
    s_hb,
    s_hp,
    s_xb,
    s_xt,
    s_xp,
    s_gb,
    s_gt,
    s_gp,
    s_fb,
    s_fp,
    s_dbb,
    s_dbt,
    s_dbp,
    s_dab,
    s_dat,
    s_dap,
    s_dhb,
    s_dhp,
    IS_COMPLEX: tl.constexpr,
    A_PER_STEP: tl.constexpr,
    HAS_RESET: tl.constexpr,
    HAS_H0: tl.constexpr,
    HAS_DX: tl.constexpr,
    HAS_DF: tl.constexpr,
    NEED_DA: tl.constexpr,
    NEED_DH: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_P: tl.constexpr,
    NUM_STAGES: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < P
    rows = tl.arange(0, BLOCK_T)
    a_base = a_ptr + pid_b * s_ab
    r_base = r_ptr + pid_b * s_rb
    x_base = x_ptr + pid_b * s_xb
    g_base = dx_ptr + pid_b * s_gb
    db_base = db_ptr + pid_b * s_dbb
    da_base = da_ptr + pid_b * s_dab

    a_re = tl.load(a_ptr + offs_p * s_ap, mask=mask_p, other=1.0).to(ACC)
    a_im = tl.full([BLOCK_P], 0.0, dtype=ACC)
    if IS_COMPLEX:
        a_im = tl.load(a_ptr + offs_p * s_ap + 1, mask=mask_p, other=0.0).to(ACC)
    h_re = tl.full([BLOCK_P], 0.0, dtype=ACC)
    h_im = tl.full([BLOCK_P], 0.0, dtype=ACC)
    if HAS_H0:
        h_re = tl.load(h_ptr + pid_b * s_hb + offs_p * s_hp, mask=mask_p, other=0.0).to(ACC)
        if IS_COMPLEX:
            h_im = tl.load(h_ptr + pid_b * s_hb + offs_p * s_hp + 1, mask=mask_p, other=0.0).to(ACC)

    # The carried adjoint enters the last step as the gradient of the final state.
    c_re = tl.full([BLOCK_P], 0.0, dtype=ACC)
    c_im = tl.full([BLOCK_P], 0.0, dtype=ACC)
    if HAS_DF:
        c_re = tl.load(df_ptr + pid_b * s_fb + offs_p * s_fp, mask=mask_p, other=0.0).to(ACC)
        if IS_COMPLEX:
            c_im = tl.load(df_ptr + pid_b * s_fb + offs_p * s_fp + 1, mask=mask_p, other=0.0).to(ACC)
    da_re_acc = tl.full([BLOCK_P], 0.0, dtype=ACC)
    da_im_acc = tl.full([BLOCK_P], 0.0, dtype=ACC)

    n_chunks = (T + BLOCK_T - 1) // BLOCK_T
    for i in tl.range(0, n_chunks, num_stages=NUM_STAGES):
        start = (n_chunks - 1 - i) * BLOCK_T
        # Row 0 is the latest time step of the chunk: the chunk is scanned forward in row order.
        t = (start + BLOCK_T - 1 - rows).to(tl.int64)
        mask_t = t < T
        m2 = mask_t[:, None] & mask_p[None, :]
        # Shifted gate: conj(a_bar[t + 1]), the identity past the end of the sequence.
        tn = t + 1
        mask_n = tn < T
        mn2 = mask_n[:, None] & mask_p[None, :]
        if A_PER_STEP:
            off_an = tn[:, None] * s_at + offs_p[None, :] * s_ap
            ar = tl.load(a_base + off_an, mask=mn2, other=1.0).to(ACC)
        else:
            ar = tl.where(mask_n[:, None], a_re[None, :], 1.0)
        if HAS_RESET:
            keep_n = tl.load(r_base + tn * s_rt, mask=mask_n, other=0) == 0
            ar = tl.where(keep_n[:, None], ar, 0.0)
        off_g = t[:, None] * s_gt + offs_p[None, :] * s_gp
        off_db = t[:, None] * s_dbt + offs_p[None, :] * s_dbp
        gr = tl.full([BLOCK_T, BLOCK_P], 0.0, dtype=ACC)
        if HAS_DX:
            gr = tl.load(g_base + off_g, mask=m2, other=0.0).to(ACC)
        # Previous state x[t - 1] (h0 at t = 0), for the gradient of a.
        tp = t - 1
        mp2 = ((tp >= 0) & mask_t)[:, None] & mask_p[None, :]
        off_xp = tp[:, None] * s_xt + offs_p[None, :] * s_xp
        if NEED_DA:
            if HAS_RESET:  # noqa: SIM108 (Triton kernels keep if-blocks on constexprs)
                keep = tl.load(r_base + t * s_rt, mask=mask_t, other=1) == 0
            else:
                keep = mask_t
            keep2 = keep[:, None] & m2
            xr = tl.load(x_base + off_xp, mask=mp2, other=0.0).to(ACC)
            xr = tl.where((t == 0)[:, None], h_re[None, :], xr)
            if A_PER_STEP:
                off_da = t[:, None] * s_dat + offs_p[None, :] * s_dap

        if IS_COMPLEX:
            if A_PER_STEP:
                ai = -tl.load(a_base + off_an + 1, mask=mn2, other=0.0).to(ACC)
            else:
                ai = tl.where(mask_n[:, None], -a_im[None, :], 0.0)
            if HAS_RESET:
                ai = tl.where(keep_n[:, None], ai, 0.0)
            gi = tl.full([BLOCK_T, BLOCK_P], 0.0, dtype=ACC)
            if HAS_DX:
                gi = tl.load(g_base + off_g + 1, mask=m2, other=0.0).to(ACC)
            pa_re, pa_im, pg_re, pg_im = tl.associative_scan(
                (ar, ai, gr, gi), axis=0, combine_fn=_combine_complex
            )
            g_re = pa_re * c_re[None, :] - pa_im * c_im[None, :] + pg_re
            g_im = pa_re * c_im[None, :] + pa_im * c_re[None, :] + pg_im
            tl.store(db_base + off_db, g_re.to(db_ptr.dtype.element_ty), mask=m2)
            tl.store(db_base + off_db + 1, g_im.to(db_ptr.dtype.element_ty), mask=m2)
            if NEED_DA:
                xi = tl.load(x_base + off_xp + 1, mask=mp2, other=0.0).to(ACC)
                xi = tl.where((t == 0)[:, None], h_im[None, :], xi)
                # g * conj(x_prev), zero where the step was reset.
                da_re = tl.where(keep2, g_re * xr + g_im * xi, 0.0)
                da_im = tl.where(keep2, g_im * xr - g_re * xi, 0.0)
                if A_PER_STEP:
                    tl.store(da_base + off_da, da_re.to(da_ptr.dtype.element_ty), mask=m2)
                    tl.store(da_base + off_da + 1, da_im.to(da_ptr.dtype.element_ty), mask=m2)
                else:
                    da_re_acc += tl.reduce(da_re, 0, _add)
                    da_im_acc += tl.reduce(da_im, 0, _add)
            # The earliest row (always a valid step) carries the adjoint into the previous chunk.
            c_re = tl.reduce(tl.where(rows[:, None] == BLOCK_T - 1, g_re, 0.0), 0, _add)
            c_im = tl.reduce(tl.where(rows[:, None] == BLOCK_T - 1, g_im, 0.0), 0, _add)
        else:
            pa, pg = tl.associative_scan((ar, gr), axis=0, combine_fn=_combine_real)
            g_re = pa * c_re[None, :] + pg
            tl.store(db_base + off_db, g_re.to(db_ptr.dtype.element_ty), mask=m2)
            if NEED_DA:
                da_re = tl.where(keep2, g_re * xr, 0.0)
                if A_PER_STEP:
                    tl.store(da_base + off_da, da_re.to(da_ptr.dtype.element_ty), mask=m2)
                else:
                    da_re_acc += tl.reduce(da_re, 0, _add)
            c_re = tl.reduce(tl.where(rows[:, None] == BLOCK_T - 1, g_re, 0.0), 0, _add)

    if NEED_DA and not A_PER_STEP:
        # Per-(batch element, channel) partial sums; the batch reduction happens outside.
        off_part = pid_b * s_dab + offs_p * s_dap
        tl.store(da_ptr + off_part, da_re_acc.to(da_ptr.dtype.element_ty), mask=mask_p)
        if IS_COMPLEX:
            tl.store(da_ptr + off_part + 1, da_im_acc.to(da_ptr.dtype.element_ty), mask=mask_p)

    if NEED_DH:
        # dL/dh0 = conj(a_bar[0]) * g[0]; g[0] is the carry after the first chunk.
        if A_PER_STEP:  # noqa: SIM108
            a0_re = tl.load(a_base + offs_p * s_ap, mask=mask_p, other=0.0).to(ACC)
        else:
            a0_re = a_re
        if HAS_RESET:
            keep0 = tl.load(r_base) == 0
            a0_re = tl.where(keep0, a0_re, 0.0)
        dh_off = pid_b * s_dhb + offs_p * s_dhp
        if IS_COMPLEX:
            if A_PER_STEP:
                a0_im = tl.load(a_base + offs_p * s_ap + 1, mask=mask_p, other=0.0).to(ACC)
            else:
                a0_im = a_im
            if HAS_RESET:
                a0_im = tl.where(keep0, a0_im, 0.0)
            dh_re = a0_re * c_re + a0_im * c_im
            dh_im = a0_re * c_im - a0_im * c_re
            tl.store(dh_ptr + dh_off, dh_re.to(dh_ptr.dtype.element_ty), mask=mask_p)
            tl.store(dh_ptr + dh_off + 1, dh_im.to(dh_ptr.dtype.element_ty), mask=mask_p)
        else:
            tl.store(dh_ptr + dh_off, (a0_re * c_re).to(dh_ptr.dtype.element_ty), mask=mask_p)


def _build_kernels() -> dict[str, Any]:
    return {"fwd": triton.jit(_fwd_kernel), "bwd": triton.jit(_bwd_kernel)}


_KERNELS: dict[bool, dict[str, Any]] = {}

# Loads of the next chunks in flight while the current one is scanned (``tl.range(num_stages=...)``):
# the compiler turns them into asynchronous copies into shared memory.
_NUM_STAGES = 3


def _kernels() -> dict[str, Any]:
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if interpret not in _KERNELS:
        _KERNELS[interpret] = _build_kernels()
    return _KERNELS[interpret]


# ----------------------------------------------------------------------------------------------------
# Host side.
# ----------------------------------------------------------------------------------------------------


def _floats(x: torch.Tensor) -> torch.Tensor:
    """A real view of ``x``: complex tensors become ``(..., 2)`` float pairs (no copy)."""
    if x.is_complex():
        return torch.view_as_real(x.resolve_conj())
    return x


def _strides(x: torch.Tensor, dims: int) -> list[int]:
    """The strides (in real elements) of the first ``dims`` logical dimensions of ``x``."""
    return list(_floats(x).stride()[:dims])


@functools.lru_cache(maxsize=256)
def _blocks(
    batch: int, length: int, channels: int, device: torch.device, wide: bool = False
) -> tuple[int, int, int, int]:
    """Heuristic ``(BLOCK_T, BLOCK_P, num_warps, num_stages)``; not auto-tuned.

    On a GPU: wide channel blocks (coalesced rows) as long as there are enough programs to fill the
    device, about 2048 elements per chunk. Under the interpreter (CPU tensors): tiles of at most
    32 x 32, so that short test sequences already span several chunks and channel blocks. ``wide``:
    float64 accumulation (twice the shared memory per pipeline stage, so no pipelining).
    """
    if device.type != "cuda":
        block_p = min(32, triton.next_power_of_2(max(channels, 1)))
        block_t = min(32, triton.next_power_of_2(max(length, 1)))
        return max(block_t, 2), max(block_p, 2), 4, 1
    props = torch.cuda.get_device_properties(device)
    sms = props.multi_processor_count
    block_p = 64
    while block_p > 16 and batch * triton.cdiv(channels, block_p) < 2 * sms:
        block_p //= 2
    block_p = min(block_p, max(16, triton.next_power_of_2(channels)))
    block_t = max(16, min(2048 // block_p, triton.next_power_of_2(max(length, 1))))
    # Pipelined chunks keep up to ~32 KiB of loads per stage in shared memory (the backward with a
    # per-step ``a`` needs ~128 KiB at 3 stages): fewer stages where a block may use less.
    index = device.index if device.index is not None else torch.cuda.current_device()
    smem = triton.runtime.driver.active.utils.get_device_properties(index)["max_shared_mem"]
    stages = _NUM_STAGES if smem >= 160 * 1024 else (2 if smem >= 96 * 1024 else 1)
    if wide:
        stages = 1
    return block_t, block_p, 8 if block_t * block_p >= 2048 else 4, stages


def _on_device(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Launch on the tensors' GPU (Triton launches on the current CUDA device)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _acc_dtype(real_dtype: torch.dtype) -> Any:
    return tl.float64 if real_dtype == torch.float64 else tl.float32


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype.to_real() if dtype.is_complex else dtype


class _TritonLinearScan(torch.autograd.Function):
    """Forward kernel + adjoint (reverse, shifted-``a``) kernel. Inputs share complex-ness."""

    @staticmethod
    def forward(
        ctx: Any,
        a: torch.Tensor,
        b: torch.Tensor,
        reset: torch.Tensor | None,
        initial_state: torch.Tensor | None,
        out_dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, P = b.shape
        is_complex = b.is_complex()
        states = torch.empty((B, T, P), dtype=out_dtype, device=b.device)
        final = torch.empty((B, P), dtype=out_dtype, device=b.device)
        a_per_step = a.dim() == 3
        _launch_forward(a, b, reset, initial_state, states, final, is_complex, a_per_step)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(a, reset, initial_state, states)
        ctx.b_dtype = b.dtype
        ctx.shape = (B, T, P)
        return states, final

    @staticmethod
    def backward(
        ctx: Any, d_states: torch.Tensor | None, d_final: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        a, reset, initial_state, states = ctx.saved_tensors
        if d_states is None and d_final is None:
            return None, None, None, None, None
        B, T, P = ctx.shape
        need_da = ctx.needs_input_grad[0]
        need_dh = initial_state is not None and ctx.needs_input_grad[3]
        a_per_step = a.dim() == 3
        is_complex = states.is_complex()
        db = torch.empty((B, T, P), dtype=ctx.b_dtype, device=states.device)
        acc_real = torch.float64 if _real_dtype(states.dtype) == torch.float64 else torch.float32
        if need_da and a_per_step:
            da = torch.empty_like(a, memory_format=torch.contiguous_format)
        elif need_da:
            # Per-(batch element, channel) partial sums in the accumulation dtype.
            part_dtype = acc_real.to_complex() if is_complex else acc_real
            da = torch.empty((B, P), dtype=part_dtype, device=a.device)
        else:
            da = db  # never written
        dh = torch.empty_like(initial_state, memory_format=torch.contiguous_format) if need_dh else db
        _launch_backward(
            a,
            reset,
            initial_state,
            states,
            d_states,
            d_final,
            db,
            da,
            dh,
            is_complex,
            a_per_step,
            need_da,
            need_dh,
        )
        grad_a = None
        if need_da:
            grad_a = da if a_per_step else da.sum(0).to(a.dtype)
        return grad_a, db, None, (dh if need_dh else None), None


def _launch_forward(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    h0: torch.Tensor | None,
    states: torch.Tensor,
    final: torch.Tensor,
    is_complex: bool,
    a_per_step: bool,
) -> None:
    B, T, P = b.shape
    block_t, block_p, warps, stages = _blocks(B, T, P, b.device, _real_dtype(states.dtype) == torch.float64)
    a_f = _floats(a)
    s_a = a_f.stride()
    a_strides = [s_a[0], s_a[1], s_a[2]] if a_per_step else [0, 0, s_a[0]]
    r = reset.view(torch.uint8) if reset is not None else _floats(states)
    r_strides = list(r.stride()[:2]) if reset is not None else [0, 0]
    h = _floats(h0) if h0 is not None else _floats(states)
    h_strides = _strides(h0, 2) if h0 is not None else [0, 0]
    grid = (B, triton.cdiv(P, block_p))
    with _on_device(states.device):
        _kernels()["fwd"][grid](
            a_f,
            _floats(b),
            r,
            h,
            _floats(states),
            _floats(final),
            T,
            P,
            *a_strides,
            *_strides(b, 3),
            *r_strides,
            *h_strides,
            *_strides(states, 3),
            *_strides(final, 2),
            IS_COMPLEX=is_complex,
            A_PER_STEP=a_per_step,
            HAS_RESET=reset is not None,
            HAS_H0=h0 is not None,
            ACC=_acc_dtype(_real_dtype(states.dtype)),
            BLOCK_T=block_t,
            BLOCK_P=block_p,
            NUM_STAGES=stages,
            num_warps=warps,
        )


def _launch_backward(
    a: torch.Tensor,
    reset: torch.Tensor | None,
    h0: torch.Tensor | None,
    states: torch.Tensor,
    d_states: torch.Tensor | None,
    d_final: torch.Tensor | None,
    db: torch.Tensor,
    da: torch.Tensor,
    dh: torch.Tensor,
    is_complex: bool,
    a_per_step: bool,
    need_da: bool,
    need_dh: bool,
) -> None:
    B, T, P = states.shape
    block_t, block_p, warps, stages = _blocks(
        B, T, P, states.device, _real_dtype(states.dtype) == torch.float64
    )
    a_f = _floats(a)
    s_a = a_f.stride()
    a_strides = [s_a[0], s_a[1], s_a[2]] if a_per_step else [0, 0, s_a[0]]
    r = reset.view(torch.uint8) if reset is not None else _floats(states)
    r_strides = list(r.stride()[:2]) if reset is not None else [0, 0]
    h = _floats(h0) if h0 is not None else _floats(states)
    h_strides = _strides(h0, 2) if h0 is not None else [0, 0]
    if d_states is not None:
        d_states = d_states.to(states.dtype)
    if d_final is not None:
        d_final = d_final.to(states.dtype)
    dx = _floats(d_states) if d_states is not None else _floats(states)
    dx_strides = _strides(d_states, 3) if d_states is not None else [0, 0, 0]
    df = _floats(d_final) if d_final is not None else _floats(states)
    df_strides = _strides(d_final, 2) if d_final is not None else [0, 0]
    if need_da:
        da_f = _floats(da)
        s_da = da_f.stride()
        da_strides = [s_da[0], s_da[1], s_da[2]] if a_per_step else [s_da[0], 0, s_da[1]]
    else:
        da_f, da_strides = _floats(db), [0, 0, 0]
    dh_f, dh_strides = (_floats(dh), _strides(dh, 2)) if need_dh else (_floats(db), [0, 0])
    grid = (B, triton.cdiv(P, block_p))
    with _on_device(states.device):
        _kernels()["bwd"][grid](
            a_f,
            r,
            h,
            _floats(states),
            dx,
            df,
            _floats(db),
            da_f,
            dh_f,
            T,
            P,
            *a_strides,
            *r_strides,
            *h_strides,
            *_strides(states, 3),
            *dx_strides,
            *df_strides,
            *_strides(db, 3),
            *da_strides,
            *dh_strides,
            IS_COMPLEX=is_complex,
            A_PER_STEP=a_per_step,
            HAS_RESET=reset is not None,
            HAS_H0=h0 is not None,
            HAS_DX=d_states is not None,
            HAS_DF=d_final is not None,
            NEED_DA=need_da,
            NEED_DH=need_dh,
            ACC=_acc_dtype(_real_dtype(states.dtype)),
            BLOCK_T=block_t,
            BLOCK_P=block_p,
            NUM_STAGES=stages,
            num_warps=warps,
        )


def triton_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resettable linear scan ``x[t] = (1 - reset[:, t]) * a[t] * x[t-1] + b[t]`` as a Triton kernel.

    Arguments are already validated by the dispatcher (``hieros_lib.ssm.linear_scan``); call that instead.

    Args:
        a: ``(P,)`` or ``(B, T, P)``, real or complex, on the device of ``b``.
        b: ``(B, T, P)``, real (float32 / float64 / bfloat16 / float16) or complex (complex64 /
            complex128). Low-precision ``b`` is accumulated in fp32.
        reset: ``(B, T)`` bool start flags, or ``None``: where true, the state entering step ``t`` is
            zero, so ``x[t] = b[t]`` there.
        initial_state: ``(B, P)`` state entering ``t = 0`` (zeros if ``None``).

    Returns:
        ``(states, final_state)``: ``(B, T, P)`` and ``(B, P)``, in the promoted dtype of ``a``, ``b``
        and ``initial_state``. Differentiable in ``a`` (per element, or reduced to ``(P,)``), ``b`` and
        ``initial_state``.
    """
    B, T, P = b.shape
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    if initial_state is not None:
        out_dtype = torch.promote_types(out_dtype, initial_state.dtype)
    if out_dtype.is_complex:
        # Mixed real / complex: promote the real one (differentiable, gives real gradients back).
        if not a.is_complex():
            a = a.to(out_dtype)
        if not b.is_complex():
            b = b.to(out_dtype)
        if initial_state is not None and not initial_state.is_complex():
            initial_state = initial_state.to(out_dtype)
    if B == 0 or T == 0 or P == 0:
        # Nothing to launch: fall back to plain tensor ops (still differentiable).
        states = (b * 0).to(out_dtype)
        if initial_state is None:
            final = torch.zeros((B, P), dtype=out_dtype, device=b.device)
        else:
            final = initial_state.to(out_dtype)
        if T > 0 and P > 0:
            final = states[:, -1]
        return states, final
    if reset is not None and reset.dtype != torch.bool:
        reset = reset != 0
    result: tuple[torch.Tensor, torch.Tensor] = _TritonLinearScan.apply(a, b, reset, initial_state, out_dtype)
    return result
