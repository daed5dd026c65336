"""The :class:`WorldModel` protocol, its data types, and the code every world model shares.

Everything here is model-agnostic: the action shift (the one place where ``action[t-1]`` is made out of
the stored ``action[t]``), batch validation, small helpers that map a function over a state, and the one
imagination loop (:func:`imagine`) that every model's ``imagine`` method delegates to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import torch

from hieros_lib.errors import check, check_int

__all__ = [
    "BATCH_FIELDS",
    "Imagination",
    "ImaginedStep",
    "Observation",
    "Policy",
    "WorldModel",
    "WorldModelLoss",
    "detach_state",
    "flatten_time",
    "imagine",
    "map_state",
    "shift_actions",
    "validate_action",
    "validate_batch",
    "validate_sequence",
    "validate_state",
]

State = Any
"""A model's state: a NamedTuple (or nested tuples) of tensors with leading batch dims."""

Policy = Callable[["ImaginedStep"], torch.Tensor]
"""``policy(step) -> action (B, A)``: picks the action taken *after* the state of an
:class:`ImaginedStep`."""

BATCH_FIELDS: tuple[str, ...] = ("obs", "action", "reward", "is_first", "is_last", "is_terminal")
"""The fields of a replay batch that :meth:`WorldModel.loss` reads."""

_T = TypeVar("_T")


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

        Equals :meth:`observe` run one step at a time. ``obs`` ``(B, *obs_shape)``, ``prev_action``
        ``(B, A)`` (the action taken after ``state``; ignored where ``is_first``), ``is_first`` ``(B,)``,
        ``reward`` ``(B,)`` (models that condition on rewards use it). Shapes are always checked, values
        only with ``validate`` (off by default: no host synchronisation per acting step).
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
        """The prior state that follows ``state`` (batch ``(B,)``) after ``action`` ``(B, A)``.

        ``validate`` also checks that ``state`` and ``action`` are finite.
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


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: _T) -> _T:
    """Apply ``fn`` to every tensor in a state (tensors, tuples, NamedTuples, lists, dicts, None).

    Args:
        fn: Function from tensor to tensor.
        state: A tensor or a nested container of tensors.

    Returns:
        A container of the same structure with every tensor replaced by ``fn(tensor)``.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import map_state
        >>> s = map_state(lambda x: x[:1], (torch.zeros(3, 2), (torch.ones(3),)))
        >>> s[0].shape, s[1][0].shape
        (torch.Size([1, 2]), torch.Size([1]))
    """
    if state is None:
        return state
    if isinstance(state, torch.Tensor):
        return fn(state)  # type: ignore[return-value]
    if isinstance(state, tuple):
        items = [map_state(fn, item) for item in state]
        if hasattr(state, "_fields"):
            return type(state)(*items)
        return tuple(items)  # type: ignore[return-value]
    if isinstance(state, list):
        return [map_state(fn, item) for item in state]  # type: ignore[return-value]
    if isinstance(state, dict):
        return {key: map_state(fn, value) for key, value in state.items()}  # type: ignore[return-value]
    raise TypeError(f"map_state: unsupported state element of type {type(state).__name__}")


def detach_state(state: _T) -> _T:
    """Detach every tensor of a state (for example imagination start states).

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import detach_state
        >>> detach_state((torch.ones(2, requires_grad=True),))[0].requires_grad
        False
    """
    return map_state(torch.Tensor.detach, state)


def flatten_time(state: _T) -> _T:
    """Merge the leading ``(B, T)`` dims of every tensor of a state into one ``(B * T)`` dim.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import flatten_time
        >>> flatten_time((torch.zeros(2, 3, 5),))[0].shape
        torch.Size([6, 5])
    """
    return map_state(lambda x: x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]), state)


def shift_actions(
    action: torch.Tensor, is_first: torch.Tensor, prev_action: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Turn stored actions into the previous action each step is conditioned on.

    A stored step ``t`` holds ``action[t]``, chosen *after* seeing ``obs[t]``. The world model's step ``t``
    must see ``action[t-1]`` instead, and nothing where a new episode starts:

    .. math::
        \text{prev}[t] = \begin{cases} 0 & \text{is\_first}[t] \\ \text{action}[t-1] & t > 0 \\
        \text{prev\_action} & t = 0 \end{cases}

    This is the only place in the library that does the shift (the official Hieros code feeds
    ``action[t]`` unshifted, which leaks the future into the prior).

    Args:
        action: ``(B, T, A)`` stored actions.
        is_first: ``(B, T)`` bool episode-start flags.
        prev_action: ``(B, A)`` the action taken before step 0 (zeros if None).

    Returns:
        ``(B, T, A)`` previous actions.

    Raises:
        HierosError: On bad shapes or dtypes.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import shift_actions
        >>> a = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
        >>> first = torch.tensor([[False, False, True, False]])
        >>> shift_actions(a, first)[0, :, 0].tolist()
        [0.0, 1.0, 0.0, 3.0]
    """
    check(action.dim() == 3, "action", "a tensor of shape (B, T, A)", got=tuple(action.shape))
    check(
        is_first.shape == action.shape[:2] and is_first.dtype == torch.bool,
        "is_first",
        f"a bool tensor of shape {tuple(action.shape[:2])}",
        got=f"{is_first.dtype} {tuple(is_first.shape)}",
    )
    if prev_action is None:
        first = torch.zeros_like(action[:, :1])
    else:
        check(
            prev_action.shape == (action.shape[0], action.shape[2]),
            "prev_action",
            f"a tensor of shape {(action.shape[0], action.shape[2])}",
            got=tuple(prev_action.shape),
        )
        first = prev_action.to(action.dtype).unsqueeze(1)
    prev = torch.cat([first, action[:, :-1]], dim=1)
    return prev * (~is_first).unsqueeze(-1).to(prev.dtype)


