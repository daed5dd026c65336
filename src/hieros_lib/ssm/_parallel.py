"""The pure-PyTorch parallel scan: chunked along time, with a hand-written reverse-scan adjoint.

Time is cut into ``n`` chunks of ``L`` steps (the last one padded with ``b = 0``). With every tensor viewed as
``(B, n, L, P)``, one Python loop over the ``L`` positions inside a chunk advances *all* chunks at once, and
a short loop over the ``n`` chunks carries the true state across chunk borders. Two variants:

* ``a`` constant over time and no resets (``_scan_constant``): local scans of every chunk from a zero state,
  the carry loop, then one broadcast fix-up ``x[c, l] += a**(l+1) * carry[c]``: ``L + n`` operations;
* otherwise (``_scan_two_pass``): a first pass keeps only each chunk's running end state, the carry loop,
  then a second pass restarts every chunk from its carried state and writes every state: ``2 L + n``.

Either way that is ``O(sqrt(T))`` vectorised operations instead of ``T``, each over ``B * n * P`` elements,
and every state is computed by the recurrence itself (no division, no logarithm), so it is exact to
rounding for any ``|a|``. When one chunk suffices (short sequences, wide batches; see :func:`choose_chunk`)
only the loop over positions runs.

The backward pass is the adjoint recurrence, itself a (reverse) scan of the same kind, with PyTorch's
conjugate-Wirtinger convention for complex tensors::

    g[t] = dL/dx[t] + conj(a_eff[t+1]) * g[t+1],      a_eff[t] = a[t] * (1 - reset[t])
    dL/db[t] = g[t],   dL/da[t] = g[t] * conj(x[t-1]) * (1 - reset[t]),   dL/dx[-1] = conj(a_eff[0]) * g[0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.function import once_differentiable

__all__ = ["choose_chunk", "linear_scan_parallel"]

# Cost model behind the chunk length (tuned on the 2-core CPU with benchmarks/bench_scan.py): one vectorised
# op costs about ``_OP_COST`` element-steps of memory traffic on top of its elements. A single chunk (a plain
# loop of T ops) moves every element once; chunking moves it two to three times but needs only about
# ``L + n`` ops (``2 L + n`` when ``a`` varies over time).
_OP_COST = 16384
# Below this many elements the reset path materialises a_eff = a * (1 - reset) in one op.
_SMALL_ELEMENTS = 1 << 20


def choose_chunk(batch: int, length: int, width: int, *, varying: bool = False) -> int:
    """The chunk length ``L`` the parallel scan uses for a ``(B, T, P)`` problem (``L = T``: one chunk).

    A divisor of ``T`` near the optimum is preferred (no padding); otherwise time is zero-padded.

    Args:
        batch: ``B``.
        length: ``T``.
        width: ``P``.
        varying: Whether ``a`` varies over time (``(B, T, P)``), which costs two passes per chunk.

    Returns:
        The chunk length, between 1 and ``T``.

    Examples:
        >>> choose_chunk(4, 4096, 256)
        64
        >>> choose_chunk(16, 64, 1024)
        64
    """
    if length <= 3:
        return length
    passes = 2 if varying else 1
    target = max(2, round(math.sqrt(length / passes)))

    def ops(chunk: int) -> int:
        return passes * chunk + math.ceil(length / chunk)

    candidates = [c for c in range(max(2, target // 2), min(length, 2 * target) + 1) if length % c == 0]
    chunk = min(candidates, key=ops) if candidates else target
    elements = batch * length * width
    cost_loop = length * _OP_COST + elements
    cost_chunked = ops(chunk) * _OP_COST + (passes + 1) * elements
    return length if cost_loop <= cost_chunked else chunk


def _chunk_view(x: torch.Tensor, chunks: int, chunk: int, fill: float = 0.0) -> torch.Tensor:
    """``(B, T, ...)`` -> ``(B, n, L, ...)``, padding time to ``n * L`` with ``fill`` first."""
    pad = chunks * chunk - x.shape[1]
    if pad:
        x = torch.cat([x, x.new_full((x.shape[0], pad, *x.shape[2:]), fill)], dim=1)
    return x.reshape(x.shape[0], chunks, chunk, *x.shape[2:])


def _int_pow(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x ** n`` for an integer ``n >= 1`` by repeated squaring (exact for ``x = 0``, complex or real)."""
    result: torch.Tensor | None = None
    base = x
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    assert result is not None
    return result


