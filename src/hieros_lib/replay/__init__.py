"""``hieros_lib.replay``: filled in by a later issue."""

__all__: list[str] = []
