"""λ-returns over imagined trajectories and DreamerV3's percentile return normalisation."""

from __future__ import annotations

import torch
from torch import nn

from hieros_lib.errors import check, check_float

__all__ = ["ReturnNormalizer", "lambda_return"]


def lambda_return(
    reward: torch.Tensor,
    value: torch.Tensor,
    cont: torch.Tensor,
    *,
    discount: float,
    lam: float,
) -> torch.Tensor:
    r"""DreamerV3's λ-return over a trajectory of ``H + 1`` states.

    .. math::
        R_k = r_{k+1} + \gamma\, c_{k+1} \big((1 - \lambda)\, v_{k+1} + \lambda R_{k+1}\big),
        \qquad R_H = v_H,

    for ``k = H - 1, ..., 0``: the reward and continuation of the state an action leads to are credited
    to that action (the official Hieros code credits ``r_k`` instead, one step off).

    Args:
        reward: ``(B, H + 1)``; ``reward[:, k]`` is received on arriving at state ``k`` (index 0 unused).
        value: ``(B, H + 1)`` value estimates of every state.
        cont: ``(B, H + 1)`` continuation probabilities (index 0 unused).
        discount: ``gamma``.
        lam: ``lambda`` in ``[0, 1]`` (0: one-step TD targets, 1: discounted Monte Carlo returns
            bootstrapped at ``H``).

    Returns:
        ``(B, H)``, the returns ``R_0 .. R_{H-1}``.

    Raises:
        HierosError: On mismatched shapes or ``lam`` outside ``[0, 1]``.

    Examples:
        >>> import torch
        >>> r = torch.tensor([[0.0, 1.0, 1.0]])
        >>> lambda_return(r, torch.zeros(1, 3), torch.ones(1, 3), discount=0.5, lam=1.0)
        tensor([[1.5000, 1.0000]])
    """
    check(
        isinstance(reward, torch.Tensor) and reward.dim() == 2 and reward.shape[1] >= 2,
        "reward",
        "a tensor of shape (B, H + 1) with H >= 1",
        got=getattr(reward, "shape", type(reward).__name__),
    )
    for name, x in (("value", value), ("cont", cont)):
        check(
            isinstance(x, torch.Tensor) and x.shape == reward.shape,
            name,
            f"a tensor of the shape of reward {tuple(reward.shape)}",
            got=getattr(x, "shape", type(x)),
        )
    discount = check_float(discount, "discount", minimum=0.0)
    lam = check_float(lam, "lam", minimum=0.0, maximum=1.0)
    disc = discount * cont[:, 1:]
    interim = reward[:, 1:] + disc * (1.0 - lam) * value[:, 1:]
    returns = []
    last = value[:, -1]
    for k in range(reward.shape[1] - 2, -1, -1):
        last = interim[:, k] + disc[:, k] * lam * last
        returns.append(last)
    return torch.stack(returns[::-1], dim=1)


class ReturnNormalizer(nn.Module):
    """DreamerV3 (2023)'s return scale: EMAs of the 5th and 95th percentiles of the returns.

    After each :meth:`update` with a batch of returns ``R``,

    .. math::
        \\text{low} \\leftarrow (1 - \\alpha)\\,\\text{low} + \\alpha\\, P_5(R), \\quad
        \\text{high} \\leftarrow (1 - \\alpha)\\,\\text{high} + \\alpha\\, P_{95}(R), \\quad
        S = \\max(\\text{limit}, \\text{high} - \\text{low}),

    with ``alpha = 0.01`` and the EMAs starting at 0 (no bias correction, as DreamerV3). Advantages are
    divided by :attr:`scale`, so returns that vary over more than ``limit`` are squashed to about unit
    range while small returns are not amplified. The EMAs are buffers: they are in ``state_dict``.

    Args:
        rate: ``alpha``, the EMA rate.
        low: Lower percentile, as a fraction.
        high: Upper percentile, as a fraction.
        limit: Smallest scale.

    Examples:
        >>> import torch
        >>> norm = ReturnNormalizer()
        >>> norm.update(torch.linspace(0, 100, 101))
        >>> round(float(norm.scale()), 2)
        1.0
        >>> for _ in range(1000):
        ...     norm.update(torch.linspace(0, 100, 101))
        >>> round(float(norm.scale()), 1)
        90.0
    """

    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, rate: float = 0.01, low: float = 0.05, high: float = 0.95, limit: float = 1.0) -> None:
        super().__init__()
        self.rate = check_float(rate, "rate", minimum=0.0, maximum=1.0)
        self.low_q = check_float(low, "low", minimum=0.0, maximum=1.0)
        self.high_q = check_float(high, "high", minimum=self.low_q, maximum=1.0)
        self.limit = check_float(limit, "limit", minimum=0.0, exclusive_minimum=True)
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    def update(self, returns: torch.Tensor) -> None:
        """Move the EMAs towards the percentiles of ``returns`` (any shape; no gradient)."""
        self.commit(self.step(returns))

    def step(self, returns: torch.Tensor) -> torch.Tensor:
        """The EMAs ``(low, high)`` that :meth:`update` would set, as a ``(2,)`` tensor, without setting them.

        An agent computes its loss with them and :meth:`commit` s them only once the update is accepted
        (finite), so one non-finite batch cannot poison the scale.
        """
        flat = returns.detach().float().reshape(-1)
        quantiles = torch.quantile(flat, torch.tensor([self.low_q, self.high_q], device=flat.device))
        low = torch.lerp(self.low, quantiles[0].to(self.low.dtype), self.rate)
        high = torch.lerp(self.high, quantiles[1].to(self.high.dtype), self.rate)
        return torch.stack([low, high])

    def commit(self, stats: torch.Tensor) -> None:
        """Set the EMAs to ``stats`` from :meth:`step`."""
        self.low.copy_(stats[0])
        self.high.copy_(stats[1])

    def scale(self, stats: torch.Tensor | None = None) -> torch.Tensor:
        """``max(limit, high - low)``, a 0-d tensor, of the EMAs (or of ``stats`` from :meth:`step`)."""
        low, high = (self.low, self.high) if stats is None else (stats[0], stats[1])
        return torch.clamp(high - low, min=self.limit)
