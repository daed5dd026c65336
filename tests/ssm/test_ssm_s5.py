"""S5: step mode, state carry, resets, conjugate symmetry, closed-form discretisations, gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.ssm import S5, hippo_legs, hippo_n

F64 = torch.float64


def _layer(seed=0, **kw):
    kw.setdefault("dtype", F64)
    return S5(6, 8, blocks=2, generator=torch.Generator().manual_seed(seed), **kw)


def _inputs(seed, batch=3, length=23, width=6, reset_rate=0.15):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, width, generator=g, dtype=F64)
    reset = torch.rand(batch, length, generator=g) < reset_rate
    return x, reset


OPTIONS = [
    {"conj_sym": c, "discretization": d, "clip_eigs": e}
    for c, d, e in itertools.product([True, False], ["zoh", "bilinear"], [False, True])
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_parallel_equals_step_by_step(opts):
    layer = _layer(**opts)
    x, reset = _inputs(1)
    h0 = torch.randn(3, layer.P, generator=torch.Generator().manual_seed(2), dtype=torch.complex128)
    y, final, states = layer(x, state=h0, reset=reset, return_states=True)
    state = h0
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state, reset=reset[:, t])
        torch.testing.assert_close(y_t, y[:, t])
        torch.testing.assert_close(state, states[:, t])
    torch.testing.assert_close(state, final)


@pytest.mark.parametrize("backend", ["sequential", "parallel"])
def test_split_sequence_continues_from_final_state(backend):
    layer = _layer(backend=backend)
    x, reset = _inputs(3, length=40)
    y, final = layer(x, reset=reset)
    y1, s1 = layer(x[:, :17], reset=reset[:, :17])
    y2, s2 = layer(x[:, 17:], state=s1, reset=reset[:, 17:])
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    torch.testing.assert_close(s2, final)


def test_reset_equals_fresh_run():
    layer = _layer()
    x, _ = _inputs(4, length=30)
    h0 = torch.randn(3, layer.P, generator=torch.Generator().manual_seed(5), dtype=torch.complex128)
    reset = torch.zeros(3, 30, dtype=torch.bool)
    reset[:, 12] = True
    y, final, states = layer(x, state=h0, reset=reset, return_states=True)
    y_fresh, final_fresh, states_fresh = layer(x[:, 12:], return_states=True)
    torch.testing.assert_close(y[:, 12:], y_fresh)
    torch.testing.assert_close(states[:, 12:], states_fresh)
    torch.testing.assert_close(final, final_fresh)
    # and the part before the reset is untouched by it
    y_before, _ = layer(x[:, :12], state=h0)
    torch.testing.assert_close(y[:, :12], y_before)


def test_conj_sym_equals_the_full_system_it_stands_for():
    half = _layer(seed=7, conj_sym=True)
    full = S5(6, 8, blocks=2, conj_sym=False, dtype=F64)
    with torch.no_grad():
        full.Lambda_re.copy_(torch.cat([half.Lambda_re, half.Lambda_re]))
        full.Lambda_im.copy_(torch.cat([half.Lambda_im, -half.Lambda_im]))
        conj_b = half.B * torch.tensor([1.0, -1.0], dtype=F64)
        full.B.copy_(torch.cat([half.B, conj_b], 0))
        conj_c = half.C * torch.tensor([1.0, -1.0], dtype=F64)
        full.C.copy_(torch.cat([half.C, conj_c], 1))
        full.D.copy_(half.D)
        full.log_step.copy_(torch.cat([half.log_step, half.log_step]))
    x, reset = _inputs(8)
    torch.testing.assert_close(half(x, reset=reset)[0], full(x, reset=reset)[0])


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_matches_real_basis_closed_form(discretization):
    """HiPPO-N with conj_sym, one step size: the layer equals the real system x' = S x + B u discretised in
    closed form (matrix exponential for ZOH, (I - dS/2)^-1 (I + dS/2) for bilinear), y = C x + D u."""
    n, h, step = 8, 3, 0.05
    g = torch.Generator().manual_seed(9)
    layer = S5(h, n, conj_sym=True, discretization=discretization, dtype=F64)
    lam, v = hippo_n(n)
    v_half = v[:, : n // 2]
    b_real = torch.randn(n, h, generator=g, dtype=F64)
    c_real = torch.randn(h, n, generator=g, dtype=F64)
    with torch.no_grad():
        layer.Lambda_re.copy_(lam.real[: n // 2])
        layer.Lambda_im.copy_(lam.imag[: n // 2])
        layer.B.copy_(torch.view_as_real(v_half.conj().T @ b_real.to(torch.complex128)))
        layer.C.copy_(torch.view_as_real(c_real.to(torch.complex128) @ v_half))
        layer.log_step.fill_(torch.log(torch.tensor(step)).item())
    p = (torch.arange(n, dtype=F64) + 0.5).sqrt()
    s = hippo_legs(n) + p[:, None] * p[None, :]
    eye = torch.eye(n, dtype=F64)
    if discretization == "zoh":
        a_bar = torch.linalg.matrix_exp(s * step)
        b_bar = torch.linalg.solve(s, (a_bar - eye) @ b_real)
    else:
        inv = torch.linalg.inv(eye - step * s / 2)
        a_bar = inv @ (eye + step * s / 2)
        b_bar = inv @ (step * b_real)
    x, reset = _inputs(10, batch=2, length=15, width=h)
    state = torch.zeros(2, n, dtype=F64)
    want = []
    for t in range(15):
        state = torch.where(reset[:, t, None], 0.0, state)
        state = state @ a_bar.T + x[:, t] @ b_bar.T
        want.append(state @ c_real.T + layer.D.detach() * x[:, t])
    y, _ = layer(x, reset=reset)
    torch.testing.assert_close(y, torch.stack(want, 1))


def test_discretization_formulas_per_mode():
    layer = _layer(seed=11, discretization="zoh")
    lam = torch.complex(layer.Lambda_re, layer.Lambda_im).detach()
    step = layer.log_step.exp().detach()
    lam_bar, b_bar = layer.discretize()
    b_tilde = torch.complex(layer.B[..., 0], layer.B[..., 1]).detach()
    torch.testing.assert_close(lam_bar.detach(), torch.exp(lam * step))
    # (exp(l d) - 1) / l is the integral of exp(l s) over [0, d]
    grid = torch.linspace(0, 1, 20001, dtype=F64)[:, None] * step
    integral = torch.trapezoid(torch.exp(lam * grid), grid, dim=0)
    torch.testing.assert_close(b_bar.detach(), integral[:, None] * b_tilde, rtol=1e-6, atol=1e-9)
    layer.discretization = "bilinear"
    lam_bar, _ = layer.discretize()
    torch.testing.assert_close(lam_bar.detach(), (2 + step * lam) / (2 - step * lam))


def test_hippo_init_layout_and_statistics():
    layer = S5(16, 64, blocks=4, dtype=F64, generator=torch.Generator().manual_seed(0))
    assert layer.P == 32
    assert layer.Lambda_re.shape == layer.Lambda_im.shape == layer.log_step.shape == (32,)
    assert layer.B.shape == (32, 16, 2) and layer.C.shape == (16, 32, 2) and layer.D.shape == (16,)
    torch.testing.assert_close(layer.Lambda_re.detach(), torch.full((32,), -0.5, dtype=F64))
    # four identical blocks of 8 stored modes, each with negative imaginary parts (one per conjugate pair)
    im = layer.Lambda_im.detach().view(4, 8)
    assert torch.equal(im, im[:1].expand(4, 8)) and bool((im < 0).all())
    assert float(layer.log_step.detach().min()) >= torch.log(torch.tensor(1e-3)).item()
    assert float(layer.log_step.detach().max()) <= torch.log(torch.tensor(1e-1)).item()
    bidir = S5(16, 64, blocks=4, bidirectional=True)
    assert bidir.C.shape == (16, 64, 2)
    full = S5(16, 64, blocks=4, conj_sym=False)
    assert full.P == 64 and full.Lambda_im.shape == (64,)
    for c_init in ("lecun_normal", "complex_normal"):
        assert S5(16, 64, c_init=c_init).C.shape == (16, 32, 2)


def test_same_generator_seed_same_parameters():
    a = S5(8, 16, generator=torch.Generator().manual_seed(3))
    b = S5(8, 16, generator=torch.Generator().manual_seed(3))
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_parameter_gets_a_gradient(bidirectional):
    layer = _layer(bidirectional=bidirectional, clip_eigs=True)
    x, reset = _inputs(12)
    y, _ = layer(x, reset=reset)
    (y**2).mean().backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_clip_eigs_clamps_in_forward_only():
    layer = _layer(clip_eigs=True)
    with torch.no_grad():
        layer.Lambda_re[0] = 0.3
    lam, _, _ = layer.continuous()
    assert lam.real[0].item() == -1e-4 and layer.Lambda_re[0].item() == 0.3
    x, _ = _inputs(13)
    layer(x)[0].sum().backward()
    assert layer.Lambda_re.grad[0].item() == 0.0 and bool(layer.Lambda_re.grad[1:].abs().sum() > 0)


def test_bidirectional_reads_both_directions_and_respects_resets():
    layer = _layer(bidirectional=True)
    x, _ = _inputs(14, batch=2, length=20)
    reset = torch.zeros(2, 20, dtype=torch.bool)
    reset[:, 8] = True
    y, _, states = layer(x, reset=reset, return_states=True)
    assert states.shape == (2, 20, 2 * layer.P)
    # packed sequences do not see each other, in either direction
    y1, _ = layer(x[:, :8])
    y2, _ = layer(x[:, 8:])
    torch.testing.assert_close(y, torch.cat([y1, y2], 1))
    # the backward state at t depends on the future: changing x at t = 5 changes y at t = 3
    x2 = x.clone()
    x2[:, 5] += 1.0
    assert not torch.allclose(layer(x2, reset=reset)[0][:, 3], y[:, 3])
    with pytest.raises(HierosError, match="step"):
        layer.step(x[:, 0], None)
    with pytest.raises(HierosError, match="state"):
        layer(x, state=torch.zeros(2, layer.P, dtype=torch.complex128))


def test_forward_is_causal():
    layer = _layer()
    x, _ = _inputs(15, length=12)
    y, _ = layer(x)
    x2 = x.clone()
    x2[:, 7] += 1.0
    y2, _ = layer(x2)
    torch.testing.assert_close(y2[:, :7], y[:, :7])
    assert not torch.allclose(y2[:, 7], y[:, 7])


def test_float32_module_matches_float64():
    layer64 = _layer(seed=16)
    layer32 = S5(6, 8, blocks=2, generator=torch.Generator().manual_seed(16))
    x, reset = _inputs(17, length=200)
    y64, _ = layer64(x, reset=reset)
    y32, s32 = layer32(x.float(), reset=reset)
    assert y32.dtype == torch.float32 and s32.dtype == torch.complex64
    torch.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda m: m(torch.randn(2, 5, 7, dtype=F64)), "x"),
        (lambda m: m(torch.randn(2, 5, 6)), "x"),
        (lambda m: m(torch.randn(5, 6, dtype=F64)), "x"),
        (
            lambda m: m(torch.randn(2, 5, 6, dtype=F64), state=torch.zeros(2, 3, dtype=torch.complex128)),
            "state",
        ),
        (
            lambda m: m(torch.randn(2, 5, 6, dtype=F64), state=torch.zeros(2, 4, dtype=torch.complex64)),
            "state",
        ),
        (lambda m: m(torch.randn(2, 5, 6, dtype=F64), reset=torch.zeros(2, 4, dtype=torch.bool)), "reset"),
        (lambda m: m(torch.randn(2, 5, 6, dtype=F64), reset=torch.zeros(2, 5)), "reset"),
        (
            lambda m: m.step(torch.randn(2, 6, dtype=F64), None, reset=torch.zeros(3, dtype=torch.bool)),
            "reset",
        ),
        (lambda m: m.step(torch.randn(2, 5, 6, dtype=F64), None), "x_t"),
        (
            lambda m: m.step(
                torch.randn(2, 6, dtype=F64), None, reset=torch.zeros(2, dtype=torch.bool, device="meta")
            ),
            "reset",
        ),
        (lambda m: m(torch.randn(2, 5, 6, dtype=F64, device="meta")), "x"),
        (lambda m: m.initial_state(0), "batch_size"),
    ],
)
def test_validation_names_the_argument(call, name):
    with pytest.raises(HierosError, match=rf"^{name}: expected"):
        call(_layer())


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"d_state": 9}, "blocks"),
        ({"d_state": 12, "blocks": 4}, "d_state"),
        ({"discretization": "euler"}, "discretization"),
        ({"c_init": "zeros"}, "c_init"),
        ({"dt_min": 0.5}, "dt_min"),
        ({"dtype": torch.float16}, "dtype"),
    ],
)
def test_constructor_validation(kw, name):
    args = {"d_state": 8, "blocks": 2, **kw}
    with pytest.raises(HierosError, match=rf"^{name}: expected"):
        S5(6, **args)


def test_hippo_n_eigenvalues_match_the_published_values():
    """HiPPO-N of size 8: -1/2 + i * (+-0.427, +-1.958, +-5.354, +-19.857) (S5 reference, checked by hand)."""
    lam, v = hippo_n(8)
    want = torch.tensor([-19.857, -5.354, -1.958, -0.427, 0.427, 1.958, 5.354, 19.857], dtype=F64)
    torch.testing.assert_close(lam.imag, want, atol=6e-4, rtol=0)
    torch.testing.assert_close(v.conj().T @ v, torch.eye(8, dtype=torch.complex128))  # unitary
