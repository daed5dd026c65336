"""S5 in half precision and under autocast, and the blocks' own input checks."""

from __future__ import annotations

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.ssm import S5, S5Block, S5Stack


def test_s5_to_bfloat16_still_computes_in_float32() -> None:
    layer = S5(8, 16, blocks=2, generator=torch.Generator().manual_seed(0))
    ref = S5(8, 16, blocks=2, generator=torch.Generator().manual_seed(0))
    layer.to(torch.bfloat16)
    assert layer.Lambda_re.dtype == torch.bfloat16
    assert layer.state_dtype == torch.complex64 and layer.compute_dtype == torch.float32
    x = torch.randn(2, 30, 8, generator=torch.Generator().manual_seed(1))
    y, state = layer(x.bfloat16())
    assert y.dtype == torch.bfloat16 and state.dtype == torch.complex64
    # the same layer with its parameters rounded to bf16, computed in float32: bf16 output rounding only
    with torch.no_grad():
        for p_ref, p in zip(ref.parameters(), layer.parameters(), strict=True):
            p_ref.copy_(p.float())
    y_ref, _ = ref(x.bfloat16().float())
    torch.testing.assert_close(y.float(), y_ref, rtol=1e-2, atol=1e-2)
    y_t, _ = layer.step(x[:, 0].bfloat16(), layer.initial_state(2))
    torch.testing.assert_close(y_t.float(), y[:, 0].float(), rtol=1e-2, atol=1e-2)


def test_s5_runs_inside_autocast_with_a_float32_scan() -> None:
    """Inside autocast a Linear before the stack hands it bf16 inputs (as in S5WM)."""
    torch.manual_seed(0)
    proj = torch.nn.Linear(8, 8)
    stack = S5Stack(8, 16, 2, blocks=2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 20, 8, generator=torch.Generator().manual_seed(1))
    y32, _ = stack(proj(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inputs = proj(x)
        y16, final16 = stack(inputs)
    assert inputs.dtype == torch.bfloat16
    assert all(f.dtype == torch.complex64 for f in final16)
    torch.testing.assert_close(y16.float(), y32, rtol=0.05, atol=0.05)
    y16.float().sum().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in stack.parameters())


@pytest.mark.parametrize("prenorm", [True, False])
def test_blocks_check_their_input_before_the_norm(prenorm: bool) -> None:
    block = S5Block(8, 16, prenorm=prenorm, generator=torch.Generator().manual_seed(0))
    stack = S5Stack(8, 16, 2, prenorm=prenorm, generator=torch.Generator().manual_seed(0))
    for module in (block, stack):
        with pytest.raises(HierosError, match=r"^x: expected a tensor of shape \(B, T, H\) with H=8"):
            module(torch.randn(2, 5, 7))
        with pytest.raises(HierosError, match=r"^x: expected a floating-point tensor"):
            module(torch.zeros(2, 5, 8, dtype=torch.long))
        with pytest.raises(HierosError, match=r"^x_t: expected a tensor of shape \(B, H\)"):
            module.step(torch.randn(2, 5, 8), None)
