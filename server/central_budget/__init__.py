"""The coordinator's central caps: interface and SQLite implementation."""

__all__: list[str] = []
