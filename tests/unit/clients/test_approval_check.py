"""Signed approvals at the node: what unlocks a conditional column, and what a refusal says.

A refusal names only the job's own columns, fingerprint, app and analyst; why each approval
failed goes to the node's log, which these tests read with `caplog`.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
)
from clients.policy.approval_check import (
    OfficerKey,
    approve_conditional_columns,
    load_officer_key,
    read_approvals,
)
from vocab.approval import Approval, JobClaims, SignedApproval, serialize_signed_approval
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import ConfigError, InternalError, PolicyRefusal
from vocab.privacy import Budget

OFFICER = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()
OFFICER_ID = OfficerKey.from_public_key(OFFICER.public_key()).key_id
INTRUDER_ID = OfficerKey.from_public_key(INTRUDER.public_key()).key_id
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRES = datetime(2026, 7, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 1, tzinfo=UTC)
FP = "5" * 64
APP = "a" * 64
CLAIMS = JobClaims(
    "risk", "credit risk model", ("int_rate", "annual_inc", "y"), 1.0, "ana", FP, APP
)
CONDITIONAL = ["annual_inc"]


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _config(folder: Path) -> NodeConfig:
    """A node whose [officer] names the officer's PEM key file and `approvals/`."""
    key_path = folder / "officer.pub"
    key_path.write_bytes(_pem(OFFICER))
    return _node(folder, OfficerConfig(folder / "approvals", public_key_path=key_path))


def _node(folder: Path, officer: OfficerConfig | None) -> NodeConfig:
    return NodeConfig(
        department="northeast",
        dataset="lending",
        source=DataSourceSpec(SourceKind.CSV, folder / "loans.csv", None, None),
        columns=(
            ColumnSpec("int_rate", ColumnType.FLOAT, ColumnClass.OPEN),
            ColumnSpec("annual_inc", ColumnType.FLOAT, ColumnClass.CONDITIONAL),
            ColumnSpec("zip3", ColumnType.STRING, ColumnClass.CONDITIONAL),
            ColumnSpec("y", ColumnType.INT, ColumnClass.OPEN),
        ),
        person_id=None,
        budget=Budget(3.0, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=0.2,
        split_seed=0,
        config_path=folder / "node.toml",
        officer=officer,
    )


def _approval(**overrides: Any) -> Approval:
    fields: dict[str, Any] = {
        "department": "northeast",
        "dataset": "lending",
        "job": "risk",
        "purpose": "credit risk model",
        "columns": frozenset({"annual_inc"}),
        "max_epsilon": 1.0,
        "issued_at": ISSUED,
        "expires_at": EXPIRES,
        "key_id": OFFICER_ID,
        "analyst": "ana",
        "spec_fingerprint": FP,
        "app_hash": APP,
    }
    fields.update(overrides)
    return Approval(**fields)


def _write(
    config: NodeConfig,
    name: str = "risk.json",
    *,
    signer: Ed25519PrivateKey = OFFICER,
    **overrides: Any,
) -> Path:
    approval = _approval(**overrides)
    signed = SignedApproval(approval, signer.sign(approval.canonical_bytes()))
    config.approvals_dir.mkdir(parents=True, exist_ok=True)
    path = config.approvals_dir / name
    path.write_text(serialize_signed_approval(signed), encoding="utf-8")
    return path


def _refusal(
    config: NodeConfig,
    caplog: pytest.LogCaptureFixture,
    claims: JobClaims = CLAIMS,
    now: datetime = NOW,
) -> str:
    """The node's log of why no approval fit; the refusal itself must say none of it."""
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="clients.policy.approval_check"),
        pytest.raises(PolicyRefusal) as info,
    ):
        approve_conditional_columns(config, claims, CONDITIONAL, now)
    text = str(info.value)
    assert "`annual_inc`" in info.value.message
    assert "silobridge officer approve" in info.value.hint
    assert f"fingerprint {claims.fingerprint}" in info.value.hint
    assert str(config.approvals_dir) not in text and str(config.config_path) not in text
    assert ".json" not in info.value.message
    return caplog.text