def _addcmul_into(
    dest: torch.Tensor, base: torch.Tensor, x: torch.Tensor, y: torch.Tensor, compiling: bool
) -> None:
    """``dest[...] = base + x * y``, written in place into the strided view ``dest``.

    Eager mode writes straight into the view (``out=``, no temporary); under ``torch.compile``, which
    refuses a non-contiguous ``out=``, the result is copied in.
    """
    if compiling:
        dest.copy_(torch.addcmul(base, x, y))
    else:
        torch.addcmul(base, x, y, out=dest)


def _carry(
    run: torch.Tensor, total: torch.Tensor, initial_state: torch.Tensor | None, reverse: bool
) -> torch.Tensor:
    """The state entering every chunk, ``(B, n, P)``, from local end states and chunk products of ``a``."""
    batch, chunks, width = run.shape
    carry_in = run.new_empty(batch, chunks, width)
    state = initial_state if initial_state is not None else run.new_zeros(batch, width)
    for c in range(chunks - 1, -1, -1) if reverse else range(chunks):
        carry_in[:, c] = state
        state = torch.addcmul(run[:, c], total[:, c], state)
    return carry_in


def _fill_chunks(
    bv: torch.Tensor,
    a_at: Callable[[int], torch.Tensor],
    order: range,
    start: torch.Tensor | None,
    compiling: bool,
) -> torch.Tensor:
    """Every state of every chunk of ``bv (B, n, L, P)``, one op per position in ``order``.

    Chunk ``c`` starts from ``start[:, c]`` (``(B, n, P)`` or broadcastable; zeros when None) and advances
    with the decay ``a_at(pos)`` of each position.
    """
    out = torch.empty_like(bv)
    first = order[0]
    if start is None:
        out[:, :, first] = bv[:, :, first]
    else:
        _addcmul_into(out[:, :, first], bv[:, :, first], a_at(first), start, compiling)
    prev = first
    for pos in order[1:]:
        _addcmul_into(out[:, :, pos], bv[:, :, pos], a_at(pos), out[:, :, prev], compiling)
        prev = pos
    return out


def _unchunk(out: torch.Tensor, length: int) -> torch.Tensor:
    """``(B, n, L, P)`` -> ``(B, T, P)``, dropping the padding after ``T = length``."""
    batch, chunks, chunk, width = out.shape
    out = out.reshape(batch, chunks * chunk, width)
    return out[:, :length] if chunks * chunk != length else out


def _scan_constant(
    a: torch.Tensor,
    b: torch.Tensor,
    initial_state: torch.Tensor | None,
    reverse: bool,
) -> torch.Tensor:
    """``a`` of shape ``(P,)`` or ``(B, P)``, no resets: local scans of all chunks, then one fix-up pass.

    The fix-up adds ``a**k * carry`` to the ``k``-th state of a chunk (``k = 1..L`` counted from the carry);
    it is a single broadcast ``addcmul_`` with no full-size temporary.
    """
    batch, length, width = b.shape
    compiling = torch.compiler.is_compiling()
    chunk = choose_chunk(batch, length, width)
    chunks = math.ceil(length / chunk)
    bv = _chunk_view(b, chunks, chunk)
    a_c = a if a.dim() == 1 else a[:, None, :]
    order = range(chunk - 1, -1, -1) if reverse else range(chunk)
    single = chunks == 1
    start = initial_state[:, None, :] if single and initial_state is not None else None
    out = _fill_chunks(bv, lambda pos: a_c, order, start, compiling)
    if not single:
        # Powers a**k, k = 1..L, laid out by position (forward: k = pos + 1; reverse: k = L - pos).
        powers = torch.cumprod(a_c.unsqueeze(-2).expand(*a_c.shape[:-1], chunk, width), dim=-2)
        if reverse:
            powers = powers.flip(-2)
        total = _int_pow(a_c, chunk).expand(batch, chunks, width)
        carry_in = _carry(out[:, :, order[-1]], total, initial_state, reverse)
        out.addcmul_(powers, carry_in[:, :, None, :])
    return _unchunk(out, length)


