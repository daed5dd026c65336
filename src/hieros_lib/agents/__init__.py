"""``hieros_lib.agents``: filled in by a later issue."""

__all__: list[str] = []
