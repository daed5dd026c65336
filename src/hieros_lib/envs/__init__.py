"""``hieros_lib.envs``: filled in by a later issue."""

__all__: list[str] = []
