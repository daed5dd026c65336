"""MLP: structure, a hand-written forward pass, shapes, gradients and validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hieros_lib.errors import HierosError
from hieros_lib.nn import MLP


def test_forward_matches_hand_written_blocks() -> None:
    torch.manual_seed(0)
    mlp = MLP(5, 3, hidden=8, layers=2).double()
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in mlp.modules() if isinstance(m, nn.LayerNorm)]
    assert len(linears) == 3 and len(norms) == 2
    assert linears[0].bias is None and linears[1].bias is None and linears[2].bias is not None
    for norm in norms:  # make the affine part non-trivial
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    h = x
    for lin, norm in zip(linears[:2], norms):
        h = h @ lin.weight.T
        mu = h.mean(-1, keepdim=True)
        var = h.var(-1, unbiased=False, keepdim=True)
        h = (h - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
        h = h * torch.sigmoid(h)
    want = h @ linears[2].weight.T + linears[2].bias
    torch.testing.assert_close(mlp(x), want)


def test_no_norm_and_zero_layers() -> None:
    mlp = MLP(4, 2, hidden=8, layers=1, norm=False, activation=nn.ReLU)
    assert not any(isinstance(m, nn.LayerNorm) for m in mlp.modules())
    x = torch.randn(3, 4)
    lin0, lin1 = (m for m in mlp.modules() if isinstance(m, nn.Linear))
    torch.testing.assert_close(mlp(x), F.linear(torch.relu(F.linear(x, lin0.weight, lin0.bias)), lin1.weight,
                                                lin1.bias))
    single = MLP(4, 2, layers=0)
    (lin,) = (m for m in single.modules() if isinstance(m, nn.Linear))
    torch.testing.assert_close(single(x), F.linear(x, lin.weight, lin.bias))


def test_every_parameter_gets_a_gradient_and_leading_dims() -> None:
    mlp = MLP(5, 7, hidden=16, layers=3)
    y = mlp(torch.randn(2, 3, 4, 5))
    assert y.shape == (2, 3, 4, 7)
    y.square().sum().backward()
    for name, p in mlp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_validation() -> None:
    mlp = MLP(5, 3, hidden=8)
    with pytest.raises(HierosError, match="x"):
        mlp(torch.randn(2, 4))
    with pytest.raises(HierosError, match="layers"):
        MLP(5, 3, layers=-1)
    with pytest.raises(HierosError, match="hidden"):
        MLP(5, 3, hidden=0)


def test_factory_dtype_and_state_dict_round_trip() -> None:
    mlp = MLP(3, 2, hidden=4, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in mlp.parameters())
    other = MLP(3, 2, hidden=4, dtype=torch.float64)
    other.load_state_dict(mlp.state_dict())
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(other(x), mlp(x))
