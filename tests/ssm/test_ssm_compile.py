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
    stack = S5Stack(6, 8, 1, blocks=2, generator=torch.Generator().manual_seed(0)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 18, 6, generator=g)
    h0 = torch.randn(2, stack.layers[0].P, dtype=torch.complex64, generator=g)
    reset = torch.rand(2, 18, generator=g) < 0.2
    compiled = torch.compile(stack, backend="aot_eager", fullgraph=True)
    results = []
    for module in (compiled, stack):
        stack.zero_grad()
        x_in, h_in = x.clone().requires_grad_(), h0.clone().requires_grad_()
        y, final = module(x_in, state=(h_in,), reset=reset)
        (y.square().mean() + final[0].abs().square().sum()).backward()
        grads = [x_in.grad, h_in.grad] + [p.grad.clone() for p in stack.parameters()]
        results.append([y.detach(), final[0].detach(), *grads])
    for i, (got, want) in enumerate(zip(*results, strict=True)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"tensor {i}")


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
