"""A throwaway PostgreSQL server for the contract tests, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.postgres_server import (
    PostgresFailed,
    PostgresServer,
    PostgresUnavailable,
    throwaway_postgres,
)

__all__ = ["PostgresServer"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL for the session (`testkit.postgres_server`). Skips only when no server
    binary is installed; a server that is installed but does not start fails the tests."""
    try:
        with throwaway_postgres() as server:
            yield server
    except PostgresUnavailable as err:
        pytest.skip(f"{err}, to run the job store's PostgreSQL contract tests")
    except PostgresFailed as err:
        pytest.fail(str(err))
