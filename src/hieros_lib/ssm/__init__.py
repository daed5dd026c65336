"""``hieros_lib.ssm``: filled in by a later issue."""

__all__: list[str] = []
