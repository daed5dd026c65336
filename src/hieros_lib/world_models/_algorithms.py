"""The algorithms every world model shares: the action shift and the imagination loop."""

from __future__ import annotations

import torch

from hieros_lib._tree import leaves
from hieros_lib.errors import check, check_int
from hieros_lib.world_models._protocol import Imagination, ImaginedStep, Policy, State, WorldModel
from hieros_lib.world_models._validate import validate_action, validate_state

__all__ = ["imagine", "shift_actions"]


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
    everything; detach the start (:func:`~hieros_lib.world_models.detach_state`) or wrap in
    :class:`torch.no_grad` as the training scheme needs.

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
    tensors = leaves(start)
    check(bool(tensors) and tensors[0].dim() >= 1, "start", "a state of the model with a batch dimension",
          got=lambda: type(start).__name__)
    batch, device = int(tensors[0].shape[0]), tensors[0].device
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
