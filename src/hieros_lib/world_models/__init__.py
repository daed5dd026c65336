"""``hieros_lib.world_models``: filled in by a later issue."""

__all__: list[str] = []