def test_valid_approval_is_used(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _write(config)

    (used,) = approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)

    assert used.path == path
    assert used.key_id == OFFICER_ID
    assert used.digest == _approval().digest()
    assert used.job == "risk"
    assert used.columns == ("annual_inc",)
    assert used.expires_at == EXPIRES
    assert used.audit_record() == {
        "file": "risk.json",
        "key_id": OFFICER_ID,
        "digest": _approval().digest(),
        "job": "risk",
        "columns": ["annual_inc"],
        "expires_at": "2026-07-01T00:00:00Z",
        "max_epsilon": 1.0,
        "spec_fingerprint": FP,
        "app_hash": APP,
    }


def test_no_conditional_column_needs_no_key_or_approval(tmp_path: Path) -> None:
    assert approve_conditional_columns(_node(tmp_path, None), CLAIMS, [], NOW) == ()


def test_approval_signed_by_another_key_is_forged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config, signer=INTRUDER, key_id=INTRUDER_ID)

    message = _refusal(config, caplog)

    assert f"forged/not signed by this department's officer key {OFFICER_ID}" in message
    assert f"it names key {INTRUDER_ID}" in message


def test_another_key_claiming_the_officer_key_id_is_forged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config, signer=INTRUDER)

    message = _refusal(config, caplog)

    assert f"forged/not signed by this department's officer key {OFFICER_ID}" in message
    assert "signature does not match" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_epsilon", 8.0), ("job", "risk"), ("columns", ["annual_inc", "zip3"])],
)
def test_field_edited_after_signing_is_forged(
    tmp_path: Path, field: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    # Signed for another job with a smaller epsilon; then edited to look like ours.
    path = _write(config, job="census", max_epsilon=0.5)
    document = json.loads(path.read_text())
    document["approval"]["job"] = "risk"
    document["approval"]["max_epsilon"] = 1.0
    document["approval"][field] = value
    path.write_text(json.dumps(document))

    message = _refusal(config, caplog)

    assert "forged/not signed" in message
    assert "altered after signing" in message


def test_garbage_signature_is_forged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = _config(tmp_path)
    path = _write(config)
    document = json.loads(path.read_text())
    document["signature"] = base64.b64encode(bytes(64)).decode()
    path.write_text(json.dumps(document))

    assert "forged/not signed" in _refusal(config, caplog)


def test_expired_approval_is_refused_at_its_expiry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config)

    message = _refusal(config, caplog, now=EXPIRES)

    assert "expired at 2026-07-01T00:00:00Z" in message
    before = EXPIRES - timedelta(microseconds=1)
    assert approve_conditional_columns(config, CLAIMS, CONDITIONAL, before)


def test_approval_is_not_valid_before_it_is_issued(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config)

    message = _refusal(config, caplog, now=ISSUED - timedelta(seconds=1))

    assert "not valid before 2026-01-01T00:00:00Z" in message
    assert "node clock: 2025-12-31T23:59:59Z" in message
    assert approve_conditional_columns(config, CLAIMS, CONDITIONAL, ISSUED)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"job": "census"}, "wrong job (it approves `census`)"),
        ({"purpose": "marketing"}, "wrong purpose (it approves 'marketing'"),
        ({"department": "south"}, "wrong department (it is for `south`"),
        ({"dataset": "loans"}, "wrong dataset (it is for `loans`"),
        ({"columns": frozenset({"zip3"})}, "column not covered (it approves only `zip3`)"),
        ({"max_epsilon": 0.5}, "epsilon too high (the job asks for 1.0, it allows at most 0.5)"),
        ({"spec_fingerprint": "6" * 64}, f"wrong spec (it approves spec {'6' * 64}"),
        ({"analyst": "mallory"}, "wrong analyst (it approves `mallory`, the job names `ana`)"),
        ({"app_hash": "b" * 64}, f"wrong app (it approves app {'b' * 64}"),
    ],
)
def test_mismatched_approval_is_refused_with_the_reason(
    tmp_path: Path, overrides: dict[str, Any], needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config, **overrides)

    message = _refusal(config, caplog)

    assert "closest approval" in message and "risk.json" in message
    assert needle in message


