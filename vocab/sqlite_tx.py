"""SQLite transactions as the ledgers use them: explicit, and write-locked up front.

Node ledgers and the coordinator's central budget both check a budget and then insert a
charge that depends on the check; both must hold the write lock across the two.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vocab.errors import ConfigError

__all__ = ["connect", "ensure_schema", "read_snapshot", "write_locked"]


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection with rows by name and no implicit transactions (each one is explicit)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        yield conn
    finally:
        conn.close()


@contextmanager
def write_locked(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; IMMEDIATE takes the write lock before the first read, so a
    check and the insert that depends on it cannot interleave with another writer's."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: everything read inside sees the same snapshot."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def ensure_schema(
    conn: sqlite3.Connection,
    statements: Sequence[str],
    version: int,
    *,
    what: str,
    upgrade_hint: str,
) -> int:
    """Creates what is missing of a schema and stamps its version; call inside a write.

    Returns:
        The version the file had before (0 for a new file), so the caller can migrate.

    Raises:
        ConfigError: The file comes from a newer silobridge.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > version:
        raise ConfigError(
            f"{what} has schema version {found}, this silobridge knows up to {version}",
            upgrade_hint,
        )
    for statement in statements:
        conn.execute(statement)
    return found
