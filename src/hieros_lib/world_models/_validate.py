"""Input checks shared by every world model: one place for shapes, dtypes, devices and values."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from hieros_lib._tree import leaves
from hieros_lib.errors import check
from hieros_lib.world_models._protocol import BATCH_FIELDS, State, WorldModel

__all__ = ["validate_action", "validate_batch", "validate_sequence", "validate_state"]


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
    mine, theirs = leaves(state), leaves(reference)
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