def _has_values(x: torch.Tensor) -> bool:
    """Whether value checks can read ``x`` (meta tensors have shapes but no data)."""
    return x.device.type != "meta" and x.numel() > 0


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def validate_sequence(
    obs: torch.Tensor,
    action: torch.Tensor,
    is_first: torch.Tensor,
    *,
    obs_shape: tuple[int, ...],
    action_dim: int,
    reward: torch.Tensor | None = None,
    values: bool = True,
) -> None:
    """Check the inputs of :meth:`WorldModel.observe`; raise :class:`~hieros_lib.errors.HierosError`.

    Shapes, dtypes and devices are always checked (they cost nothing); with ``values=True`` also the
    values (finite, actions in ``[-1, 1]``), which reads the data (a device-to-host synchronisation on a
    GPU), so hot paths check them once per batch and pass ``values=False`` afterwards.

    Args:
        obs: uint8 images ``(B, T, H, W, C)`` when ``obs_shape`` is ``(H, W, C)``, or float vectors
            ``(B, T, D)`` when it is ``(D,)``; ``B, T >= 1``.
        action: Floating ``(B, T, action_dim)``, finite, values in ``[-1, 1]``.
        is_first: Bool ``(B, T)``.
        obs_shape: The model's observation shape.
        action_dim: The model's ``A``.
        reward: Optional; if given, a finite floating ``(B, T)`` tensor on ``obs``'s device.
        values: Also check the values.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import validate_sequence
        >>> obs = torch.zeros(2, 3, 8, 8, 3, dtype=torch.uint8)
        >>> validate_sequence(obs, torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool),
        ...                   obs_shape=(8, 8, 3), action_dim=4)
    """
    image = len(obs_shape) == 3
    shape_text = ", ".join(map(str, obs_shape))
    check(
        isinstance(obs, torch.Tensor)
        and obs.dim() == 2 + len(obs_shape)
        and tuple(obs.shape[2:]) == tuple(obs_shape),
        "obs",
        f"a tensor of shape (B, T, {shape_text})",
        got=lambda: _describe(obs),
    )
    check(obs.shape[0] >= 1 and obs.shape[1] >= 1, "obs", "B >= 1 and T >= 1", got=tuple(obs.shape))
    if image:
        check(obs.dtype == torch.uint8, "obs", "dtype torch.uint8 (images)", got=obs.dtype)
    else:
        check(obs.is_floating_point(), "obs", "a floating-point tensor (vectors)", got=obs.dtype)
    batch = tuple(obs.shape[:2])
    check(
        isinstance(action, torch.Tensor) and action.shape == (*batch, action_dim),
        "action",
        f"a tensor of shape {(*batch, action_dim)}",
        got=lambda: _describe(action),
    )
    check(action.is_floating_point(), "action", "a floating-point tensor", got=action.dtype)
    check(
        isinstance(is_first, torch.Tensor) and is_first.shape == batch and is_first.dtype == torch.bool,
        "is_first",
        f"a bool tensor of shape {batch}",
        got=lambda: _describe(is_first),
    )
    check(
        obs.device == action.device == is_first.device,
        "action",
        f"device {obs.device}",
        got=lambda: f"{action.device} / {is_first.device}",
    )
    if reward is not None:
        _check_reward(reward, batch, obs.device, values=values)
    if values and _has_values(obs):
        if not image:
            check(bool(torch.isfinite(obs).all()), "obs", "finite values", got="NaN or inf")
        check(
            bool(torch.isfinite(action).all()) and bool((action.abs() <= 1.0).all()),
            "action",
            "finite values in [-1, 1] (one-hot for discrete actions)",
            got=lambda: f"range [{action.min().item():.3g}, {action.max().item():.3g}]",
        )


