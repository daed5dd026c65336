"""S5Block and S5Stack: step equals forward, state carry, resets, gradients, the Hieros configuration."""

from __future__ import annotations

import itertools

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.ssm import S5Block, S5Stack

F64 = torch.float64


def _inputs(seed, batch=2, length=19, width=6, reset_rate=0.15):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, width, generator=g, dtype=F64)
    reset = torch.rand(batch, length, generator=g) < reset_rate
    return x, reset


@pytest.mark.parametrize(
    ("activation", "prenorm"),
    list(itertools.product(["glu", "half_glu1", "half_glu2", "gelu"], [True, False])),
)
def test_block_step_equals_forward(activation, prenorm):
    block = S5Block(
        6,
        8,
        blocks=2,
        activation=activation,
        prenorm=prenorm,
        dropout=0.2,
        dtype=F64,
        generator=torch.Generator().manual_seed(0),
    ).eval()
    x, reset = _inputs(1)
    h0 = torch.randn(2, block.P, dtype=torch.complex128, generator=torch.Generator().manual_seed(2))
    y, final, states = block(x, state=h0, reset=reset, return_states=True)
    state = h0
    for t in range(x.shape[1]):
        y_t, state = block.step(x[:, t], state, reset=reset[:, t])
        torch.testing.assert_close(y_t, y[:, t])
        torch.testing.assert_close(state, states[:, t])
    torch.testing.assert_close(state, final)


def _stack(**kw):
    return S5Stack(6, 8, 3, blocks=2, dtype=F64, generator=torch.Generator().manual_seed(3), **kw).eval()


@pytest.mark.parametrize("final_norm", [False, True])
def test_stack_step_split_and_reset(final_norm):
    stack = _stack(final_norm=final_norm)
    x, reset = _inputs(4, length=24)
    y, final, states = stack(x, reset=reset, return_states=True)
    assert len(final) == len(states) == 3
    assert all(s.shape == (2, 24, stack.layers[0].P) for s in states)
    # step by step
    state = stack.initial_state(2)
    for t in range(24):
        y_t, state = stack.step(x[:, t], state, reset=reset[:, t])
        torch.testing.assert_close(y_t, y[:, t])
    for got, want in zip(state, final, strict=True):
        torch.testing.assert_close(got, want)
    # [x1, x2] == x1 then x2 from the final state
    y1, s1 = stack(x[:, :10], reset=reset[:, :10])
    y2, s2 = stack(x[:, 10:], state=s1, reset=reset[:, 10:])
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    for got, want in zip(s2, final, strict=True):
        torch.testing.assert_close(got, want)
    # a reset at t equals a fresh run from t
    only = torch.zeros_like(reset)
    only[:, 9] = True
    y_r, _ = stack(x, state=s1, reset=only)
    y_fresh, _ = stack(x[:, 9:])
    torch.testing.assert_close(y_r[:, 9:], y_fresh)


def test_stack_every_parameter_gets_a_gradient():
    stack = S5Stack(6, 8, 2, blocks=2, final_norm=True, dropout=0.1, dtype=F64)
    x, reset = _inputs(5)
    y, _ = stack(x, reset=reset)
    (y**2).mean().backward()
    for name, param in stack.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_dropout_only_in_training():
    stack = S5Stack(6, 8, 2, dropout=0.5)
    x = torch.randn(2, 7, 6)
    stack.train()
    assert not torch.equal(stack(x)[0], stack(x)[0])
    stack.eval()
    assert torch.equal(stack(x)[0], stack(x)[0])


def test_hieros_world_model_configuration():
    """8 blocks, d_model 256, d_state 128, J = 4 (Hieros' S5WM); conj_sym=False keeps P = 128 as Hieros."""
    stack = S5Stack(256, 128, 8, blocks=4, conj_sym=False, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 5, 256)
    y, final, states = stack(x, return_states=True)
    assert y.shape == (2, 5, 256) and len(final) == 8
    assert all(s.shape == (2, 5, 128) and s.dtype == torch.complex64 for s in states)
    assert stack.layers[0].s5.Lambda_im.shape == (128,)
    halved = S5Stack(256, 128, 8, blocks=4)
    assert halved.initial_state(3)[0].shape == (3, 64)


def test_stack_validation():
    stack = _stack()
    x, _ = _inputs(6)
    with pytest.raises(HierosError, match=r"^state: expected"):
        stack(x, state=stack.initial_state(2)[:2])
    with pytest.raises(HierosError, match=r"^num_blocks: expected"):
        S5Stack(6, 8, 0)
    with pytest.raises(HierosError, match=r"^activation: expected"):
        S5Block(6, 8, activation="relu")  # type: ignore[arg-type]
    with pytest.raises(HierosError, match=r"^dropout: expected"):
        S5Block(6, 8, dropout=1.5)


def test_same_seed_same_stack():
    a = S5Stack(6, 8, 2, generator=torch.Generator().manual_seed(9))
    b = S5Stack(6, 8, 2, generator=torch.Generator().manual_seed(9))
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
