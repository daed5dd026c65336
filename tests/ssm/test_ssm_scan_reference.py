"""The sequential reference scan: hand-computed values, resets, initial state, gradcheck and validation."""

from __future__ import annotations

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.ssm import linear_scan


def _loop(a, b, reset, h0):
    """An independent plain-Python recurrence on nested lists (no torch ops), complex numbers."""
    bsz, length, width = b.shape
    out = []
    for i in range(bsz):
        x = [complex(h0[i, p]) if h0 is not None else 0j for p in range(width)]
        seq = []
        for t in range(length):
            if reset is not None and bool(reset[i, t]):
                x = [0j] * width
            for p in range(width):
                at = a[p] if a.dim() == 1 else (a[i, p] if a.dim() == 2 else a[i, t, p])
                x[p] = complex(at) * x[p] + complex(b[i, t, p])
            seq.append(list(x))
        out.append(seq)
    return torch.tensor(out, dtype=torch.complex128)


@pytest.mark.parametrize("a_shape", ["P", "BP", "BTP"])
def test_reference_matches_plain_python(a_shape):
    g = torch.Generator().manual_seed(1)
    bsz, length, width = 3, 7, 4
    b = torch.randn(bsz, length, width, dtype=torch.complex128, generator=g)
    shape = {"P": (width,), "BP": (bsz, width), "BTP": (bsz, length, width)}[a_shape]
    a = torch.randn(shape, dtype=torch.complex128, generator=g) * 0.5
    reset = torch.rand(bsz, length, generator=g) < 0.3
    reset[0, 0] = True
    h0 = torch.randn(bsz, width, dtype=torch.complex128, generator=g)
    states, final = linear_scan(a, b, reset=reset, initial_state=h0, backend="sequential")
    want = _loop(a, b, reset, h0)
    torch.testing.assert_close(states, want)
    torch.testing.assert_close(final, want[:, -1])


def test_reference_hand_values_real():
    a = torch.tensor([2.0], dtype=torch.float64)
    b = torch.tensor([[[1.0], [1.0], [1.0], [1.0]]], dtype=torch.float64)
    h0 = torch.tensor([[10.0]], dtype=torch.float64)
    states, final = linear_scan(a, b, initial_state=h0, backend="sequential")
    assert states.flatten().tolist() == [21.0, 43.0, 87.0, 175.0]
    reset = torch.tensor([[True, False, False, True]])
    states, final = linear_scan(a, b, initial_state=h0, reset=reset, backend="sequential")
    assert states.flatten().tolist() == [1.0, 3.0, 7.0, 1.0]
    assert final.item() == 1.0


def test_reference_gradcheck():
    g = torch.Generator().manual_seed(2)
    a = (torch.randn(2, 5, 3, dtype=torch.complex128, generator=g) * 0.5).requires_grad_()
    b = torch.randn(2, 5, 3, dtype=torch.complex128, generator=g).requires_grad_()
    h0 = torch.randn(2, 3, dtype=torch.complex128, generator=g).requires_grad_()
    reset = torch.tensor([[False, False, True, False, False], [False, True, False, False, True]])

    def fn(a, b, h0):
        return linear_scan(a, b, reset=reset, initial_state=h0, backend="sequential")

    assert torch.autograd.gradcheck(fn, (a, b, h0))
    a_p = (torch.rand(3, dtype=torch.float64, generator=g)).requires_grad_()
    b_r = torch.randn(2, 5, 3, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: linear_scan(a, b, reset=reset, backend="sequential"), (a_p, b_r)
    )


def _args(**over):
    args = {
        "a": torch.rand(4),
        "b": torch.randn(2, 3, 4),
        "reset": torch.zeros(2, 3, dtype=torch.bool),
        "initial_state": torch.zeros(2, 4),
    }
    args.update(over)
    return args


@pytest.mark.parametrize(
    ("over", "name"),
    [
        ({"b": torch.randn(2, 3)}, "b"),
        ({"b": torch.randn(2, 3, 4).int()}, "b"),
        ({"a": torch.rand(5)}, "a"),
        ({"a": torch.rand(2, 2, 4)}, "a"),
        ({"a": torch.rand(4, dtype=torch.float64)}, "a"),
        ({"reset": torch.zeros(2, 4, dtype=torch.bool)}, "reset"),
        ({"reset": torch.zeros(2, 3)}, "reset"),
        ({"initial_state": torch.zeros(3, 4)}, "initial_state"),
        ({"initial_state": torch.zeros(2, 4, dtype=torch.complex128)}, "initial_state"),
        ({"a": torch.rand(4, device="meta")}, "a"),
    ],
)
@pytest.mark.parametrize("backend", ["sequential", "auto"])
def test_validation_names_the_argument(over, name, backend):
    args = _args(**over)
    with pytest.raises(HierosError, match=rf"^{name}: expected"):
        linear_scan(
            args["a"], args["b"], reset=args["reset"], initial_state=args["initial_state"], backend=backend
        )


def test_unknown_backend():
    with pytest.raises(HierosError, match="backend"):
        linear_scan(torch.rand(4), torch.randn(2, 3, 4), backend="fast")  # type: ignore[arg-type]


def test_triton_backend_refuses_cpu_tensors(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(HierosError, match=r"^b: expected a CUDA tensor.*pip install hieros-lib\[triton\]"):
        linear_scan(torch.rand(4), torch.randn(2, 3, 4), backend="triton")
