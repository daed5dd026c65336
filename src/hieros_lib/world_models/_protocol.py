"""The :class:`WorldModel` protocol and the data types its methods exchange.

The protocol documents every method's arguments once; the models (:class:`~hieros_lib.world_models.S5WM`,
:class:`~hieros_lib.world_models.RSSM`, :class:`~hieros_lib.world_models.TWM`) refer to it. The shared
algorithms live in ``_algorithms.py`` (the action shift, the imagination loop), the checks in
``_validate.py`` and the state-tree utilities in :mod:`hieros_lib._tree`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

__all__ = [
    "BATCH_FIELDS",
    "Imagination",
    "ImaginedStep",
    "Observation",
    "Policy",
    "State",
    "WorldModel",
    "WorldModelLoss",
]

State = Any
"""A model's state: a NamedTuple (or nested tuples) of tensors with leading batch dims."""

Policy = Callable[["ImaginedStep"], torch.Tensor]
"""``policy(step) -> action (B, A)``: picks the action taken *after* the state of an
:class:`ImaginedStep`."""

BATCH_FIELDS: tuple[str, ...] = ("obs", "action", "reward", "is_first", "is_last", "is_terminal")
"""The fields of a replay batch that :meth:`WorldModel.loss` reads."""

class Observation(NamedTuple):
    """What :meth:`WorldModel.observe` returns.

    Attributes:
        posterior: States ``(B, T, ...)`` built with the observation of each step (what the agent acts
            from and where imagination starts).
        prior: States ``(B, T, ...)`` predicted *without* the observation of each step. ``prior[:, t]``
            depends only on ``obs[:, :t]`` and ``action[:, :t]``.
        final_state: The posterior state of the last step ``(B, ...)``, to continue from with
            ``observe(..., state=final_state, prev_action=action[:, -1])``.
    """

    posterior: Any
    prior: Any
    final_state: Any


class ImaginedStep(NamedTuple):
    """One state of an imagined rollout with what a policy reads from it (each computed once).

    Attributes:
        state: The model's state, batch ``(B,)``.
        features: ``(B, feature_dim)``, :meth:`WorldModel.features`.
        deter: ``(B, deter_dim)``, :meth:`WorldModel.deter`.
        reward: ``(B,)`` predicted reward of arriving at the state.
        cont: ``(B,)`` predicted continuation probability.
        entropy: ``(B,)`` entropy of the prior at the state.
    """

    state: Any
    features: torch.Tensor
    deter: torch.Tensor
    reward: torch.Tensor
    cont: torch.Tensor
    entropy: torch.Tensor


class Imagination(NamedTuple):
    """What :func:`imagine` returns for ``horizon`` steps from ``B`` start states.

    Index ``k = 0`` is the start state, ``k = 1 .. horizon`` are the imagined (prior) states. The states
    themselves are not kept (a Transformer's would hold its whole memory per step); everything the agent
    reads from them is, plus the last state to continue from.

    Attributes:
        features: ``(B, horizon + 1, feature_dim)``, :meth:`WorldModel.features` of each state.
        deter: ``(B, horizon + 1, deter_dim)``, :meth:`WorldModel.deter` of each state.
        actions: ``(B, horizon + 1, A)``; ``actions[:, k]`` is the policy's action after state ``k`` (the
            last one is chosen but not simulated).
        reward: ``(B, horizon + 1)`` predicted reward received on arriving at state ``k``.
        cont: ``(B, horizon + 1)`` predicted probability that the episode continues at state ``k``.
        entropy: ``(B, horizon + 1)`` entropy of the prior at each state (:meth:`WorldModel.entropy`).
        final_state: The state at ``k = horizon``.
    """

    features: torch.Tensor
    deter: torch.Tensor
    actions: torch.Tensor
    reward: torch.Tensor
    cont: torch.Tensor
    entropy: torch.Tensor
    final_state: Any


