"""``hieros_lib.nn``: filled in by a later issue."""

__all__: list[str] = []
