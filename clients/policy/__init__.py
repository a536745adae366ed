"""What the node lets a job use: column policy and the officer's signed approvals."""

__all__: list[str] = []
