"""``hieros_lib.hrl``: filled in by a later issue."""

__all__: list[str] = []