def _scan_two_pass(
    a: torch.Tensor,
    b: torch.Tensor,
    keep: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    reverse: bool,
) -> torch.Tensor:
    """Any ``a`` with resets, or ``a`` of shape ``(B, T, P)``: chunk end states, carry, then every state.

    Pass 1 keeps only a running ``(B, n, P)`` state per chunk; pass 2 restarts every chunk from its carried
    state and writes the output. No full-size temporary is made when ``a`` is constant over time.
    """
    batch, length, width = b.shape
    compiling = torch.compiler.is_compiling()
    chunk = choose_chunk(batch, length, width, varying=True)
    chunks = math.ceil(length / chunk)
    bv = _chunk_view(b, chunks, chunk)
    real = b.real.dtype
    if a.dim() == 3:
        a_eff = a if keep is None else a * keep[:, :, None].to(real)
        av = _chunk_view(a_eff, chunks, chunk)

        def a_at(pos: int) -> torch.Tensor:
            return av[:, :, pos]

        def chunk_product() -> torch.Tensor:
            return av.prod(dim=2)

    else:
        assert keep is not None
        a_c = a if a.dim() == 1 else a[:, None, :]
        keep_v = _chunk_view(keep, chunks, chunk, fill=True)
        keep_c = keep_v.to(b.dtype)[..., None]  # b's dtype: no type promotion inside the loops
        if bv.numel() <= _SMALL_ELEMENTS:
            # Small problems: one op for every a_eff beats one op per step.
            av_small = a_c[:, None, :] * keep_c if a.dim() == 2 else a_c * keep_c

            def a_at(pos: int) -> torch.Tensor:
                return av_small[:, :, pos]

        else:

            def a_at(pos: int) -> torch.Tensor:
                return a_c * keep_c[:, :, pos]

        def chunk_product() -> torch.Tensor:
            return _int_pow(a_c, chunk) * keep_v.all(dim=2, keepdim=True).to(real)

    order = range(chunk - 1, -1, -1) if reverse else range(chunk)
    first = order[0]
    carry_in: torch.Tensor | None = None
    if chunks > 1:
        run = bv[:, :, first]
        for pos in order[1:]:
            run = torch.addcmul(bv[:, :, pos], a_at(pos), run)
        total = chunk_product().expand(batch, chunks, width)
        carry_in = _carry(run, total, initial_state, reverse)
    elif initial_state is not None:
        carry_in = initial_state[:, None, :]
    return _unchunk(_fill_chunks(bv, a_at, order, carry_in, compiling), length)


def _scan(
    a: torch.Tensor,
    b: torch.Tensor,
    keep: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    reverse: bool,
) -> torch.Tensor:
    """States of ``x[t] = a[t] * keep[t] * x[prev] + b[t]``, prev = t-1 (or t+1 when ``reverse``).

    ``a`` is ``(P,)``, ``(B, P)`` or ``(B, T, P)``; ``keep`` is ``(B, T)`` bool (True: carry the state in) or
    None. No autograd is recorded (the caller is an autograd.Function).
    """
    if a.dim() == 3 or keep is not None:
        return _scan_two_pass(a, b, keep, initial_state, reverse)
    return _scan_constant(a, b, initial_state, reverse)


