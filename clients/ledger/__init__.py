"""The node's privacy ledger: interface, SQLite, round lock, stored replies, audit log."""

__all__: list[str] = []
