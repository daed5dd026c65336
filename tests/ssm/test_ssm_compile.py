"""torch.compile: the S5 stack and the parallel scan trace as one graph and equal eager, with gradients.

The backend is ``aot_eager`` (Dynamo graph capture + AOTAutograd, eager kernels): Inductor has no code
generation for complex tensors (it warns and falls back to the eager kernels), so it adds ~50 s of compile
time on a 2-core CPU and no speed; see docs/api/ssm.rst, "torch.compile".
"""

from __future__ import annotations

import pytest
import torch

from hieros_lib.ssm import S5Stack, linear_scan
from hieros_lib.testing import assert_matches_reference


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_stack_equals_eager_fullgraph():
    stack = S5Stack(6, 8, 2, blocks=2, generator=torch.Generator().manual_seed(0)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 21, 6, generator=g)
    reset = torch.rand(2, 21, generator=g) < 0.2
    compiled = torch.compile(stack, backend="aot_eager", fullgraph=True)

    def run(module):
        def fn(x, h0):
            y, final = module(x, state=(h0, h0), reset=reset)
            return y, final[0].real

        return fn

    h0 = torch.randn(2, stack.blocks[0].P, dtype=torch.complex64, generator=g)
    assert_matches_reference(run(compiled), run(stack), (x, h0))
    y_c, _ = compiled(x, reset=reset)
    y_c.square().mean().backward()
    grads_c = [p.grad.clone() for p in stack.parameters()]
    stack.zero_grad()
    y_e, _ = stack(x, reset=reset)
    y_e.square().mean().backward()
    for got, (name, param) in zip(grads_c, stack.named_parameters(), strict=True):
        torch.testing.assert_close(got, param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_compiled_parallel_scan_equals_reference():
    g = torch.Generator().manual_seed(2)
    a = torch.polar(
        0.99 + 0.01 * torch.rand(5, generator=g, dtype=torch.float64),
        torch.rand(5, generator=g, dtype=torch.float64) * 6,
    )
    b = torch.randn(2, 45, 5, dtype=torch.complex128, generator=g)
    h0 = torch.randn(2, 5, dtype=torch.complex128, generator=g)
    reset = torch.rand(2, 45, generator=g) < 0.1

    def scan(backend):
        def fn(a, b, h):
            return linear_scan(a, b, reset=reset, initial_state=h, backend=backend)

        return fn

    compiled = torch.compile(scan("parallel"), backend="aot_eager", fullgraph=True)
    assert_matches_reference(compiled, scan("sequential"), (a, b, h0))
