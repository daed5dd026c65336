"""S5 initialisation: HiPPO-LegS, its normal part (HiPPO-N), block-diagonal eigenvectors, LeCun normal."""

from __future__ import annotations

import math

import torch

from hieros_lib.errors import check

__all__ = ["hippo_legs", "hippo_n", "hippo_n_blocks", "lecun_normal"]

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it keeps the variance at scale.
_TRUNC_STD = 0.87962566103423978


def hippo_legs(n: int) -> torch.Tensor:
    r"""The HiPPO-LegS matrix ``A`` (float64, ``(n, n)``).

    .. math:: A_{nk} = -\sqrt{2n+1}\sqrt{2k+1}\ (n > k), \quad -(n+1)\ (n = k), \quad 0\ (n < k).

    Examples:
        >>> hippo_legs(3)[:, 0].tolist() == [-1.0, -(3**0.5), -(5**0.5)]
        True
    """
    p = torch.sqrt(1 + 2 * torch.arange(n, dtype=torch.float64))
    a = torch.tril(p[:, None] * p[None, :]) - torch.diag(torch.arange(n, dtype=torch.float64))
    return -a


def hippo_n(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eigen-decomposition of the normal part of HiPPO-LegS (HiPPO-N).

    ``S = A + p p^T`` with :math:`p_k = \sqrt{k + 1/2}` equals :math:`-\tfrac12 I + K` with ``K``
    skew-symmetric, so ``S = V \Lambda V^H`` with ``V`` unitary, :math:`\Re\Lambda = -\tfrac12` and
    :math:`\Im\Lambda` the eigenvalues of the Hermitian ``-iK``, in ascending order (the first half has
    negative imaginary parts; their conjugates are the second half).

    Returns:
        ``(Lambda (n,), V (n, n))``, complex128.

    Examples:
        >>> lam, v = hippo_n(4)
        >>> lam.real.tolist()
        [-0.5, -0.5, -0.5, -0.5]
        >>> bool(torch.allclose(v @ torch.diag(lam) @ v.conj().T,
        ...                     (hippo_legs(4) + (torch.arange(4) + 0.5).sqrt().outer(
        ...                         (torch.arange(4) + 0.5).sqrt()).double()).to(torch.complex128)))
        True
    """
    p = torch.sqrt(torch.arange(n, dtype=torch.float64) + 0.5)
    s = hippo_legs(n) + p[:, None] * p[None, :]
    # diag(S) = -(k + 1) + (k + 1/2) = -1/2 exactly; use the exact value, not the rounded diagonal.
    lam_re = torch.full((n,), -0.5, dtype=torch.float64)
    skew = s - torch.diag(torch.diagonal(s))
    lam_im, v = torch.linalg.eigh(skew.to(torch.complex128) * -1j)
    return torch.complex(lam_re, lam_im), v


def hippo_n_blocks(
    d_state: int, blocks: int, conj_sym: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HiPPO-N of size ``d_state / blocks`` repeated ``blocks`` times, block-diagonal eigenvectors.

    With ``conj_sym`` each block keeps the first half of its eigenvalues (one of each conjugate pair).

    Returns:
        ``(Lambda (P,), V (d_state, P), V_inv (P, d_state))``, complex128, with ``P = d_state`` or
        ``d_state / 2``; ``V_inv = V^H`` (the rows of a unitary matrix).
    """
    check(
        blocks >= 1 and d_state % blocks == 0,
        "blocks",
        f"a positive divisor of d_state={d_state}",
        got=blocks,
    )
    size = d_state // blocks
    check(not conj_sym or size % 2 == 0, "d_state", "d_state / blocks even when conj_sym=True", got=d_state)
    lam, v = hippo_n(size)
    if conj_sym:
        lam, v = lam[: size // 2], v[:, : size // 2]
    big_v = torch.block_diag(*([v] * blocks))
    return lam.repeat(blocks), big_v, big_v.conj().T


def lecun_normal(
    shape: tuple[int, ...],
    fan_in: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """LeCun normal: a normal truncated at two standard deviations, rescaled to variance ``1 / fan_in``.

    Examples:
        >>> w = lecun_normal((4000,), 4, generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 1)
        0.5
    """
    std = math.sqrt(1.0 / fan_in) / _TRUNC_STD
    out = torch.empty(shape, dtype=dtype)
    torch.nn.init.trunc_normal_(out, std=std, a=-2 * std, b=2 * std, generator=generator)
    return out