class _ParallelScan(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        a: torch.Tensor,
        b: torch.Tensor,
        initial_state: torch.Tensor | None,
        reset: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = None if reset is None else ~reset
        states = _scan(a, b.contiguous(), keep, initial_state, reverse=False)
        ctx.save_for_backward(a, states, initial_state, reset)
        ctx.set_materialize_grads(False)
        return states, states[:, -1].clone()

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_states: torch.Tensor | None, grad_final: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        a, states, initial_state, reset = ctx.saved_tensors
        batch, _, width = states.shape
        need_a, need_b, need_h0 = ctx.needs_input_grad[:3]
        if grad_states is None and grad_final is None:
            return None, None, None, None
        if grad_states is None:
            dx = states.new_zeros(states.shape)
        else:
            dx = grad_states.contiguous()
            if grad_final is not None and dx is grad_states:
                dx = dx.clone()
        if grad_final is not None:
            dx[:, -1] += grad_final
        # The adjoint is a reverse scan with a shifted by one step: a'[t] = conj(a_eff[t+1]).
        a_conj = a.conj().resolve_conj()
        if a.dim() == 3:
            a_shift = torch.cat([a_conj[:, 1:], a_conj.new_zeros(batch, 1, width)], dim=1)
        else:
            a_shift = a_conj
        keep_shift = None
        if reset is not None:
            keep_shift = torch.cat([~reset[:, 1:], reset.new_ones(batch, 1)], dim=1)
        grad = _scan(a_shift, dx, keep_shift, None, reverse=True)
        grad_a = grad_h0 = None
        if need_a:
            grad_a = _grad_a(a, grad, states, initial_state, reset)
        if need_h0 and initial_state is not None:
            a0 = a_conj[:, 0] if a.dim() == 3 else a_conj
            grad_h0 = a0 * grad[:, 0]
            if reset is not None:
                grad_h0 = grad_h0 * (~reset[:, :1]).to(grad.real.dtype)
        return grad_a, (grad if need_b else None), grad_h0, None


# Elements per slice in _vecdot_time: temporaries of a few MB are reused by the allocator, while one of the
# full (B, T, P) size is a fresh mapping whose page faults cost as much as the arithmetic.
_SLICE_ELEMENTS = 1 << 19


def _vecdot_time(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_t conj(x[:, t]) * y[:, t]``, shape ``(B, P)``, computed over time slices of bounded size."""
    batch, length, width = x.shape
    step = max(1, _SLICE_ELEMENTS // max(1, batch * width))
    out = torch.linalg.vecdot(x[:, :step], y[:, :step], dim=1)
    for start in range(step, length, step):
        out += torch.linalg.vecdot(x[:, start : start + step], y[:, start : start + step], dim=1)
    return out


def _grad_a(
    a: torch.Tensor,
    grad: torch.Tensor,
    states: torch.Tensor,
    initial_state: torch.Tensor | None,
    reset: torch.Tensor | None,
) -> torch.Tensor:
    """``dL/da[t] = g[t] * conj(x[t-1]) * (1 - reset[t])``, summed over the axes ``a`` is broadcast along."""
    real = grad.real.dtype
    if a.dim() == 3:
        prev = torch.cat(
            [initial_state[:, None] if initial_state is not None else states[:, :1] * 0, states[:, :-1]],
            dim=1,
        )
        out = grad * prev.conj()
        if reset is not None:
            out = out * (~reset[:, :, None]).to(real)
        return out
    # sum_t conj(x[t-1]) * g[t] over t >= 1 with vecdot (no conjugated copy), then correct for resets:
    # subtract the (few) terms at reset positions, and add the t = 0 term from the initial state.
    if reset is not None and torch.compiler.is_compiling():
        # Data-dependent indexing does not trace; mask densely instead.
        prev = states[:, :-1] * (~reset[:, 1:, None]).to(real)
        out = torch.linalg.vecdot(prev, grad[:, 1:], dim=1)
    else:
        out = _vecdot_time(states[:, :-1], grad[:, 1:])
    if reset is not None and not torch.compiler.is_compiling():
        rows, cols = torch.nonzero(reset[:, 1:], as_tuple=True)
        if rows.numel():
            terms = grad[rows, cols + 1] * states[rows, cols].conj()
            out = out.index_add(0, rows, terms, alpha=-1)
    if initial_state is not None:
        head = grad[:, 0] * initial_state.conj()
        if reset is not None:
            head = head * (~reset[:, :1]).to(real)
        out = out + head
    return out.sum(0) if a.dim() == 1 else out


def linear_scan_parallel(
    a: torch.Tensor,
    b: torch.Tensor,
    reset: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The chunked parallel scan behind ``linear_scan(..., backend="parallel")``; inputs already validated."""
    states, final_state = _ParallelScan.apply(a, b, initial_state, reset)
    return states, final_state
