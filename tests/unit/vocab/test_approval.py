"""Approvals: validated fields, pinned canonical bytes, and the approval file format."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from vocab.approval import (
    APPROVAL_FORMAT,
    Approval,
    JobClaims,
    SignedApproval,
    format_time,
    key_id_of,
    load_signed_approval,
    parse_signed_approval,
    serialize_signed_approval,
)
from vocab.errors import ConfigError
from vocab.jobspec import FeatureSpec, RiskJobSpec
from vocab.serde import job_to_bytes, spec_fingerprint

ISSUED = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
EXPIRES = datetime(2027, 1, 1, tzinfo=UTC)
SIGNATURE = bytes(range(64))
SPEC_FP = "5" * 64
APP = "a" * 64


def _approval(**overrides: Any) -> Approval:
    fields: dict[str, Any] = {
        "department": "northeast",
        "dataset": "lending",
        "job": "lending-risk",
        "purpose": "joint credit-default risk model",
        "columns": frozenset({"zip3", "annual_inc"}),
        "max_epsilon": 1.0,
        "issued_at": ISSUED,
        "expires_at": EXPIRES,
        "key_id": "0123456789abcdef",
        "analyst": "demo.analyst",
        "spec_fingerprint": SPEC_FP,
        "app_hash": APP,
    }
    fields.update(overrides)
    return Approval(**fields)


def _document(**approval_overrides: Any) -> dict[str, Any]:
    text = serialize_signed_approval(SignedApproval(_approval(), SIGNATURE))
    document: dict[str, Any] = json.loads(text)
    document["approval"].update(approval_overrides)
    return document


def _parse_error(document: object, source: str = "approvals/x.json") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_signed_approval(json.dumps(document), source)
    assert f"approval file {source}:" in info.value.message
    assert info.value.hint
    return info.value


def test_canonical_bytes_are_pinned() -> None:
    # Sorted keys, no spaces, times in UTC with Z, columns sorted, the format included:
    # changing any of this would invalidate every approval ever signed.
    expected = (
        b'{"analyst":"demo.analyst","app_hash":"' + APP.encode() + b'",'
        b'"columns":["annual_inc","zip3"],"dataset":"lending","department":"northeast",'
        b'"expires_at":"2027-01-01T00:00:00Z","format":"silobridge.column-approval/v2",'
        b'"issued_at":"2026-01-01T09:30:00Z","job":"lending-risk",'
        b'"key_id":"0123456789abcdef","max_epsilon":1.0,'
        b'"purpose":"joint credit-default risk model","spec_fingerprint":"'
        + SPEC_FP.encode()
        + b'"}'
    )
    assert _approval().canonical_bytes() == expected
    assert _approval().digest() == hashlib.sha256(expected).hexdigest()


def test_canonical_bytes_are_utf8_and_independent_of_input_form() -> None:
    plain = _approval(purpose="Prüfung", max_epsilon=2, columns=frozenset({"b", "a"}))
    other = _approval(
        purpose="Prüfung",
        max_epsilon=2.0,
        columns=frozenset({"a", "b"}),
        issued_at=ISSUED.astimezone(timezone(timedelta(0))),
    )
    assert "Prüfung".encode() in plain.canonical_bytes()
    assert plain.canonical_bytes() == other.canonical_bytes()
    assert plain.max_epsilon == 2.0 and isinstance(plain.max_epsilon, float)


def test_every_field_changes_the_digest() -> None:
    base = _approval()
    changes: dict[str, Any] = {
        "department": "south",
        "dataset": "loans",
        "job": "other",
        "purpose": "another purpose",
        "columns": frozenset({"annual_inc"}),
        "max_epsilon": 1.5,
        "issued_at": ISSUED + timedelta(seconds=1),
        "expires_at": EXPIRES + timedelta(seconds=1),
        "key_id": "fedcba9876543210",
        "analyst": "other.analyst",
        "spec_fingerprint": "6" * 64,
        "app_hash": "b" * 64,
    }
    assert {f.name for f in dataclasses.fields(Approval)} == set(changes)
    digests = {dataclasses.replace(base, **{k: v}).digest() for k, v in changes.items()}
    assert base.digest() not in digests
    assert len(digests) == len(changes)


def test_key_id_is_the_start_of_the_sha256_of_the_raw_key() -> None:
    # SHA-256 of 32 zero bytes is 66687aad f862bd77 6c8fc18b 8e9f8e20 ... (FIPS 180-4).
    assert key_id_of(bytes(32)) == "66687aadf862bd77"
    with pytest.raises(ConfigError, match="32 bytes"):
        key_id_of(bytes(31))


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"department": "North East"}, "`department`"),
        ({"dataset": ""}, "`dataset`"),
        ({"job": "-bad"}, "`job`"),
        ({"purpose": "  "}, "`purpose`"),
        ({"purpose": "x" * 201}, "`purpose`"),
        ({"columns": frozenset()}, "`columns`"),
        ({"columns": frozenset({""})}, "`columns`"),
        ({"max_epsilon": 0.0}, "`max_epsilon`"),
        ({"max_epsilon": -1.0}, "`max_epsilon`"),
        ({"max_epsilon": float("nan")}, "`max_epsilon`"),
        ({"max_epsilon": float("inf")}, "`max_epsilon`"),
        ({"max_epsilon": True}, "`max_epsilon`"),
        ({"issued_at": datetime(2026, 1, 1)}, "no time zone"),
        ({"expires_at": datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=2)))}, "UTC"),
        ({"expires_at": ISSUED}, "before it is issued"),
        ({"key_id": "0123456789ABCDEF"}, "`key_id`"),
        ({"key_id": "0123"}, "`key_id`"),
        ({"analyst": ""}, "`analyst`"),
        ({"analyst": "an analyst"}, "`analyst`"),
        ({"spec_fingerprint": "5" * 63}, "`spec_fingerprint`"),
        ({"spec_fingerprint": "G" * 64}, "`spec_fingerprint`"),
        ({"app_hash": "A" * 64}, "`app_hash`"),
        ({"app_hash": None}, "`app_hash`"),
    ],
)
def test_invalid_fields_are_refused(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        _approval(**overrides)
    assert info.value.hint


def test_file_round_trips() -> None:
    signed = SignedApproval(_approval(), SIGNATURE)
    text = serialize_signed_approval(signed)

    assert parse_signed_approval(text, "a.json") == signed
    document = json.loads(text)
    assert document["format"] == APPROVAL_FORMAT
    assert base64.b64decode(document["signature"]) == SIGNATURE
    assert document["approval"]["expires_at"] == "2027-01-01T00:00:00Z"


def test_loads_from_a_file(tmp_path: Path) -> None:
    signed = SignedApproval(_approval(), SIGNATURE)
    path = tmp_path / "a.json"
    path.write_text(serialize_signed_approval(signed), encoding="utf-8")
    assert load_signed_approval(path) == signed


def test_signature_must_be_64_bytes() -> None:
    with pytest.raises(ConfigError, match="64 bytes"):
        SignedApproval(_approval(), b"short")


def test_job_claims_come_from_a_job_spec() -> None:
    spec = RiskJobSpec(
        name="risk",
        target="y",
        positive="1",
        features=(FeatureSpec("income", 0.0, 1.0),),
        purpose="a purpose",
        analyst="ana",
        epsilon=0.5,
    )
    assert JobClaims.from_spec(spec, APP) == JobClaims(
        "risk", "a purpose", ("income", "y"), 0.5, "ana", spec_fingerprint(spec), APP
    )
    assert JobClaims.from_spec(spec).app_hash is None


def test_spec_fingerprint_binds_every_field_and_ignores_number_form() -> None:
    spec = RiskJobSpec(
        name="risk", target="y", positive="1", features=(FeatureSpec("income", 0.0, 1.0),)
    )
    # Known value: pins the wire form, which every approval ever signed depends on.
    assert spec_fingerprint(spec) == hashlib.sha256(job_to_bytes(spec)).hexdigest()
    assert spec_fingerprint(dataclasses.replace(spec, epsilon=1)) == spec_fingerprint(spec)
    changes: dict[str, Any] = {
        "features": (FeatureSpec("income", 0.0, 2.0),),
        "rounds": 4,
        "analyst": "x",
        "learning_rate": 0.25,
        "delta": 1e-6,
        "seed": 1,
    }
    prints = {spec_fingerprint(dataclasses.replace(spec, **{k: v})) for k, v in changes.items()}
    assert spec_fingerprint(spec) not in prints and len(prints) == len(changes)


def test_old_format_files_are_refused_with_the_fix() -> None:
    document = _document()
    document["format"] = "silobridge.column-approval/v1"
    error = _parse_error(document)
    assert "old format" in error.message
    assert "--spec" in error.hint and "--app-hash" in error.hint


def test_not_json_is_refused_with_the_line() -> None:
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        parse_signed_approval('{"format":\n', "approvals/x.json")
    assert "approvals/x.json" in info.value.message
    assert "line 2" in info.value.message
    assert "silobridge officer approve" in info.value.hint


@pytest.mark.parametrize("document", [[], "text", 3])
def test_non_object_is_refused(document: object) -> None:
    assert "JSON object" in _parse_error(document).message


def test_other_documents_are_refused_by_their_format() -> None:
    error = _parse_error({"format": "something-else", "approval": {}, "signature": ""})
    assert "not a silobridge column approval" in error.message
    assert APPROVAL_FORMAT in error.message


def test_unknown_and_missing_fields_are_named() -> None:
    document = _document(scope="all")
    del document["approval"]["purpose"]
    error = _parse_error(document)
    assert "`purpose`" in error.message
    assert "`scope`" in error.message


def test_missing_signature_is_named() -> None:
    document = _document()
    del document["signature"]
    assert "`signature`" in _parse_error(document).message


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"expires_at": "2027-01-01"}, "`expires_at`"),
        ({"issued_at": "2026-01-01T00:00:00+02:00"}, "`issued_at`"),
        ({"issued_at": "yesterday"}, "`issued_at`"),
        ({"issued_at": 1767225600}, "`issued_at`"),
        ({"columns": "annual_inc"}, "`columns`"),
        ({"columns": ["a", "a"]}, "twice"),
        ({"columns": [1]}, "`columns`"),
        ({"max_epsilon": "1.0"}, "`max_epsilon`"),
        ({"department": "North"}, "`department`"),
        ({"key_id": None}, "`key_id`"),
    ],
)
def test_bad_fields_name_the_file_and_the_field(overrides: dict[str, Any], needle: str) -> None:
    assert needle in _parse_error(_document(**overrides)).message


@pytest.mark.parametrize(
    ("signature", "needle"),
    [("not base64!", "not base64"), (base64.b64encode(b"x" * 63).decode(), "63 bytes"), (7, "")],
)
def test_bad_signature_is_refused(signature: object, needle: str) -> None:
    document = _document()
    document["signature"] = signature
    assert needle in _parse_error(document).message


def test_non_utf8_and_unreadable_files_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_signed_approval(binary)
    assert str(binary) in info.value.message
    with pytest.raises(ConfigError, match="cannot be read"):
        load_signed_approval(tmp_path / "absent.json")


def test_format_time_writes_utc_with_z() -> None:
    moment = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-06-01T12:00:00Z"
