"""The coordinator believes a reply's department only under the key registered for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import ConfigRecord, RecordDict

from server.home.node_registry import NodeRegistry
from server.reply_check import registered_nodes
from vocab.errors import ConfigError
from vocab.identity_key import load_or_create_identity
from vocab.reply_seal import seal_reply


def _reply(department: str) -> RecordDict:
    return RecordDict({"report": ConfigRecord({"department": department})})


def test_only_the_registered_key_speaks_for_its_department(tmp_path: Path) -> None:
    registry = NodeRegistry(tmp_path / "nodes")
    tax = load_or_create_identity(tmp_path / "tax.key")
    health = load_or_create_identity(tmp_path / "health.key")
    registry.register("tax", tax.public.pem())
    registry.register("health", health.public.pem())
    check = registered_nodes(registry)

    honest = seal_reply(_reply("tax"), tax, job_id="j#1", round=1, kind="train", request="q")
    assert check(honest, "tax", "j#1", 1, "train", "q") is None
    # health's node, registered and honest about its key, claims to be tax.
    forged = seal_reply(_reply("tax"), health, job_id="j#1", round=1, kind="train", request="q")
    reason = check(forged, "tax", "j#1", 1, "train", "q")
    assert reason is not None and "not sealed by its registered node key" in reason


def test_an_unregistered_department_is_not_believed(tmp_path: Path) -> None:
    check = registered_nodes(NodeRegistry(tmp_path / "nodes"))
    key = load_or_create_identity(tmp_path / "x.key")
    reply = seal_reply(_reply("police"), key, job_id="j", round=0, kind="query", request="q")
    reason = check(reply, "police", "j", 0, "query", "q")
    assert reason is not None and "node register" in reason
    invalid = check(reply, "../../etc", "j", 0, "query", "q")
    assert invalid is not None and "cannot be checked" in invalid


def test_a_department_keeps_its_key_unless_replaced(tmp_path: Path) -> None:
    registry = NodeRegistry(tmp_path / "nodes")
    first = load_or_create_identity(tmp_path / "a.key")
    second = load_or_create_identity(tmp_path / "b.key")
    registry.register("tax", first.public.pem())
    registry.register("tax", first.public.pem())  # the same key again: fine
    with pytest.raises(ConfigError, match="--replace"):
        registry.register("tax", second.public.pem())
    registry.register("tax", second.public.pem(), replace=True)
    identity = registry.identity_of("tax")
    assert identity is not None and identity.raw == second.public.raw
    assert registry.departments() == ["tax"]


def test_garbage_is_an_unverified_reply_never_an_exception(tmp_path: Path) -> None:
    from flwr.app import Array, ArrayRecord

    registry = NodeRegistry(tmp_path / "nodes")
    key = load_or_create_identity(tmp_path / "tax.key")
    registry.register("tax", key.public.pem())
    check = registered_nodes(registry)
    broken = _reply("tax")
    broken["seal"] = ConfigRecord({"signature": "AAAA"})
    broken["junk"] = ArrayRecord(
        {"x": Array(dtype="float32", shape=(2,), stype="numpy.ndarray", data=b"")}
    )
    reason = check(broken, "tax", "j", 1, "train", "q")
    assert reason is not None and "cannot be checked" in reason
    assert check(_reply("tax"), "", "j", 1, "train", "q") == "the reply names no department"


def test_one_key_cannot_speak_for_two_departments(tmp_path: Path) -> None:
    registry = NodeRegistry(tmp_path / "nodes")
    key = load_or_create_identity(tmp_path / "tax.key")
    registry.register("tax", key.public.pem())
    with pytest.raises(ConfigError, match="already registered for tax"):
        registry.register("health", key.public.pem())
