"""`DescribeColumns` (`silobridge job schema`) through the real service over the in-process
departments: the open columns of every department, no restricted name and no value in the
reply, every answer in both sides' audit logs, and a per-caller hourly limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from clients.ledger.node_audit import audit_path_for
from protos.silobridge.v1 import coordinator_pb2 as pb
from tests.unit.server.service.conftest import ANALYST, OFFICER, Deployment
from vocab.audit_log import read_entries


def test_every_department_lists_its_open_columns_and_nothing_else(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    reply = deployment.stub("analyst", ANALYST).DescribeColumns(
        pb.DescribeColumnsRequest(), timeout=60
    )
    federation = deployment.federation
    assert sorted(d.department for d in reply.departments) == sorted(federation.nodes)
    for d in reply.departments:
        assert d.status == "ok", (d.department, d.code, d.reason)
        assert [(c.name, c.type, c.column_class) for c in d.columns] == [
            ("x1", "float", "open"), ("x2", "float", "open"), ("grp", "string", "open"),
            ("y", "int", "open"),
        ]  # fmt: skip
    raw = reply.SerializeToString()
    assert b"secret" not in raw and b"pid" not in raw  # restricted names never leave
    # Both sides logged it: the coordinator each signed answer, each node what it told.
    entries = read_entries(federation.home.audit_path)
    asked = [e for e in entries if e.kind == "schema"]
    assert asked and asked[-1].data["caller"] == f"analyst:{ANALYST}"
    job_id = asked[-1].data["job_id"]
    replies = [e for e in entries if e.kind == "node_reply" and e.data["job_id"] == job_id]
    assert {e.data["status"] for e in replies} == {"ok"} and len(replies) == 2
    for cfg in federation.nodes.values():
        told = [e for e in read_entries(audit_path_for(cfg.ledger_path)) if e.kind == "schema"]
        assert told[-1].data["job_id"] == job_id
    # An officer may ask too; a dataset no department holds gets refusals, no columns.
    other = deployment.stub("officer", OFFICER).DescribeColumns(
        pb.DescribeColumnsRequest(dataset="census"), timeout=60
    )
    assert {d.code for d in other.departments} == {"other_dataset"}
    assert not any(d.columns for d in other.departments)


def test_asking_counts_against_the_hourly_limit(
    make_deployment: Callable[..., Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    stub: Any = make_deployment(submits_per_hour=2).stub("analyst", ANALYST)
    for _ in range(2):
        stub.DescribeColumns(pb.DescribeColumnsRequest(), timeout=60)
    with pytest.raises(grpc.RpcError) as err:
        stub.DescribeColumns(pb.DescribeColumnsRequest(), timeout=60)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "schema 2 times" in (err.value.details() or "")