def test_epsilon_equal_to_the_approved_maximum_is_allowed(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, max_epsilon=1.0)
    assert approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)


def test_every_fault_of_the_closest_approval_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config, "census.json", job="census")  # only the job is wrong, but it is elsewhere
    _write(config, "old.json", max_epsilon=0.5, expires_at=ISSUED + timedelta(days=1))

    logged = _refusal(config, caplog)

    assert "closest approval" in logged and "old.json" in logged
    assert "epsilon too high" in logged
    assert "expired at 2026-01-02T00:00:00Z" in logged
    assert "census.json" not in logged


def test_a_genuine_approval_is_closer_than_a_forged_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _write(config, "a-forged.json", signer=INTRUDER, key_id=INTRUDER_ID)
    _write(config, "b-expired.json", expires_at=ISSUED + timedelta(days=1))

    logged = _refusal(config, caplog)

    assert "b-expired.json: expired at" in logged
    assert "a-forged.json" not in logged


def test_refusal_says_how_to_ask_for_an_approval_of_this_spec(tmp_path: Path) -> None:
    config = _config(tmp_path)
    claims = JobClaims("risk", "credit risk model", ("annual_inc", "zip3"), 0.75, "ana", FP, APP)
    with pytest.raises(PolicyRefusal) as info:
        approve_conditional_columns(config, claims, ["annual_inc", "zip3"], NOW)

    assert "`annual_inc`, `zip3`" in info.value.message
    assert "exact job spec, app and analyst" in info.value.message
    hint = info.value.hint
    assert f"fingerprint {FP}, app {APP}, analyst `ana`" in hint
    assert f"--spec JOB.toml --app-hash {APP}" in hint
    assert "--department northeast --dataset lending" in hint
    assert str(tmp_path) not in str(info.value)


def test_refusal_says_nothing_of_the_approvals_the_node_holds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    secret: dict[str, Any] = {
        "job": "census",
        "purpose": "secret purpose text",
        "analyst": "mallory",
        "columns": frozenset({"annual_inc", "zip3"}),
        "max_epsilon": 0.625,
    }
    path = _write(config, "census-approval.json", **secret)
    approval = _approval(**secret)

    logged = _refusal(config, caplog)

    with pytest.raises(PolicyRefusal) as info:
        approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)
    text = str(info.value)
    for leak in ("census", "secret purpose", "mallory", "zip3", "0.625", path.name,
                 "2026-07-01", approval.digest(), str(tmp_path)):  # fmt: skip
        assert leak not in text
    assert "census-approval.json" in logged  # the node's own log has the details


def test_each_column_needs_its_own_cover(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = _config(tmp_path)
    _write(config)
    with caplog.at_level(logging.WARNING), pytest.raises(PolicyRefusal) as info:
        approve_conditional_columns(config, CLAIMS, ["annual_inc", "zip3"], NOW)
    assert "`zip3`" in info.value.message
    assert "`annual_inc`" not in info.value.message
    assert "column zip3: closest approval" in caplog.text and "column not covered" in caplog.text


def test_columns_may_come_from_several_approvals(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "a.json")
    _write(config, "b.json", columns=frozenset({"zip3"}))

    used = approve_conditional_columns(config, CLAIMS, ["annual_inc", "zip3"], NOW)

    assert {(u.path.name, u.columns) for u in used} == {
        ("a.json", ("annual_inc",)),
        ("b.json", ("zip3",)),
    }


def test_the_approval_covering_most_columns_is_preferred(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "a.json")
    _write(config, "b.json", columns=frozenset({"annual_inc", "zip3"}))

    (used,) = approve_conditional_columns(config, CLAIMS, ["annual_inc", "zip3"], NOW)

    assert used.path.name == "b.json"
    assert used.columns == ("annual_inc", "zip3")


def test_malformed_file_does_not_hide_a_valid_approval(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config)
    (config.approvals_dir / "broken.json").write_text("{not json", encoding="utf-8")

    (used,) = approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)

    assert used.path.name == "risk.json"
    folder = read_approvals(config.approvals_dir)
    assert [f.path.name for f in folder.files] == ["risk.json"]
    (problem,) = folder.problems
    assert str(config.approvals_dir / "broken.json") in problem.message


