"""The one error type that ``hieros_lib`` raises for bad arguments and bad data, and the checks that raise it.

Public functions and modules validate what they are given and raise :class:`HierosError` with a message
that names the argument and says what was expected (bad shapes, dtypes, devices, sizes, NaN data, unknown
names, corrupt files). It subclasses :class:`ValueError`, so code that already catches ``ValueError`` keeps
working.

Numbers are accepted consistently across the library: an "int" argument takes a Python ``int`` or a NumPy
integer scalar (``np.int64(8)``), a "float" argument also takes ints and NumPy floating scalars
(``np.float32(0.3)``); ``bool`` (and ``np.bool_``) is never taken for a number, although Python would
allow it (``True == 1``).

Validation is split by cost. Shape, dtype and device checks read metadata and are free, so they always
run. Value checks (finite, in range) read the data, which on a GPU means a device-to-host synchronisation;
functions on hot paths run them once per batch, and take ``validate=False`` where the caller has already
checked. Messages are built lazily (``got`` may be a callable), so a passing check costs nothing.

Examples:
    >>> from hieros_lib.errors import HierosError, check
    >>> try:
    ...     check(False, "x", "a tensor of shape (B, T, P)", got="shape (3,)")
    ... except HierosError as err:
    ...     print(err)
    x: expected a tensor of shape (B, T, P), got shape (3,)
    >>> import numpy as np
    >>> from hieros_lib.errors import check_int
    >>> check_int(np.int64(8), "batch_size", minimum=1)
    8
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HierosError", "NonFiniteError", "check", "check_float", "check_int", "is_int", "is_real"]


class HierosError(ValueError):
    """Raised for invalid arguments, shapes, dtypes, devices, data and checkpoints."""


class NonFiniteError(HierosError):
    """Raised where a NaN or an infinity appears in data that must be finite (a sign of divergence when
    it comes from the agent itself, e.g. the actions it chose)."""


def check(condition: bool, name: str, expected: str, *, got: object = None) -> None:
    """Raise :class:`HierosError` naming ``name`` unless ``condition`` holds.

    Args:
        condition: What must be true.
        name: The argument or field at fault, as the caller spells it.
        expected: What was expected, e.g. ``"shape (B, T, P)"``.
        got: What was received instead (its ``str`` is shown), ``None`` to leave it out, or a callable
            without arguments that returns it: it is only called when the check fails, so an expensive
            description (a range read from a tensor, say) costs nothing when the check passes.

    Raises:
        HierosError: If ``condition`` is false.
    """
    if not condition:
        message = f"{name}: expected {expected}"
        if callable(got):
            got = got()
        if got is not None:
            message += f", got {got}"
        raise HierosError(message)


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer scalar: a Python ``int`` or a NumPy integer, but not a ``bool``.

    Examples:
        >>> import numpy as np
        >>> is_int(3), is_int(np.int32(3)), is_int(True), is_int(3.0)
        (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """Whether ``value`` is a real scalar (``int``, ``float``, NumPy integer or floating), not a ``bool``.

    Examples:
        >>> import numpy as np
        >>> is_real(0.3), is_real(np.float32(0.3)), is_real(False), is_real("0.3")
        (True, True, False, False)
    """
    return is_int(value) or isinstance(value, (float, np.floating))


def check_int(
    value: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check that ``value`` is an integer scalar in ``[minimum, maximum]`` and return it as an ``int``.

    Args:
        value: The value to check (``int`` or NumPy integer; not ``bool``).
        name: The argument's name, for the message.
        minimum: Smallest allowed value, or None.
        maximum: Largest allowed value, or None.

    Returns:
        ``int(value)``.

    Raises:
        HierosError: If ``value`` is not an integer scalar or out of range.

    Examples:
        >>> check_int(4, "layers", minimum=0)
        4
    """
    if minimum is not None and maximum is not None:
        expected = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = f"an int >= {minimum}"
    elif maximum is not None:
        expected = f"an int <= {maximum}"
    else:
        expected = "an int"
    ok = (
        is_int(value)
        and (minimum is None or value >= minimum)  # type: ignore[operator]
        and (maximum is None or value <= maximum)  # type: ignore[operator]
    )
    check(ok, name, expected, got=lambda: repr(value))
    return int(value)  # type: ignore[call-overload]


def check_float(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Check that ``value`` is a finite real scalar in range and return it as a ``float``.

    Args:
        value: The value to check (``int``, ``float`` or NumPy scalar; not ``bool``).
        name: The argument's name, for the message.
        minimum: Lower bound, or None.
        maximum: Upper bound (inclusive), or None.
        exclusive_minimum: Whether ``minimum`` itself is excluded.

    Returns:
        ``float(value)``.

    Raises:
        HierosError: If ``value`` is not a finite real scalar in range.

    Examples:
        >>> import numpy as np
        >>> check_float(np.float32(0.5), "temperature", minimum=0.0, maximum=1.0)
        0.5
    """
    low = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum}"
    high = "" if maximum is None else f"<= {maximum}"
    expected = "a finite float" + (f" {low}" if low else "") + (" and" if low and high else "")
    expected += f" {high}" if high else ""
    ok = is_real(value) and math.isfinite(float(value))  # type: ignore[arg-type]
    if ok and minimum is not None:
        ok = float(value) > minimum if exclusive_minimum else float(value) >= minimum  # type: ignore[arg-type]
    if ok and maximum is not None:
        ok = float(value) <= maximum  # type: ignore[arg-type]
    check(ok, name, expected, got=lambda: repr(value))
    return float(value)  # type: ignore[arg-type]
