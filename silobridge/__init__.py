"""silobridge command line and process orchestration (imports both server and clients)."""

__all__: list[str] = []
