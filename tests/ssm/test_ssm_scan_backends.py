"""Every scan backend equals the sequential reference: states, final state and gradients (float64)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hieros_lib.ssm import linear_scan
from hieros_lib.testing import assert_matches_reference

BACKENDS = ["parallel", "auto"]


def _problem(seed, batch, length, width, a_shape, dtype, hard, reset_rate, with_h0):
    g = torch.Generator().manual_seed(seed)
    shape = {"P": (width,), "BP": (batch, width), "BTP": (batch, length, width)}[a_shape]
    mag = torch.rand(shape, generator=g, dtype=torch.float64)
    mag = 0.99 + 0.01 * mag if hard else mag
    if dtype.is_complex:
        phase = torch.rand(shape, generator=g, dtype=torch.float64) * 6.283
        a = torch.polar(mag, phase)
    else:
        sign = torch.where(torch.rand(shape, generator=g) < 0.2, -1.0, 1.0).to(torch.float64)
        a = mag * sign
    b = torch.randn(batch, length, width, generator=g, dtype=dtype)
    reset = torch.rand(batch, length, generator=g) < reset_rate if reset_rate > 0 else None
    h0 = torch.randn(batch, width, generator=g, dtype=dtype) if with_h0 else None
    return a.to(dtype), b, reset, h0


def _compare(backend, a, b, reset, h0):
    def make(name):
        if h0 is None:
            return lambda a, b: linear_scan(a, b, reset=reset, backend=name)
        return lambda a, b, h: linear_scan(a, b, reset=reset, initial_state=h, backend=name)

    inputs = (a, b) if h0 is None else (a, b, h0)
    assert_matches_reference(make(backend), make("sequential"), inputs)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    length=st.one_of(st.integers(1, 40), st.integers(41, 700)),
    width=st.integers(1, 5),
    a_shape=st.sampled_from(["P", "BP", "BTP"]),
    dtype=st.sampled_from([torch.float64, torch.complex128]),
    hard=st.booleans(),
    reset_rate=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    with_h0=st.booleans(),
    backend=st.sampled_from(BACKENDS),
)
def test_backend_equals_reference(
    seed, batch, length, width, a_shape, dtype, hard, reset_rate, with_h0, backend
):
    a, b, reset, h0 = _problem(seed, batch, length, width, a_shape, dtype, hard, reset_rate, with_h0)
    _compare(backend, a, b, reset, h0)


@pytest.mark.parametrize("length", [1, 2, 3, 64, 97, 1024 + 17])
@pytest.mark.parametrize("a_shape", ["P", "BP", "BTP"])
def test_parallel_hard_mode_edge_lengths(length, a_shape):
    """|a| in [0.99, 1], resets at t = 0 and inside, an initial state, lengths spanning many chunks."""
    a, b, reset, h0 = _problem(7, 2, length, 3, a_shape, torch.complex128, True, 0.02, True)
    reset[0, 0] = True
    _compare("parallel", a, b, reset, h0)


def test_parallel_reset_every_step_and_at_start():
    a, b, _, h0 = _problem(3, 2, 50, 4, "P", torch.complex128, True, 0.0, True)
    everywhere = torch.ones(2, 50, dtype=torch.bool)
    _compare("parallel", a, b, everywhere, h0)
    states, final = linear_scan(a, b, reset=everywhere, initial_state=h0, backend="parallel")
    torch.testing.assert_close(states, b)  # a reset at every step leaves x[t] = b[t]
    torch.testing.assert_close(final, b[:, -1])


def test_gradient_of_final_state_only_and_states_only():
    a, b, reset, h0 = _problem(5, 2, 300, 3, "P", torch.complex128, True, 0.05, True)
    for pick in (0, 1):

        def fast(a, b, h, pick=pick):
            return linear_scan(a, b, reset=reset, initial_state=h, backend="parallel")[pick]

        def ref(a, b, h, pick=pick):
            return linear_scan(a, b, reset=reset, initial_state=h, backend="sequential")[pick]

        assert_matches_reference(fast, ref, (a, b, h0))


def test_mixed_real_decay_complex_input_gradients_are_real():
    a, b, reset, h0 = _problem(9, 2, 200, 3, "P", torch.complex128, False, 0.1, True)
    a_real = a.abs()
    _compare("parallel", a_real, b, reset, h0)
    a_real.requires_grad_(True)
    states, _ = linear_scan(a_real, b, reset=reset, initial_state=h0, backend="parallel")
    (states.abs() ** 2).sum().backward()
    assert a_real.grad is not None and a_real.grad.dtype == torch.float64


def test_float32_parallel_close_to_float64_reference():
    a, b, reset, h0 = _problem(11, 4, 2048, 8, "P", torch.complex128, True, 0.01, True)
    want, _ = linear_scan(a, b, reset=reset, initial_state=h0, backend="sequential")
    got, _ = linear_scan(
        a.to(torch.complex64),
        b.to(torch.complex64),
        reset=reset,
        initial_state=h0.to(torch.complex64),
        backend="parallel",
    )
    torch.testing.assert_close(got.to(torch.complex128), want, rtol=1e-4, atol=2e-4)


def test_auto_uses_the_loop_for_short_sequences_and_the_parallel_scan_for_long_ones():
    """The measured CPU threshold (docs/benchmarks.md) lies between T = 4 and T = 64."""
    names = {}
    for length in (4, 64):
        a, b, reset, _ = _problem(1, 2, length, 3, "P", torch.complex128, False, 0.1, False)
        states, _ = linear_scan(a, b.requires_grad_(), reset=reset, backend="auto")
        names[length] = type(states.grad_fn).__name__
    assert "Parallel" not in names[4]
    assert "Parallel" in names[64]


@pytest.mark.parametrize("a_shape", ["P", "BP"])
def test_parallel_large_problem_with_resets(a_shape):
    """Over a million elements: the reset path builds a_eff step by step instead of in one op."""
    a, b, reset, h0 = _problem(13, 2, 1030, 520, a_shape, torch.complex128, True, 0.01, True)
    _compare("parallel", a, b, reset, h0)


def test_parallel_gradient_when_only_b_requires_grad():
    a, b, reset, _ = _problem(17, 2, 90, 3, "BTP", torch.complex128, True, 0.1, False)
    grads = []
    for backend in ("parallel", "sequential"):
        b_in = b.clone().requires_grad_()
        states, final = linear_scan(a, b_in, reset=reset, backend=backend)
        (states.abs().square().sum() + final.real.sum()).backward()
        grads.append(b_in.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("backend", ["sequential", "parallel"])
@pytest.mark.parametrize("b_dtype", [torch.bfloat16, torch.float16])
def test_low_precision_b_is_accumulated_in_float32(backend: str, b_dtype: torch.dtype) -> None:
    """bf16 / fp16 ``b`` with float32 ``a``: float32 states equal the scan of the same values in float32."""
    g = torch.Generator().manual_seed(3)
    a = 0.9 + 0.1 * torch.rand(8, generator=g)
    b = torch.randn(2, 37, 8, generator=g).to(b_dtype)
    reset = torch.rand(2, 37, generator=g) < 0.2
    states, final = linear_scan(a, b, reset=reset, backend=backend)
    want, want_final = linear_scan(a, b.float(), reset=reset, backend="sequential")
    assert states.dtype == torch.float32 and final.dtype == torch.float32
    torch.testing.assert_close(states, want)
    torch.testing.assert_close(final, want_final)
