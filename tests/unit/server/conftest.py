"""Shared fixtures of the coordinator's unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_join_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the wait for late-joining nodes: an in-process grid has them all at once."""
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
