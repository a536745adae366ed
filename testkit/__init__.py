"""Dev-only helpers for tests and bench (synthetic nodes, fake grid); no product code imports it."""

__all__: list[str] = []
