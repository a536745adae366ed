"""The node's data: sources, schema check, the job's frame, split key, contribution bounds."""

__all__: list[str] = []
