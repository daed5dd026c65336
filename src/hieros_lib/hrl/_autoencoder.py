"""The subgoal autoencoder of Hieros (paper section 2.1, equations 4 and 5)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hieros_lib.errors import check, check_float, check_int
from hieros_lib.nn import (
    MLP,
    categorical_entropy,
    categorical_kl,
    categorical_probs,
    sample_onehot,
    symlog,
    unimix_logits,
)

__all__ = ["SubgoalAutoencoder"]


class SubgoalAutoencoder(nn.Module):
    r"""Compresses a deterministic world-model state ``h`` into a discrete subgoal and back.

    The encoder ``p(g | h)`` is an MLP giving logits for ``groups`` categoricals of ``classes`` classes
    each (8 x 8 in the paper), mixed with 1% uniform (``unimix``); a subgoal is a one-hot ``(groups,
    classes)`` sample with straight-through gradients. The decoder ``f(g)`` is an MLP from the flattened
    one-hot back to ``h``. The loss is equation 5 of the paper with its reconstruction term measured
    relative to the spread of ``h``:

    .. math::
        \mathcal{L} = \sum_d \frac{(f(g)_d - h_d)^2}{2 \sigma_d^2}
            + \beta\, \mathrm{KL}[p(g \mid h) \,\|\, q(g)], \qquad g \sim p(g \mid h),

    where ``q`` is the uniform prior (``KL = sum_groups (log classes - H(p_group))``, at most
    ``groups * log(classes)`` = 16.6 nats for 8 x 8) and ``sigma_d^2`` is an exponential moving average
    (rate ``variance_rate``) of the variance of ``h_d`` over the training batches: the Gaussian negative
    log-likelihood of ``h`` with the data's own per-dimension variance. Equation 5 prints the plain
    Euclidean norm ``||f(g) - h||_2``; with it the balance between the two terms depends on the scale of
    ``h``, and in our experiments (64 clusters in R^256, 2000 Adam steps) the encoder collapsed to the
    uniform distribution, reconstructing no better than the mean, at norm 10 and at norm 0.85 (the
    scale of a fresh S5WM's ``h``): the subgoals carried no information. Measured relative to the spread
    of ``h``, predicting the mean costs ``D / 2`` nats (128 for ``D = 256``), far more than any code costs,
    so the codes are used at every scale (the same experiment: reconstruction errors 9% and 19% of the
    mean's, 10 to 12 nats of KL). The official code uses a mean squared error against ``symlog(h)``.

    **One space.** The decoder reconstructs ``h`` itself, not a transform of it: the loss, the novelty
    reward (:func:`novelty_reward`) and the subgoal reward (:func:`subgoal_reward`, comparing ``h`` with
    ``decode(g)``) all live in the space of ``h`` as the world model gives it. With
    ``symlog_input=True`` the encoder reads ``symlog(h)``, which only normalises the encoder's input.

    **Standardised subgoal space** (``standardize=True``, a departure from the paper, off by default).
    A world model's ``h`` can share one large component across all states: in the goal-following
    experiment on :class:`~hieros_lib.envs.Rooms` (docs, "Does the hierarchy help?") the cosine of the
    ``h`` of two cells 11 or more moves apart was 0.94, the codes of 122 cells collapsed to 8, and the
    subgoal reward ranked a nearer cell above a farther one no better than chance. With
    ``standardize=True`` the autoencoder also tracks the mean of ``h`` (an EMA like the variance's) and
    the encoder reads ``(h - mean) / sigma`` (:meth:`standardized`); a level using it compares states and
    decoded subgoals in that space too.

    **Adaptive KL weight** (``kl_target``, Director's choice, off by default). Instead of the fixed
    ``beta``, the KL term's weight ``beta_t`` (a buffer, starting at 1) is multiplied by 1.1 after an
    update whose mean KL exceeded ``1.1 * kl_target`` and divided by 1.1 after one below
    ``kl_target / 1.1``, within ``[1e-5, 1]`` (:meth:`adapt_kl`): the codes are held near ``kl_target``
    nats of information whatever the scale of the reconstruction term.

    **Gradients.** :meth:`loss` detaches ``h`` by default (``detach_input=True``), so training the
    autoencoder does not shape the world model; it trains the autoencoder's own parameters only.

    Args:
        h_dim: Size of ``h``.
        groups: Number of categoricals in a subgoal.
        classes: Classes per categorical.
        hidden: Width of the hidden layers of encoder and decoder.
        layers: Number of hidden layers of encoder and decoder.
        beta: Weight of the KL term (appendix E: 0.5).
        unimix: Uniform mix of the encoder distribution.
        symlog_input: Whether the encoder reads ``symlog(h)`` instead of ``h``.
        variance_rate: EMA rate of the per-dimension variance of ``h`` (updated by :meth:`loss`).
        standardize: Encode the standardised ``(h - mean) / sigma`` (see above; overrides
            ``symlog_input``).
        kl_target: Adapt the KL weight to hold the KL near this many nats (see above), or None for the
            fixed ``beta`` (the paper).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        HierosError: On non-positive sizes, a negative ``beta`` or ``unimix`` outside ``[0, 1]``.

    Examples:
        >>> import torch
        >>> ae = SubgoalAutoencoder(16, hidden=32)
        >>> h = torch.randn(5, 16)
        >>> g = ae.encode(h, generator=torch.Generator().manual_seed(0))
        >>> tuple(g.shape), tuple(ae.decode(g).shape)
        ((5, 8, 8), (5, 16))
        >>> loss, metrics = ae.loss(h)
        >>> sorted(metrics)
        ['entropy', 'error', 'kl', 'loss', 'recon']
    """

    h_variance: torch.Tensor
    variance_seen: torch.Tensor
    h_mean: torch.Tensor  # standardize=True only
    kl_scale: torch.Tensor  # kl_target only

    def __init__(
        self,
        h_dim: int,
        *,
        groups: int = 8,
        classes: int = 8,
        hidden: int = 256,
        layers: int = 2,
        beta: float = 0.5,
        unimix: float = 0.01,
        symlog_input: bool = True,
        variance_rate: float = 0.01,
        standardize: bool = False,
        kl_target: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("h_dim", h_dim), ("groups", groups), ("classes", classes)):
            check_int(value, name, minimum=1)
        check(beta >= 0.0, "beta", "a non-negative float", got=beta)
        check(0.0 <= unimix <= 1.0, "unimix", "a float in [0, 1]", got=unimix)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.h_dim = h_dim
        self.groups = groups
        self.classes = classes
        self.beta = float(beta)
        self.unimix = float(unimix)
        self.symlog_input = symlog_input
        self.variance_rate = check_float(variance_rate, "variance_rate", minimum=0.0, maximum=1.0,
                                         exclusive_minimum=True)
        self.encoder = MLP(h_dim, groups * classes, hidden=hidden, layers=layers, **factory)
        self.decoder = MLP(groups * classes, h_dim, hidden=hidden, layers=layers, **factory)
        # Per-dimension variance of h (EMA over training batches) and whether it has seen a batch.
        self.register_buffer("h_variance", torch.ones(h_dim, device=device, dtype=dtype))
        self.register_buffer("variance_seen", torch.zeros((), dtype=torch.bool, device=device))
        check(isinstance(standardize, bool), "standardize", "True or False", got=repr(standardize))
        self.standardize = standardize
        if standardize:  # the mean of h, an EMA like the variance (only then: the paper's state is unchanged)
            self.register_buffer("h_mean", torch.zeros(h_dim, device=device, dtype=dtype))
        self.kl_target = None if kl_target is None else check_float(
            kl_target, "kl_target", minimum=0.0, exclusive_minimum=True
        )
        if self.kl_target is not None:  # the adapted KL weight (only then: the paper's state is unchanged)
            self.register_buffer("kl_scale", torch.ones((), device=device, dtype=dtype))

    def extra_repr(self) -> str:
        return (f"h_dim={self.h_dim}, groups={self.groups}, classes={self.classes}, beta={self.beta}, "
                f"unimix={self.unimix}, symlog_input={self.symlog_input}, standardize={self.standardize}, "
                f"kl_target={self.kl_target}")

    def _check_h(self, h: torch.Tensor, name: str = "h") -> None:
        check(isinstance(h, torch.Tensor) and h.is_floating_point(), name, "a floating-point tensor",
              got=getattr(h, "dtype", type(h).__name__))
        check(h.dim() >= 1 and h.shape[-1] == self.h_dim, name, f"a tensor of shape (..., {self.h_dim})",
              got=tuple(h.shape))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Encoder logits of ``p(g | h)``, after the uniform mix (normalised log-probabilities).

        Args:
            h: ``(..., h_dim)`` deterministic states.

        Returns:
            ``(..., groups, classes)`` log-probabilities.
        """
        self._check_h(h)
        x = self.standardized(h) if self.standardize else (symlog(h) if self.symlog_input else h)
        raw = self.encoder(x).unflatten(-1, (self.groups, self.classes))
        return unimix_logits(raw, self.unimix)

    def encode(
        self, h: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Encode states into one-hot subgoals with straight-through gradients.

        Args:
            h: ``(..., h_dim)`` deterministic states.
            sample: Draw ``g ~ p(g | h)`` if true; otherwise take the mode (argmax per group), also with
                straight-through gradients.
            generator: Source of randomness for sampling (the global RNG if ``None``).

        Returns:
            ``(..., groups, classes)`` one-hot subgoals.
        """
        logits = self.logits(h)
        if sample:
            return sample_onehot(logits, generator=generator)
        probs = categorical_probs(logits)
        mode = torch.nn.functional.one_hot(logits.argmax(-1), self.classes).to(probs.dtype)
        return mode + (probs - probs.detach())

    def decode(self, subgoal: torch.Tensor) -> torch.Tensor:
        """Decode a subgoal back into the space of ``h``.

        Args:
            subgoal: ``(..., groups, classes)`` one-hot (or soft) subgoal.

        Returns:
            ``(..., h_dim)`` goal state.

        Raises:
            HierosError: If the last two dimensions are not ``(groups, classes)``.
        """
        check(
            isinstance(subgoal, torch.Tensor) and subgoal.dim() >= 2
            and tuple(subgoal.shape[-2:]) == (self.groups, self.classes),
            "subgoal", f"a tensor of shape (..., {self.groups}, {self.classes})",
            got=getattr(subgoal, "shape", type(subgoal).__name__),
        )
        out: torch.Tensor = self.decoder(subgoal.flatten(-2))
        return out

    def reconstruct(
        self, h: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``decode(encode(h))``, by default through the mode of the encoder.

        Args:
            h: ``(..., h_dim)`` deterministic states.
            sample: Sample the subgoal instead of taking the mode.
            generator: Source of randomness for sampling.

        Returns:
            ``(..., h_dim)`` reconstruction in the space of ``h``.
        """
        return self.decode(self.encode(h, sample=sample, generator=generator))

    @torch.no_grad()
    def variance_step(self, h: torch.Tensor) -> torch.Tensor:
        """The variance EMA ``sigma^2`` ``(h_dim,)`` after this batch of ``h``, without setting it.

        The batch's per-dimension variance moves ``sigma^2`` by ``variance_rate`` (the first batch sets
        it). Pass the result to :meth:`loss` and to :meth:`commit_variance` once the update is accepted.
        """
        self._check_h(h)
        flat = h.detach().reshape(-1, self.h_dim).to(self.h_variance.dtype)
        batch_var = flat.var(0, unbiased=False)
        rate = torch.where(self.variance_seen, self.variance_rate, 1.0)
        return torch.lerp(self.h_variance, batch_var, rate.to(self.h_variance.dtype))

    @torch.no_grad()
    def commit_variance(self, variance: torch.Tensor) -> None:
        """Set the variance EMA to ``variance`` (from :meth:`variance_step`)."""
        self.h_variance.copy_(variance)
        self.variance_seen.fill_(True)

    @torch.no_grad()
    def mean_step(self, h: torch.Tensor) -> torch.Tensor:
        """The mean EMA ``(h_dim,)`` after this batch of ``h`` (``standardize=True`` only), without setting
        it; moved like :meth:`variance_step`'s variance. Commit it with :meth:`commit_mean`."""
        check(self.standardize, "mean_step", "an autoencoder with standardize=True")
        self._check_h(h)
        flat = h.detach().reshape(-1, self.h_dim).to(self.h_mean.dtype)
        rate = torch.where(self.variance_seen, self.variance_rate, 1.0)
        return torch.lerp(self.h_mean, flat.mean(0), rate.to(self.h_mean.dtype))

    @torch.no_grad()
    def commit_mean(self, mean: torch.Tensor) -> None:
        """Set the mean EMA to ``mean`` (from :meth:`mean_step`)."""
        self.h_mean.copy_(mean)

    def standardized(self, h: torch.Tensor) -> torch.Tensor:
        """``(h - mean) / sigma`` per dimension with the EMAs (``standardize=True`` only), ``(..., h_dim)``.

        ``sigma^2`` is clamped below at ``1e-3`` of its mean over dimensions, as in :meth:`loss`.
        """
        check(self.standardize, "standardized", "an autoencoder with standardize=True")
        variance = self.h_variance.clamp_min(1e-3 * self.h_variance.mean() + 1e-12)
        return (h - self.h_mean.to(h.dtype)) / variance.sqrt().to(h.dtype)

    @property
    def kl_weight(self) -> torch.Tensor | float:
        """The weight of the KL term, ``beta`` (or the adapted ``beta_t`` with a ``kl_target``)."""
        return self.beta if self.kl_target is None else self.kl_scale

    @torch.no_grad()
    def adapt_kl(self, kl: torch.Tensor) -> None:
        """Move the adapted KL weight after an accepted update whose mean KL was ``kl`` (0-d; nothing
        without a ``kl_target``): times 1.1 above ``1.1 * kl_target``, over 1.1 below ``kl_target / 1.1``,
        clamped to ``[1e-5, 1]``."""
        if self.kl_target is None:
            return
        kl = kl.detach().to(self.kl_scale.dtype)
        down = torch.where(kl < self.kl_target / 1.1, 1 / 1.1, 1.0)
        factor = torch.where(kl > 1.1 * self.kl_target, 1.1, down)
        self.kl_scale.copy_((self.kl_scale * factor).clamp(1e-5, 1.0))

    def loss(
        self,
        h: torch.Tensor,
        *,
        detach_input: bool = True,
        generator: torch.Generator | None = None,
        variance: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss above, averaged over all leading dimensions of ``h``.

        ``recon = sum_d (decode(g) - h)_d^2 / (2 sigma_d^2)`` with ``g ~ p(g | h)`` (straight-through),
        ``kl = KL(p(g | h) || uniform)`` summed over groups, ``loss = mean(recon + beta * kl)`` (``beta_t``
        with a ``kl_target``; the caller moves it with :meth:`adapt_kl` once the update is accepted). In
        training mode ``sigma^2`` is the variance EMA after this batch (:meth:`variance_step`): given as
        ``variance`` (then nothing is changed, and the caller commits it once the update is accepted), or
        computed and set here.

        Args:
            h: ``(..., h_dim)`` deterministic states (at least two of them).
            detach_input: Stop the gradient into ``h`` (and so into the world model that made it).
            generator: Source of randomness for the sampled subgoals.
            variance: ``(h_dim,)`` the variance EMA to use, from :meth:`variance_step`.

        Returns:
            ``(loss, metrics)``: the scalar loss and detached scalar metrics ``loss``, ``recon`` (the
            normalised term above), ``error`` (the plain Euclidean error ``||decode(g) - h||_2``),
            ``kl`` and ``entropy`` (of the encoder, summed over groups), each a mean over the batch.

        Raises:
            HierosError: If ``h`` is not ``(..., h_dim)`` or holds fewer than two states.
        """
        self._check_h(h)
        check(h.numel() >= 2 * self.h_dim, "h", "at least two states", got=tuple(h.shape))
        if detach_input:
            h = h.detach()
        if variance is None:
            variance = self.h_variance
            if self.training:
                variance = self.variance_step(h)
                if self.standardize:
                    self.commit_mean(self.mean_step(h))
                self.commit_variance(variance)
        variance = variance.clamp_min(1e-3 * variance.mean() + 1e-12).to(h.dtype)
        logits = self.logits(h)
        subgoal = sample_onehot(logits, generator=generator)
        diff = self.decode(subgoal) - h
        recon = (diff.square() / (2.0 * variance)).sum(-1)
        kl = categorical_kl(logits, torch.zeros_like(logits))
        loss = (recon + self.kl_weight * kl).mean()
        metrics = {
            "loss": loss.detach(),
            "recon": recon.detach().mean(),
            "error": torch.linalg.vector_norm(diff.detach(), dim=-1).mean(),
            "kl": kl.detach().mean(),
            "entropy": categorical_entropy(logits.detach()).sum(-1).mean(),
        }
        return loss, metrics
