"""Intrinsic rewards of Hieros and their mixture (paper section 2.1, equations 1 and 2)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from hieros_lib.errors import check
from hieros_lib.hrl._autoencoder import SubgoalAutoencoder

__all__ = ["MixedRewards", "RewardWeights", "mix_rewards", "novelty_reward", "subgoal_reward"]


def subgoal_reward(
    state: torch.Tensor, goal: torch.Tensor, *, differentiable: bool = False, eps: float = 1e-8
) -> torch.Tensor:
    """Director's max-cosine subgoal reward, ``(g / m) . (s / m)`` with ``m = max(||g||, ||s||)``.

    This divides by ``m`` *twice* (once for each vector), as in Director (Hafner et al. 2022), whose
    reward the Hieros paper says it uses; equation 2 of the Hieros paper prints ``g . s / m``, dividing
    once. Dividing twice is what makes the reward a similarity: it is at most 1, with equality exactly
    when ``s = g`` (``g . s <= ||g|| ||s|| <= m**2``); it is the cosine when the norms match, and it falls
    as ``1 / c`` when the state overshoots along the goal (``s = c g``, ``c > 1``) as well as when it
    undershoots (``c`` for ``0 < c < 1``). Dividing once would instead grow with the norm of the goal
    and give the same reward ``||g||`` to every overshoot along ``g``.

    Both vectors must be in the same space: ``state`` is the world model's ``h`` and ``goal`` is
    ``SubgoalAutoencoder.decode(subgoal)``, which reconstructs ``h`` in that same space. ``m`` is
    clamped below at ``eps`` (after the rescaling below), so two zero vectors give 0. The reward is
    computed as ``(g / m) . (s / m)`` after dividing both vectors by their largest absolute entry (the
    reward does not change), so it stays in ``[-1, 1]`` for any finite inputs (``g . s / m**2`` and the
    norms themselves overflow float32 near ``1e20``).

    **Shapes.** ``state`` and ``goal`` must have the same number of dimensions, and each dimension must
    match or be 1 in one of them. So a goal held over an imagined horizon is written with its time axis,
    ``goal[:, None]`` ``(B, 1, D)`` against ``state`` ``(B, H + 1, D)``; a goal ``(B, D)`` against a state
    ``(B, H + 1, D)`` is refused, because plain broadcasting would align ``B`` with the time axis and pair
    goals with the wrong steps whenever ``B == H + 1``.

    Args:
        state: ``(..., D)`` states ``s``.
        goal: ``(..., D)`` goals ``g`` with as many dimensions as ``state``, each of size 1 or equal to
            the state's.
        differentiable: If false (the default), no gradient flows from the reward into ``state`` or
            ``goal`` (so none into the world model or the autoencoder); set it to backpropagate.
        eps: Lower bound of ``m``.

    Returns:
        ``(...)`` rewards in ``[-1, 1]``, of the broadcast shape of the leading dimensions.

    Raises:
        HierosError: If the ranks or the last dimensions differ, or a dimension is neither 1 nor equal.

    Examples:
        >>> import torch
        >>> g = torch.tensor([3.0, 4.0])
        >>> subgoal_reward(torch.stack([g, 2 * g, 0.5 * g, -g]), g[None])
        tensor([ 1.0000,  0.5000,  0.5000, -1.0000])
    """
    for name, t in (("state", state), ("goal", goal)):
        check(isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 1, name,
              "a floating-point tensor of shape (..., D)", got=getattr(t, "shape", type(t).__name__))
    check(goal.shape[-1] == state.shape[-1], "goal", f"a tensor of shape (..., {state.shape[-1]})",
          got=tuple(goal.shape))
    check(
        goal.dim() == state.dim()
        and all(g == s or g == 1 or s == 1 for g, s in zip(goal.shape, state.shape, strict=True)),
        "goal",
        f"a shape with the rank of state {tuple(state.shape)} whose every dimension matches it or is 1 "
        "(make a held goal's time axis explicit, e.g. goal[:, None])",
        got=tuple(goal.shape),
    )
    if not differentiable:
        state, goal = state.detach(), goal.detach()
    # The reward is unchanged when both vectors are scaled alike: divide by the largest entry first, so
    # the norms cannot overflow (a norm of ~1e20 squares to ~1e40 > the float32 range).
    scale = torch.maximum(state.abs().amax(-1, keepdim=True), goal.abs().amax(-1, keepdim=True))
    scale = scale.clamp_min(torch.finfo(scale.dtype).tiny)
    state, goal = state / scale, goal / scale
    norm_s = torch.linalg.vector_norm(state, dim=-1, keepdim=True)
    norm_g = torch.linalg.vector_norm(goal, dim=-1, keepdim=True)
    m = torch.maximum(norm_s, norm_g).clamp_min(eps)
    return ((goal / m) * (state / m)).sum(-1)


def novelty_reward(
    h: torch.Tensor,
    autoencoder: SubgoalAutoencoder,
    *,
    sample: bool = False,
    generator: torch.Generator | None = None,
    differentiable: bool = False,
) -> torch.Tensor:
    """Novelty as the autoencoder's reconstruction error, ``||h - f(g(h))||_2`` (equation 2).

    The reconstruction ``f(g(h))`` is in the space of ``h`` (see :class:`SubgoalAutoencoder`), so ``h``
    is compared with a reconstruction of ``h`` itself; the official code compares raw ``h`` with a
    reconstruction of ``symlog(h)``. The subgoal is the encoder's mode by default, so the reward is
    deterministic. It equals the reconstruction term of the autoencoder's loss (with the mode).

    Args:
        h: ``(..., h_dim)`` deterministic world-model states.
        autoencoder: The subgoal autoencoder of the same level.
        sample: Reconstruct through a sampled subgoal instead of the mode.
        generator: Source of randomness when sampling.
        differentiable: If false (the default), the reward is computed without autograd: no gradient
            reaches ``h`` (the world model) or the autoencoder's parameters.

    Returns:
        ``(...)`` non-negative rewards.

    Raises:
        HierosError: If ``h`` is not ``(..., h_dim)`` for the autoencoder.

    Examples:
        >>> import torch
        >>> ae = SubgoalAutoencoder(16, hidden=32)
        >>> novelty_reward(torch.randn(4, 10, 16), ae).shape
        torch.Size([4, 10])
    """
    check(isinstance(autoencoder, SubgoalAutoencoder), "autoencoder", "a SubgoalAutoencoder",
          got=type(autoencoder).__name__)
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        recon = autoencoder.reconstruct(h, sample=sample, generator=generator)
        return torch.linalg.vector_norm(h - recon, dim=-1)


class RewardWeights(NamedTuple):
    """Weights of equation 1; the defaults are those of appendix E."""

    #: Weight of the extrinsic (environment) reward.
    extrinsic: float = 1.0
    #: Weight of the subgoal reward.
    subgoal: float = 0.3
    #: Weight of the novelty reward.
    novelty: float = 0.1


class MixedRewards(NamedTuple):
    """The mixed reward of equation 1 and its parts."""

    #: ``(...)`` the mixed reward, ``sum_name weights[name] * terms[name]``.
    total: torch.Tensor
    #: The *unweighted* reward terms given, by name (``"extrinsic"``, ``"subgoal"``, ``"novelty"``),
    #: for training one critic per term.
    terms: dict[str, torch.Tensor]
    #: The weight of each term in ``terms``.
    weights: dict[str, float]


def mix_rewards(
    extrinsic: torch.Tensor,
    subgoal: torch.Tensor | None = None,
    novelty: torch.Tensor | None = None,
    *,
    weights: RewardWeights | None = None,
) -> MixedRewards:
    """Equation 1: ``r = w_extr r_extr + w_g r_g + w_nov r_nov``, keeping the terms apart as well.

    A missing term (``None``, e.g. the subgoal reward of the top level, which has no goal) is left out
    of the sum and of ``terms``. This is for an agent with one critic on the mixed reward; the Hieros
    agent (:class:`~hieros_lib.agents.ActorCritic`) does not call it: it trains one critic per unweighted
    term and weighs their normalised advantages with the same :class:`RewardWeights`. This function adds
    no gradient isolation of its own: the terms are combined as given (the reward functions above detach
    by default).

    Args:
        extrinsic: ``(...)`` extrinsic rewards.
        subgoal: ``(...)`` subgoal rewards of the same shape, or ``None``.
        novelty: ``(...)`` novelty rewards of the same shape, or ``None``.
        weights: The weights; :class:`RewardWeights` ``(1.0, 0.3, 0.1)`` by default (appendix E).

    Returns:
        :class:`MixedRewards` with the total, the present terms and their weights.

    Raises:
        HierosError: If the shapes differ.

    Examples:
        >>> import torch
        >>> mixed = mix_rewards(torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([2.0]))
        >>> mixed.total, sorted(mixed.terms)
        (tensor([1.3500]), ['extrinsic', 'novelty', 'subgoal'])
    """
    w = RewardWeights() if weights is None else weights
    check(isinstance(w, RewardWeights), "weights", "a RewardWeights", got=type(w).__name__)
    check(isinstance(extrinsic, torch.Tensor), "extrinsic", "a tensor", got=type(extrinsic).__name__)
    terms: dict[str, torch.Tensor] = {"extrinsic": extrinsic}
    for name, term in (("subgoal", subgoal), ("novelty", novelty)):
        if term is None:
            continue
        check(isinstance(term, torch.Tensor) and term.shape == extrinsic.shape, name,
              f"a tensor of the shape of extrinsic {tuple(extrinsic.shape)}",
              got=getattr(term, "shape", type(term).__name__))
        terms[name] = term
    used = {name: float(getattr(w, name)) for name in terms}
    total = sum((used[name] * term for name, term in terms.items()), torch.zeros_like(extrinsic))
    return MixedRewards(total, terms, used)
