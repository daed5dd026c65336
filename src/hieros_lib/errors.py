"""The one error type that ``hieros_lib`` raises for bad arguments and bad data.

Every public function and module validates its inputs and raises :class:`HierosError` with a message
that names the argument and says what was expected. It subclasses :class:`ValueError`, so code that
already catches ``ValueError`` keeps working.

Examples:
    >>> from hieros_lib.errors import HierosError, check
    >>> try:
    ...     check(False, "x", "a tensor of shape (B, T, P)", got="shape (3,)")
    ... except HierosError as err:
    ...     print(err)
    x: expected a tensor of shape (B, T, P), got shape (3,)
"""

from __future__ import annotations

__all__ = ["HierosError", "check"]


class HierosError(ValueError):
    """Raised for invalid arguments, shapes, dtypes, devices, data and checkpoints."""


def check(condition: bool, name: str, expected: str, *, got: object = None) -> None:
    """Raise :class:`HierosError` naming ``name`` unless ``condition`` holds.

    Args:
        condition: What must be true.
        name: The argument or field at fault, as the caller spells it.
        expected: What was expected, e.g. ``"shape (B, T, P)"``.
        got: What was received instead (its ``str`` is shown), or ``None`` to leave it out.

    Raises:
        HierosError: If ``condition`` is false.
    """
    if not condition:
        message = f"{name}: expected {expected}"
        if got is not None:
            message += f", got {got}"
        raise HierosError(message)
