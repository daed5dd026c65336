"""``hieros_lib.metrics``: filled in by a later issue."""

__all__: list[str] = []
