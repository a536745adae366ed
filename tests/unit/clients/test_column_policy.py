"""Column policy: which job columns a node accepts, and what a refusal says."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.node_config import ColumnSpec, DataSourceSpec, NodeConfig, OfficerConfig, SourceKind
from clients.policy.approval_check import OfficerKey
from clients.policy.column_policy import PolicyDecision, check_job_columns
from vocab.approval import Approval, JobClaims, SignedApproval, serialize_signed_approval
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import PolicyRefusal
from vocab.privacy import Budget

OFFICER = Ed25519PrivateKey.generate()
NOW = datetime(2026, 3, 1, tzinfo=UTC)
PURPOSE = "credit risk"
APP = "a" * 64


def _fingerprint(job: str) -> str:
    return hashlib.sha256(job.encode()).hexdigest()


def _config(folder: Path) -> NodeConfig:
    key_path = folder / "officer.pub"
    key_path.write_bytes(
        OFFICER.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return NodeConfig(
        department="northeast",
        dataset="lending",
        source=DataSourceSpec(SourceKind.CSV, Path("/data/loans.csv"), None, None),
        columns=(
            ColumnSpec("person_id", ColumnType.STRING, ColumnClass.RESTRICTED),
            ColumnSpec("member_no", ColumnType.INT, ColumnClass.OPEN),
            ColumnSpec("int_rate", ColumnType.FLOAT, ColumnClass.OPEN),
            ColumnSpec("grade", ColumnType.STRING, ColumnClass.OPEN),
            ColumnSpec("annual_inc", ColumnType.FLOAT, ColumnClass.CONDITIONAL),
            ColumnSpec("zip3", ColumnType.STRING, ColumnClass.CONDITIONAL),
            ColumnSpec("ssn", ColumnType.STRING, ColumnClass.RESTRICTED),
        ),
        person_id="member_no",
        budget=Budget(3.0, 1e-5),
        ledger_path=Path("/data/ledger.sqlite"),
        holdout_fraction=0.2,
        split_seed=0,
        config_path=folder / "node.toml",
        officer=OfficerConfig(folder / "approvals", public_key_path=key_path),
    )


def _approve(
    config: NodeConfig,
    job: str,
    *columns: str,
    name: str | None = None,
    expires_at: datetime = NOW + timedelta(days=90),
) -> Approval:
    approval = Approval(
        department="northeast",
        dataset="lending",
        job=job,
        purpose=PURPOSE,
        columns=frozenset(columns),
        max_epsilon=1.0,
        issued_at=expires_at - timedelta(days=91),
        expires_at=expires_at,
        key_id=OfficerKey.from_public_key(OFFICER.public_key()).key_id,
        analyst="ana",
        spec_fingerprint=_fingerprint(job),
        app_hash=APP,
    )
    signed = SignedApproval(approval, OFFICER.sign(approval.canonical_bytes()))
    config.approvals_dir.mkdir(exist_ok=True)
    path = config.approvals_dir / f"{name or job}.json"
    path.write_text(serialize_signed_approval(signed), encoding="utf-8")
    return approval


def _claims(job: str, used: list[str]) -> JobClaims:
    return JobClaims(job, PURPOSE, tuple(used), 1.0, "ana", _fingerprint(job), APP)


def _refusal(job: str, used: list[str], config: NodeConfig) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        check_job_columns(config, _claims(job, used), NOW)
    assert f"`{job}`" in info.value.message
    return info.value


def test_open_columns_are_allowed(tmp_path: Path) -> None:
    decision = check_job_columns(_config(tmp_path), _claims("risk", ["int_rate", "grade"]), NOW)
    assert decision == PolicyDecision("risk", ("int_rate", "grade"), ())
    assert decision.audit_record() == {
        "job": "risk",
        "columns": ["int_rate", "grade"],
        "approvals": [],
    }


def test_open_columns_need_no_officer_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config = NodeConfig(**{**config.__dict__, "officer": None})
    assert check_job_columns(config, _claims("risk", ["int_rate"])).approvals == ()


def test_signed_approvals_allow_conditional_columns_and_are_recorded(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = _approve(config, "risk", "annual_inc", name="a")
    second = _approve(config, "risk", "zip3", name="b")

    decision = check_job_columns(config, _claims("risk", ["int_rate", "annual_inc", "zip3"]), NOW)

    assert decision.columns == ("int_rate", "annual_inc", "zip3")
    assert [(u.path.name, u.columns, u.digest) for u in decision.approvals] == [
        ("a.json", ("annual_inc",), first.digest()),
        ("b.json", ("zip3",), second.digest()),
    ]
    record = decision.audit_record()
    assert record["approvals"][0]["digest"] == first.digest()
    assert record["approvals"][0]["key_id"] == first.key_id
    assert record["approvals"][0]["expires_at"] == "2026-05-30T00:00:00Z"


def test_now_defaults_to_the_current_time(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _approve(config, "risk", "annual_inc", expires_at=datetime(2001, 1, 1, tzinfo=UTC))
    with pytest.raises(PolicyRefusal, match="no valid signed approval"):
        check_job_columns(config, _claims("risk", ["annual_inc"]))


def test_unknown_column_is_named_with_close_matches(tmp_path: Path) -> None:
    refusal = _refusal("risk", ["int_rate", "anual_inc", "colour"], _config(tmp_path))

    assert "`anual_inc`" in refusal.message
    assert "`colour`" in refusal.message
    assert "did you mean `annual_inc`" in refusal.message
    assert "[columns]" in refusal.hint


def test_restricted_column_is_refused(tmp_path: Path) -> None:
    refusal = _refusal("risk", ["int_rate", "ssn", "person_id"], _config(tmp_path))
    assert "restricted" in refusal.message
    assert "`ssn`" in refusal.message
    assert "`person_id`" in refusal.message
    assert "`int_rate`" not in refusal.message


def test_restricted_column_is_refused_even_with_a_signed_approval(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _approve(config, "risk", "ssn")
    refusal = _refusal("risk", ["ssn"], config)
    assert "`ssn`" in refusal.message
    assert "no approval can unlock a restricted column" in refusal.hint


def test_person_id_column_is_refused(tmp_path: Path) -> None:
    refusal = _refusal("risk", ["member_no"], _config(tmp_path))
    assert "`member_no`" in refusal.message
    assert "person-id" in refusal.message


def test_conditional_column_without_approval_is_refused(tmp_path: Path) -> None:
    refusal = _refusal("risk", ["int_rate", "annual_inc", "zip3"], _config(tmp_path))

    assert "conditional" in refusal.message
    assert "`annual_inc`" in refusal.message
    assert "`zip3`" in refusal.message
    assert "`int_rate`" not in refusal.message
    assert "silobridge officer approve" in refusal.hint
    assert f"fingerprint {_fingerprint('risk')}" in refusal.hint


def test_approval_for_another_job_does_not_count(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _approve(config, "census", "annual_inc")
    refusal = _refusal("risk", ["annual_inc"], config)
    assert "`annual_inc`" in refusal.message
    assert "census" not in str(refusal)


def test_approval_covers_only_the_columns_it_names(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _approve(config, "risk", "annual_inc")
    refusal = _refusal("risk", ["annual_inc", "zip3"], config)
    assert "`zip3`" in refusal.message
    assert "`annual_inc`" not in refusal.message