def _check_reward(
    reward: torch.Tensor, shape: tuple[int, ...], device: torch.device, *, values: bool
) -> None:
    check(
        isinstance(reward, torch.Tensor) and reward.shape == shape and reward.is_floating_point(),
        "reward",
        f"a floating-point tensor of shape {shape}",
        got=lambda: _describe(reward),
    )
    check(reward.device == device, "reward", f"device {device}", got=reward.device)
    if values and _has_values(reward):
        check(bool(torch.isfinite(reward).all()), "reward", "finite values", got="NaN or inf")


def validate_batch(
    batch: Mapping[str, torch.Tensor],
    *,
    obs_shape: tuple[int, ...],
    action_dim: int,
    values: bool = True,
) -> None:
    """Check a replay batch for :meth:`WorldModel.loss`; raise :class:`~hieros_lib.errors.HierosError`.

    Fields: ``obs`` (uint8 ``(B, T, H, W, C)`` images or float ``(B, T, D)`` vectors), ``action`` float
    ``(B, T, A)``, ``reward`` float ``(B, T)``, ``is_first`` / ``is_last`` / ``is_terminal`` bool
    ``(B, T)``. ``values`` as in :func:`validate_sequence`.

    Examples:
        >>> import torch
        >>> from hieros_lib.errors import HierosError
        >>> from hieros_lib.world_models import validate_batch
        >>> try:
        ...     validate_batch({"obs": torch.zeros(1)}, obs_shape=(8, 8, 3), action_dim=2)
        ... except HierosError as err:
        ...     print(str(err)[:26])
        batch: expected the fields
    """
    check(isinstance(batch, Mapping), "batch", "a mapping of field name -> tensor", got=type(batch))
    missing = [key for key in BATCH_FIELDS if key not in batch]
    check(not missing, "batch", f"the fields {BATCH_FIELDS}", got=f"missing {missing}")
    obs = batch["obs"]
    validate_sequence(
        obs,
        batch["action"],
        batch["is_first"],
        obs_shape=obs_shape,
        action_dim=action_dim,
        reward=batch["reward"],
        values=values,
    )
    shape = tuple(obs.shape[:2])
    for key in ("is_last", "is_terminal"):
        flag = batch[key]
        check(
            isinstance(flag, torch.Tensor) and flag.shape == shape and flag.dtype == torch.bool,
            key,
            f"a bool tensor of shape {shape}",
            got=lambda flag=flag: _describe(flag),
        )