class WorldModelLoss(NamedTuple):
    """What :meth:`WorldModel.loss` returns.

    Attributes:
        loss: Scalar total loss to minimise.
        metrics: Named scalar tensors (detached) for logging, e.g. ``"loss/obs"``, ``"kl/dyn"``.
        observed: The :class:`Observation` of the batch, so imagination can start from its posterior.
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    observed: Observation


@runtime_checkable
class WorldModel(Protocol):
    """What every world model (``S5WM``, ``RSSM``, ``TWM``, or yours) provides.

    Models are :class:`torch.nn.Module` subclasses. Data conventions (the docs' architecture page): a
    stored step ``t`` holds ``obs[t]`` (uint8 ``(H, W, C)``), ``action[t]`` (float, one-hot for discrete
    actions, chosen *after* seeing ``obs[t]``), ``reward[t]`` (received on arriving at ``obs[t]``),
    ``is_first[t]``, ``is_last[t]``, ``is_terminal[t]``. A model is conditioned on the previous action
    ``action[t-1]``, made by :func:`shift_actions` and taken as zero where ``is_first[t]``.

    Causality contract (tested for every registered model): ``posterior[:, t]`` depends only on
    ``obs[:, :t+1]``, ``action[:, :t]`` and ``is_first[:, :t+1]``; ``prior[:, t]`` only on ``obs[:, :t]``,
    ``action[:, :t]`` and ``is_first[:, :t+1]``; an ``is_first`` at ``t`` cuts every dependence on steps
    before ``t``.

    Attributes:
        obs_shape: ``(H, W, C)`` for image observations, ``(D,)`` for vectors.
        action_dim: ``A``, the size of an action vector.
        feature_dim: Size of :meth:`features`.
        deter_dim: Size of :meth:`deter`.
    """

    obs_shape: tuple[int, ...]
    action_dim: int
    feature_dim: int
    deter_dim: int

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> State:
        """The state before the first step of an episode, batch shape ``(batch_size,)``."""
        ...

    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: State | None = None,
        *,
        prev_action: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        reward: torch.Tensor | None = None,
        validate: bool = True,
    ) -> Observation:
        """Posterior and prior states of a stored sequence.

        Args:
            obs: uint8 images ``(B, T, H, W, C)`` or float vectors ``(B, T, D)`` (the model's ``obs_shape``).
            action: float ``(B, T, A)``, as stored (``action[t]`` chosen after ``obs[t]``; the model shifts
                it). ``action[:, -1]`` affects nothing returned.
            is_first: bool ``(B, T)``.
            state: State ``(B, ...)`` that step 0 continues from (``initial_state`` if None).
            prev_action: ``(B, A)`` action taken after ``state`` (zeros if None).
            sample: Sample the posterior latents (True) or take their mode (False).
            generator: Random generator for the samples.
            reward: float ``(B, T)``, ``reward[t]`` received on arriving at ``obs[t]``, or None. Models
                that condition on past rewards (TWM) use it; the others validate it and ignore it, so
                callers can pass it to every model alike. The prior at ``t`` never depends on
                ``reward[t]``.
            validate: Also check values (finite inputs, actions in ``[-1, 1]``, a finite ``state``);
                shapes, dtypes, devices and the state's batch are checked either way.
        """
        ...

    def observe_step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: State,
        *,
        reward: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = False,
    ) -> State:
        """The posterior state of one step for ``B`` environments: the acting path.

        Equals :meth:`observe` run one step at a time (every model is tested for it).

        Args:
            obs: ``(B, *obs_shape)`` observation of this step.
            prev_action: ``(B, A)`` action taken after ``state`` (ignored where ``is_first``).
            is_first: ``(B,)`` bool; where true, the step starts from the initial state.
            state: The state ``(B,)`` of the previous step.
            reward: ``(B,)`` reward received on arriving at ``obs``; models that condition on rewards
                (TWM) use it, the others ignore it.
            sample: Sample the posterior latent (True) or take its mode.
            generator: Random generator for the sample.
            validate: Also check values (off by default: no host synchronisation per acting step);
                shapes are always checked.

        Returns:
            The posterior state ``(B,)``.
        """
        ...

    def imagine_step(
        self,
        state: State,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> State:
        """The prior state that follows ``state`` after ``action``: one step of imagination.

        Args:
            state: The state ``(B,)``.
            action: ``(B, A)`` action taken after ``state``.
            sample: Sample the next latent from the prior (True) or take its mode.
            generator: Random generator for the sample.
            validate: Also check that ``state`` and ``action`` are finite (shapes always).

        Returns:
            The next (prior) state ``(B,)``.
        """
        ...

    def imagine(
        self,
        start: State,
        policy: Policy,
        horizon: int,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> Imagination:
        """Roll the prior forward under ``policy``; delegates to :func:`imagine`."""
        ...

    def start_states(self, observed: Observation) -> State:
        """Start states for imagination from every step of an observed batch, batch ``(B * T,)``."""
        ...

    def loss(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> WorldModelLoss:
        """Total loss, metrics and the observation of a replay batch (fields :data:`BATCH_FIELDS`).

        The batch is validated once (values too, unless ``validate=False``).
        """
        ...

    def features(self, state: State) -> torch.Tensor:
        """The model state as one vector, ``cat(deter(state), flatten(stoch(state)))`` ``(..., feature_dim)``
        in every model: the actor's and critics' input (the paper's ``(h_t, z_t)``)."""
        ...

    def deter(self, state: State) -> torch.Tensor:
        """The deterministic state ``h_t`` ``(..., deter_dim)`` (what the subgoal autoencoder reads)."""
        ...

    def stoch(self, state: State) -> torch.Tensor:
        """The stochastic state ``z_t``, one-hot ``(..., G, K)``."""
        ...

    def decode(self, state: State) -> torch.Tensor:
        """Decoded observation: an image, float ``(..., H, W, C)`` in ``[0, 1]``, or a vector ``(..., D)``."""
        ...

    def reward(self, state: State) -> torch.Tensor:
        """Predicted reward ``(...)`` received on arriving at ``state``."""
        ...

    def cont(self, state: State) -> torch.Tensor:
        """Predicted probability ``(...)`` that the episode continues at ``state``."""
        ...

    def entropy(self, state: State) -> torch.Tensor:
        """Entropy ``(...)`` of the *prior* over ``z`` at this step, also for posterior states (the
        uncertainty the actor reads, equation 3 of the Hieros paper)."""
        ...