def test_malformed_file_is_named_in_the_log_not_the_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    config.approvals_dir.mkdir()
    (config.approvals_dir / "broken.json").write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING), pytest.raises(PolicyRefusal) as info:
        approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)
    assert "broken.json" not in str(info.value)
    assert "broken.json" in caplog.text and "not valid JSON" in caplog.text


def test_files_not_ending_in_json_are_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    path = _write(config)
    path.rename(path.with_suffix(".json.tmp"))
    assert "no approval file" in _refusal(config, caplog)


def test_approval_dropped_in_later_counts_from_the_next_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _refusal(config, caplog)
    _write(config)
    assert approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)


def test_no_officer_key_refuses_every_conditional_column(tmp_path: Path) -> None:
    for officer in (None, OfficerConfig(tmp_path / "approvals")):
        config = _node(tmp_path, officer)
        _write(config)
        with pytest.raises(PolicyRefusal) as info:
            approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)
        assert "no officer key configured" in info.value.message
        assert "[officer]" in info.value.hint
        assert str(config.config_path) not in str(info.value)


def test_no_approval_applies_outside_the_app_gate(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config)
    claims = JobClaims("risk", "credit risk model", CLAIMS.columns, 1.0, "ana", FP, None)
    with pytest.raises(PolicyRefusal, match="app gate"):
        approve_conditional_columns(config, claims, CONDITIONAL, NOW)


def test_inline_base64_key_is_used(tmp_path: Path) -> None:
    raw = OFFICER.public_key().public_bytes_raw()
    inline = base64.b64encode(raw).decode()
    config = _node(tmp_path, OfficerConfig(tmp_path / "approvals", public_key_base64=inline))
    _write(config)

    assert load_officer_key(config) == OfficerKey.from_public_key(OFFICER.public_key())
    assert approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"not a key", "is not a PEM public key"),
        (
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "is not a PEM public key",
        ),
    ],
)
def test_unusable_key_file_is_a_config_error(tmp_path: Path, content: bytes, needle: str) -> None:
    key_path = tmp_path / "officer.pub"
    key_path.write_bytes(content)
    config = _node(tmp_path, OfficerConfig(tmp_path / "approvals", public_key_path=key_path))
    with pytest.raises(ConfigError, match=needle) as info:
        approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)
    assert str(key_path) in info.value.message


def test_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="not an ed25519 key"):
        OfficerKey.from_pem(pem)


def test_naive_now_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(InternalError):
        approve_conditional_columns(_config(tmp_path), CLAIMS, CONDITIONAL, datetime(2026, 3, 1))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"max_epsilon": 1.0', '"max_epsilon": 1' + "0" * 400),  # OverflowError
        ('"max_epsilon": 1.0', '"max_epsilon": 1' + "0" * 5000),  # too many digits
        ('"purpose": "credit', '"purpose": "\\ud800credit'),  # no UTF-8 canonical bytes
    ],
)
def test_absurd_file_is_a_problem_beside_a_valid_approval(
    tmp_path: Path, old: str, new: str
) -> None:
    config = _config(tmp_path)
    _write(config)
    bad = _write(config, "absurd.json")
    text = bad.read_text(encoding="utf-8")
    assert old in text
    bad.write_text(text.replace(old, new), encoding="utf-8")

    (used,) = approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)

    assert used.path.name == "risk.json"
    folder = read_approvals(config.approvals_dir)
    assert [f.path.name for f in folder.files] == ["risk.json"]
    (problem,) = folder.problems
    assert isinstance(problem, ConfigError)
    assert str(bad) in problem.message

    (config.approvals_dir / "risk.json").unlink()
    with pytest.raises(PolicyRefusal) as info:
        approve_conditional_columns(config, CLAIMS, CONDITIONAL, NOW)
    assert "absurd.json" not in str(info.value)