def _leaves(state: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []

    def keep(x: torch.Tensor) -> torch.Tensor:
        out.append(x)
        return x

    map_state(keep, state)
    return out


def _kind(x: torch.Tensor) -> str:
    """A dtype's kind: floating precision may differ (autocast makes bf16 states), kinds may not."""
    if x.is_complex():
        return "complex"
    if x.is_floating_point():
        return "float"
    return str(x.dtype)


def validate_state(
    model: WorldModel,
    state: State,
    batch_size: int,
    *,
    device: torch.device,
    values: bool = True,
    name: str = "state",
) -> None:
    """Check that ``state`` is one of ``model``'s states for ``batch_size`` rows on ``device``.

    The one place where every model's states are checked: ``state`` must have the structure and shapes of
    ``model.initial_state(batch_size)`` (built on the ``meta`` device, so nothing is allocated), dtypes of
    the same kind (real floating, complex, bool; the floating precision may differ, as under autocast)
    and live on ``device``; a state of another batch size is refused, never broadcast. With ``values``
    its floating-point tensors must also be finite.

    Args:
        model: The world model the state belongs to.
        state: The state to check.
        batch_size: ``B``, the batch the state must have.
        device: The device it must be on.
        values: Also check that it is finite (reads the data).
        name: The argument's name, for messages.

    Raises:
        HierosError: On any mismatch.

    Examples:
        >>> import torch
        >>> from hieros_lib.errors import HierosError
        >>> from hieros_lib.world_models import make_world_model, validate_state
        >>> model = make_world_model("rssm", preset="tiny", action_dim=2)
        >>> validate_state(model, model.initial_state(3), 3, device=torch.device("cpu"))
        >>> try:
        ...     validate_state(model, model.initial_state(1), 3, device=torch.device("cpu"))
        ... except HierosError as err:
        ...     print(str(err)[:44])
        state: expected an RSSMState of batch size 3
    """
    reference = model.initial_state(batch_size, device="meta")
    kind = type(reference).__name__
    article = "an" if kind[:1] in "AEIOUR" else "a"
    expected = f"{article} {kind} of batch size {batch_size} on {device}"
    check(type(state) is type(reference), name, expected, got=lambda: type(state).__name__)
    mine, theirs = _leaves(state), _leaves(reference)
    same = len(mine) == len(theirs) and all(
        a.shape == b.shape and _kind(a) == _kind(b) for a, b in zip(mine, theirs, strict=True)
    )
    check(
        same,
        name,
        expected,
        got=lambda: "tensors " + ", ".join(f"{x.dtype} {tuple(x.shape)}" for x in mine),
    )
    check(
        all(x.device == device for x in mine),
        name,
        expected,
        got=lambda: f"tensors on {sorted({str(x.device) for x in mine})}",
    )
    if values:
        for x in mine:
            if (x.is_floating_point() or x.is_complex()) and _has_values(x):
                check(bool(torch.isfinite(x).all()), name, "finite values", got="NaN or inf")


def validate_action(
    action: torch.Tensor,
    batch_size: int,
    action_dim: int,
    *,
    device: torch.device,
    values: bool = True,
    name: str = "action",
) -> None:
    """Check one step of actions ``(batch_size, action_dim)``: floating, on ``device``, finite (``values``).

    Raises:
        HierosError: On a wrong shape, dtype, device or a non-finite value.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import validate_action
        >>> validate_action(torch.zeros(2, 3), 2, 3, device=torch.device("cpu"))
    """
    check(
        isinstance(action, torch.Tensor)
        and action.shape == (batch_size, action_dim)
        and action.is_floating_point(),
        name,
        f"a floating-point tensor of shape {(batch_size, action_dim)}",
        got=lambda: _describe(action),
    )
    check(action.device == device, name, f"device {device}", got=action.device)
    if values and _has_values(action):
        check(bool(torch.isfinite(action).all()), name, "finite values", got="NaN or inf")


def _validate_observe(
    model: WorldModel,
    obs: torch.Tensor,
    action: torch.Tensor,
    is_first: torch.Tensor,
    state: State | None,
    prev_action: torch.Tensor | None,
    reward: torch.Tensor | None,
    *,
    values: bool,
) -> None:
    """Everything :meth:`WorldModel.observe` checks, in one place for every model."""
    validate_sequence(
        obs,
        action,
        is_first,
        obs_shape=model.obs_shape,
        action_dim=model.action_dim,
        reward=reward,
        values=values,
    )
    batch = int(obs.shape[0])
    if state is not None:
        validate_state(model, state, batch, device=obs.device, values=values)
    if prev_action is not None:
        validate_action(
            prev_action, batch, model.action_dim, device=obs.device, values=values, name="prev_action"
        )


def _validate_observe_step(
    model: WorldModel,
    obs: torch.Tensor,
    prev_action: torch.Tensor,
    is_first: torch.Tensor,
    state: State,
    reward: torch.Tensor | None,
    *,
    values: bool,
) -> None:
    """Everything :meth:`WorldModel.observe_step` checks (shapes always; values with ``values``)."""
    shape = ", ".join(map(str, model.obs_shape))
    check(
        isinstance(obs, torch.Tensor) and obs.dim() == 1 + len(model.obs_shape)
        and tuple(obs.shape[1:]) == tuple(model.obs_shape) and obs.shape[0] >= 1,
        "obs",
        f"a tensor of shape (B, {shape}) with B >= 1",
        got=lambda: _describe(obs),
    )
    batch, device = int(obs.shape[0]), obs.device
    image = len(model.obs_shape) == 3
    check(obs.dtype == torch.uint8 if image else obs.is_floating_point(), "obs",
          "dtype torch.uint8 (images)" if image else "a floating-point tensor (vectors)", got=obs.dtype)
    check(
        isinstance(is_first, torch.Tensor) and is_first.shape == (batch,) and is_first.dtype == torch.bool
        and is_first.device == device,
        "is_first",
        f"a bool tensor of shape ({batch},) on {device}",
        got=lambda: _describe(is_first),
    )
    validate_action(prev_action, batch, model.action_dim, device=device, values=values, name="prev_action")
    validate_state(model, state, batch, device=device, values=values)
    if reward is not None:
        _check_reward(reward, (batch,), device, values=values)
    if values and not image and _has_values(obs):
        check(bool(torch.isfinite(obs).all()), "obs", "finite values", got="NaN or inf")


def _validate_imagine_step(model: WorldModel, state: State, action: torch.Tensor, *, values: bool) -> int:
    """Everything :meth:`WorldModel.imagine_step` checks; returns the batch size."""
    check(
        isinstance(action, torch.Tensor) and action.dim() == 2,
        "action",
        f"a tensor of shape (B, {model.action_dim})",
        got=lambda: _describe(action),
    )
    batch = int(action.shape[0])
    validate_state(model, state, batch, device=action.device, values=values)
    validate_action(action, batch, model.action_dim, device=action.device, values=values)
    return batch


def imagine(
    model: WorldModel,
    start: State,
    policy: Policy,
    horizon: int,
    *,
    sample: bool = True,
    generator: torch.Generator | None = None,
    validate: bool = True,
) -> Imagination:
    """Roll a world model's prior forward under a policy: the one imagination loop for every model.

    For ``k = 0 .. horizon - 1``: ``a_k = policy(step_k)``, ``s_{k+1} = model.imagine_step(s_k, a_k)``;
    finally ``a_horizon = policy(step_horizon)``, where ``step_k`` is the :class:`ImaginedStep` of
    ``s_k`` (its features, ``h``, reward, continuation and prior entropy, each computed once and stacked
    along dim 1 in the result). Only the current state is alive at any time, so the memory of a model
    with a large state (TWM's Transformer memory) does not grow with the horizon. Gradients flow through
    everything; detach the start (:func:`detach_state`) or wrap in :func:`torch.no_grad` as the
    training scheme needs.

    Args:
        model: Any :class:`WorldModel`.
        start: Start states with batch shape ``(B,)`` (e.g. :meth:`WorldModel.start_states`).
        policy: ``policy(step) -> action (B, A)`` with ``step`` an :class:`ImaginedStep`.
        horizon: Number of imagined steps, ``>= 0``.
        sample: Sample each imagined latent from the prior (True) or take its mode.
        generator: Random generator for the latent samples.
        validate: Check that the start state and every action are finite (one host synchronisation per
            step on a GPU); shapes, dtypes and devices are checked either way.

    Returns:
        :class:`Imagination`.

    Raises:
        HierosError: If ``horizon`` is negative, the start is not a state of ``model``, or the policy
            returns a wrong shape (or, with ``validate``, non-finite values).
    """
    check_int(horizon, "horizon", minimum=0)
    leaves = _leaves(start)
    check(bool(leaves) and leaves[0].dim() >= 1, "start", "a state of the model with a batch dimension",
          got=lambda: type(start).__name__)
    batch, device = int(leaves[0].shape[0]), leaves[0].device
    validate_state(model, start, batch, device=device, values=validate, name="start")
    fields: list[list[torch.Tensor]] = [[], [], [], [], [], []]
    state = start
    for k in range(horizon + 1):
        step = ImaginedStep(
            state, model.features(state), model.deter(state), model.reward(state), model.cont(state),
            model.entropy(state),
        )
        action = policy(step)
        validate_action(action, batch, model.action_dim, device=device, values=validate, name="policy")
        for out, value in zip(fields, (*step[1:], action), strict=True):
            out.append(value)
        if k < horizon:  # the previous state is dropped here: one state (and memory) alive at a time
            state = model.imagine_step(state, action, sample=sample, generator=generator, validate=False)
    features, deter, reward, cont, entropy, actions = (torch.stack(x, dim=1) for x in fields)
    return Imagination(features, deter, actions, reward, cont, entropy, state)
