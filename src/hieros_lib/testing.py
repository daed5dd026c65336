"""Testing helpers: compare a fast path with its plain reference on outputs *and* gradients; count host
synchronisations.

Every fast path in ``hieros_lib`` (a parallel scan, a GPU kernel, a fused layer) has a plain reference
beside it. :func:`assert_matches_reference` runs both on the same inputs, compares every output, then
back-propagates the *same* random upstream gradient through both and compares the gradient of every
input that requires one. Tolerances are keyed by dtype (:func:`default_tolerances`); the loosest dtype
among the compared tensors decides.

Examples:
    >>> import torch
    >>> from hieros_lib.testing import assert_matches_reference
    >>> x = torch.randn(4, 5, dtype=torch.float64)
    >>> assert_matches_reference(lambda t: t.cumsum(1), lambda t: torch.stack(
    ...     [t[:, : i + 1].sum(1) for i in range(t.shape[1])], 1), (x,))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from hieros_lib.errors import HierosError

__all__ = ["assert_matches_reference", "count_host_syncs", "default_tolerances"]

# Tensor operations whose result the host must wait for when the tensor lives on an accelerator.
_SYNCING = frozenset(
    {
        "item",
        "__bool__",
        "__int__",
        "__float__",
        "__index__",
        "tolist",
        "numpy",
        "nonzero",
        "argwhere",
        "unique",
        "masked_select",
    }
)


class _SyncCounter(TorchFunctionMode):
    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        name = getattr(func, "__name__", "")
        if name in _SYNCING:
            self.calls.append(name)
        elif name == "__getitem__" and len(args) > 1:
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index):
                self.calls.append("__getitem__[bool mask]")
        return func(*args, **(kwargs or {}))


@contextmanager
def count_host_syncs() -> Iterator[list[str]]:
    """Record every tensor operation inside the block that makes the host wait for the device.

    On a GPU these are device-to-host synchronisations (``.item()``, ``bool(tensor)``, ``.tolist()``,
    ``nonzero``, boolean-mask indexing, ...); recording them by name works on any device, so the CPU
    test suite can hold hot paths to a budget of synchronisations. On CUDA,
    ``torch.cuda.set_sync_debug_mode`` is the exact check.

    Yields:
        The list of recorded operation names, filled as the block runs.

    Examples:
        >>> import torch
        >>> from hieros_lib.testing import count_host_syncs
        >>> x = torch.ones(3)
        >>> with count_host_syncs() as calls:
        ...     y = x * 2
        ...     ok = bool((y > 0).all())
        >>> calls
        ['__bool__']
    """
    calls: list[str] = []
    with _SyncCounter(calls):
        yield calls


# (rtol, atol) per dtype. Complex dtypes use the tolerance of their real component type.
_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-9),
    torch.complex128: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.complex64: (1e-4, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-2),
    torch.float16: (2e-3, 1e-3),
}


def default_tolerances(*dtypes: torch.dtype) -> tuple[float, float]:
    """The ``(rtol, atol)`` used to compare tensors of the given dtypes (the loosest one wins).

    Args:
        *dtypes: One or more floating or complex dtypes.

    Returns:
        ``(rtol, atol)``.

    Raises:
        HierosError: If no dtype is given or one has no registered tolerance.

    Examples:
        >>> default_tolerances(torch.float64, torch.float32)
        (0.0001, 1e-05)
    """
    if not dtypes:
        raise HierosError("dtypes: expected at least one dtype")
    rtol, atol = 0.0, 0.0
    for dtype in dtypes:
        if dtype not in _TOLERANCES:
            raise HierosError(f"dtypes: expected a floating or complex dtype, got {dtype}")
        r, a = _TOLERANCES[dtype]
        rtol, atol = max(rtol, r), max(atol, a)
    return rtol, atol


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flatten(item)]
    if isinstance(value, dict):
        return [t for key in sorted(value) for t in _flatten(value[key])]
    if value is None:
        return []
    raise HierosError(f"outputs: expected tensors, or tuples / lists / dicts of them, got {type(value)}")


def _differentiable(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


def assert_matches_reference(
    fast: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    check_grads: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Assert that ``fast(*inputs)`` equals ``reference(*inputs)`` in outputs and input gradients.

    Each function gets its own detached copy of ``inputs``; floating and complex tensors among them
    require gradients. Outputs may be a tensor or nested tuples / lists / dicts of tensors (``None``
    entries are skipped); both functions must return the same structure. When ``check_grads`` is set,
    one random upstream gradient per differentiable output (drawn from ``generator``) is
    back-propagated through both, and the gradients w.r.t. every differentiable input are compared
    (an input that gets no gradient in both counts as equal; in only one, as a failure).

    Args:
        fast: The fast path.
        reference: The plain reference it must match.
        inputs: Positional arguments for both; non-tensors are passed through unchanged.
        check_grads: Whether to compare gradients as well as outputs.
        rtol: Relative tolerance; by default from :func:`default_tolerances` of the compared dtypes.
        atol: Absolute tolerance; likewise.
        generator: Source of the upstream gradients (a fresh one seeded with 0 by default).

    Raises:
        AssertionError: With the name of the first output or gradient that differs.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(0)

    def prepare() -> list[Any]:
        out = []
        for x in inputs:
            if isinstance(x, torch.Tensor):
                x = x.detach().clone()
                if _differentiable(x) and check_grads:
                    x.requires_grad_(True)
            out.append(x)
        return out

    fast_in, ref_in = prepare(), prepare()
    fast_out, ref_out = _flatten(fast(*fast_in)), _flatten(reference(*ref_in))
    if len(fast_out) != len(ref_out):
        raise AssertionError(f"fast path returned {len(fast_out)} tensors, reference {len(ref_out)}")

    def compare(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
        exact = not (got.is_floating_point() or got.is_complex())
        r, a = (0.0, 0.0) if exact else default_tolerances(got.dtype, want.dtype)
        torch.testing.assert_close(
            got.detach().cpu(),
            want.detach().cpu().to(got.dtype),
            rtol=r if rtol is None else rtol,
            atol=a if atol is None else atol,
            msg=lambda m: f"{name} differs from the reference:\n{m}",
        )

    for i, (got, want) in enumerate(zip(fast_out, ref_out, strict=True)):
        compare(f"output {i}", got, want)
    if not check_grads:
        return

    pairs = [(f, r) for f, r in zip(fast_out, ref_out, strict=True) if f.requires_grad and r.requires_grad]
    if not pairs:
        return
    upstream = []
    for f, _ in pairs:
        g = torch.randn(f.shape, generator=generator, dtype=torch.float64)
        if f.is_complex():
            g = torch.complex(g, torch.randn(f.shape, generator=generator, dtype=torch.float64))
        upstream.append(g.to(f.dtype))
    leaves = [i for i, x in enumerate(fast_in) if isinstance(x, torch.Tensor) and x.requires_grad]
    if not leaves:
        return
    fast_grads = torch.autograd.grad(
        [f for f, _ in pairs],
        [fast_in[i] for i in leaves],
        grad_outputs=[g.to(f.device) for g, (f, _) in zip(upstream, pairs, strict=True)],
        allow_unused=True,
    )
    ref_grads = torch.autograd.grad(
        [r for _, r in pairs],
        [ref_in[i] for i in leaves],
        grad_outputs=[g.to(r.device, r.dtype) for g, (_, r) in zip(upstream, pairs, strict=True)],
        allow_unused=True,
    )
    for i, got, want in zip(leaves, fast_grads, ref_grads, strict=True):
        if got is None and want is None:
            continue
        if got is None or want is None:
            side = "fast path" if got is None else "reference"
            raise AssertionError(f"gradient of input {i}: the {side} gives none, the other does")
        compare(f"gradient of input {i}", got, want)
