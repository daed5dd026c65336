"""State trees: nested tuples, NamedTuples, lists and dicts of tensors (not a public module).

The one home of the small utilities that map a function over a recurrent state, select per row between
two states, and move a tree of tensors to the host in one copy. :mod:`hieros_lib.world_models` re-exports
the public ones (:func:`map_state`, :func:`detach_state`, :func:`flatten_time`, :func:`where_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["detach_state", "flatten_time", "leaves", "map_state", "to_host", "where_state"]

_T = TypeVar("_T")


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: _T) -> _T:
    """Apply ``fn`` to every tensor in a state (tensors, tuples, NamedTuples, lists, dicts, None).

    Args:
        fn: Function from tensor to tensor.
        state: A tensor or a nested container of tensors.

    Returns:
        A container of the same structure with every tensor replaced by ``fn(tensor)``.

    Raises:
        TypeError: On a leaf that is neither a tensor nor a container.

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


def leaves(state: Any) -> list[torch.Tensor]:
    """Every tensor of a state, in the order :func:`map_state` visits them."""
    out: list[torch.Tensor] = []

    def keep(x: torch.Tensor) -> torch.Tensor:
        out.append(x)
        return x

    map_state(keep, state)
    return out


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


def where_state(mask: torch.Tensor, new: _T, old: _T) -> _T:
    """Per row of the leading dimension, ``new`` where ``mask`` else ``old``, over two states of one
    structure.

    Args:
        mask: ``(N,)`` bool.
        new: A state whose tensors have a leading ``N``.
        old: A state of the same structure and shapes.

    Returns:
        A state of that structure.

    Raises:
        TypeError: If the two structures differ or a leaf is not a tensor.

    Examples:
        >>> import torch
        >>> from hieros_lib.world_models import where_state
        >>> where_state(torch.tensor([True, False]), (torch.ones(2, 3),), (torch.zeros(2, 3),))[0][:, 0]
        tensor([1., 0.])
    """
    if isinstance(new, torch.Tensor) and isinstance(old, torch.Tensor):
        return torch.where(mask.reshape(-1, *([1] * (new.dim() - 1))), new, old)  # type: ignore[return-value]
    if isinstance(new, tuple) and isinstance(old, tuple) and len(new) == len(old):
        items = [where_state(mask, a, b) for a, b in zip(new, old, strict=True)]
        return type(new)(*items) if hasattr(new, "_fields") else tuple(items)  # type: ignore[return-value]
    raise TypeError(
        f"where_state: states of different structure ({type(new).__name__} / {type(old).__name__})"
    )


def _bytes(value: torch.Tensor) -> torch.Tensor:
    """A tensor's elements as a flat uint8 tensor (a copy only where its layout needs one)."""
    flat = value.reshape(-1)
    if flat.numel() and flat.stride(0) != 1:  # e.g. a size-1 dim kept with a wide stride
        flat = flat.clone(memory_format=torch.contiguous_format)
    return flat.view(torch.uint8)


def to_host(tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Copy named tensors to host NumPy arrays with one device-to-host transfer.

    The tensors are reinterpreted as bytes, concatenated on their device, copied once, and split and
    reinterpreted back on the host: on an accelerator, a step of many small fields costs one
    synchronisation instead of one per field (on the CPU, one small memory copy). Values are exact (no
    dtype conversion happens). Tensors on different devices are copied one by one.

    Args:
        tensors: Tensors on one device (any dtypes and shapes).

    Returns:
        The same names, as NumPy arrays of the same dtypes and shapes.

    Examples:
        >>> import torch
        >>> out = to_host({"a": torch.arange(3), "b": torch.ones(2, 2, dtype=torch.bool)})
        >>> out["a"].tolist(), out["b"].dtype
        ([0, 1, 2], dtype('bool'))
    """
    items = {name: value.detach() for name, value in tensors.items()}
    if len(items) < 2 or len({value.device for value in items.values()}) > 1:
        return {name: value.cpu().numpy() for name, value in items.items()}
    # widest dtypes first, so every array starts aligned to its item size in the byte buffer
    order = sorted(items, key=lambda name: -items[name].element_size())
    flat = [_bytes(items[name]) for name in order]
    host = torch.cat(flat).cpu().numpy()
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, raw in zip(order, flat, strict=True):
        value, size = items[name], raw.numel()
        dtype = np.dtype(str(value.dtype).removeprefix("torch."))
        out[name] = host[offset : offset + size].view(dtype).reshape(tuple(value.shape))
        offset += size
    return {name: out[name] for name in items}
