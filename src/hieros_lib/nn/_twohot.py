"""The two-hot discrete regression head of DreamerV3, with bins in symlog space."""

from __future__ import annotations

import torch
from torch import nn

from hieros_lib.errors import check, check_int
from hieros_lib.nn._functional import symexp, symlog

__all__ = ["TwoHot"]


class TwoHot(nn.Module):
    """Two-hot encoding of scalars over equally spaced bins in symlog space.

    The bins are ``b_i = low + i * (high - low) / (num_bins - 1)``. A target ``y`` is encoded at
    ``x = clip(symlog(y), low, high)``: with ``b_k <= x <= b_{k+1}``, weight ``(b_{k+1} - x) / delta``
    goes to bin ``k`` and ``(x - b_k) / delta`` to bin ``k + 1``, so ``sum_i w_i b_i = x`` exactly.
    The head predicts logits over the bins; its loss is the cross-entropy with the two-hot target and
    its prediction is ``symexp(sum_i softmax(logits)_i b_i)``.

    Args:
        num_bins: Number of bins (DreamerV3: 255).
        low: Lowest bin, in symlog space.
        high: Highest bin, in symlog space.

    Raises:
        HierosError: If ``num_bins < 2`` or ``low >= high``.

    Examples:
        >>> import torch
        >>> head = TwoHot()
        >>> y = torch.tensor([-3.0, 0.0, 250.0])
        >>> torch.allclose(head.mean(head.encode(y).clamp_min(1e-12).log()), y, rtol=1e-4)
        True
    """

    bins: torch.Tensor

    def __init__(self, num_bins: int = 255, low: float = -20.0, high: float = 20.0) -> None:
        super().__init__()
        check_int(num_bins, "num_bins", minimum=2)
        check(low < high, "low", f"a value below high={high}", got=low)
        self.num_bins = num_bins
        self.low = float(low)
        self.high = float(high)
        bins = torch.linspace(low, high, num_bins, dtype=torch.float64).to(torch.get_default_dtype())
        self.register_buffer("bins", bins, persistent=False)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}, low={self.low}, high={self.high}"

    def _bins(self, like: torch.Tensor) -> torch.Tensor:
        if like.dtype == self.bins.dtype and like.device == self.bins.device:
            return self.bins
        if like.dtype == torch.float64:  # exact bins, not a float32 buffer cast up
            return torch.linspace(self.low, self.high, self.num_bins, dtype=like.dtype, device=like.device)
        return self.bins.to(device=like.device, dtype=like.dtype)

    def _check_logits(self, logits: torch.Tensor) -> None:
        check(
            isinstance(logits, torch.Tensor) and logits.dim() >= 1 and logits.shape[-1] == self.num_bins,
            "logits", f"a tensor of shape (..., {self.num_bins})",
            got=getattr(logits, "shape", type(logits).__name__),
        )

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Two-hot encode ``symlog(y)``.

        Args:
            y: ``(...)`` float tensor of targets (raw, not symlog).

        Returns:
            ``(..., num_bins)`` weights: non-negative, two adjacent non-zero at most, summing to 1.
        """
        check(isinstance(y, torch.Tensor) and y.is_floating_point(), "y", "a floating-point tensor",
              got=getattr(y, "dtype", type(y).__name__))
        bins = self._bins(y)
        x = symlog(y).clamp(self.low, self.high)
        below = torch.searchsorted(bins, x.detach().contiguous(), right=True) - 1
        below = below.clamp(0, self.num_bins - 2)
        above = below + 1
        delta = bins[above] - bins[below]
        w_above = ((x - bins[below]) / delta).clamp(0.0, 1.0)
        w_below = 1.0 - w_above
        out = torch.zeros(*y.shape, self.num_bins, device=y.device, dtype=y.dtype)
        out.scatter_add_(-1, below.unsqueeze(-1), w_below.unsqueeze(-1))
        out.scatter_add_(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))
        return out

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy ``-sum_i w_i log softmax(logits)_i`` with ``w = encode(y)``.

        ``y`` is a target: no gradient flows into it.

        Args:
            logits: ``(..., num_bins)`` predicted logits.
            y: ``(...)`` raw targets.

        Returns:
            ``(...)`` negative log-likelihood in nats.

        Raises:
            HierosError: If the shapes do not match.
        """
        self._check_logits(logits)
        check(isinstance(y, torch.Tensor) and y.shape == logits.shape[:-1], "y",
              f"a tensor of shape {tuple(logits.shape[:-1])}", got=getattr(y, "shape", type(y).__name__))
        target = self.encode(y.detach().to(logits.dtype))
        return -(target * torch.log_softmax(logits, -1)).sum(-1)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The prediction ``symexp(sum_i softmax(logits)_i b_i)``.

        Args:
            logits: ``(..., num_bins)`` predicted logits.

        Returns:
            ``(...)`` prediction in the raw (not symlog) space.
        """
        self._check_logits(logits)
        bins = self._bins(logits)
        return symexp((torch.softmax(logits, -1) * bins).sum(-1))
