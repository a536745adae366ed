"""App approvals: what is signed, and files that are not app approvals."""

from __future__ import annotations

import pytest

from vocab.app_approval import (
    AppApproval,
    SignedAppApproval,
    parse_app_approval,
    serialize_app_approval,
)
from vocab.errors import ConfigError

HASH = "ab" * 32
APPROVAL = AppApproval(HASH, "tax", "2026-11-30T09:30:00Z", "3f2a9c0d5e6b7a81", "silobridge 0.8")


def test_a_file_round_trips() -> None:
    signed = SignedAppApproval(APPROVAL, b"s" * 64)
    assert parse_app_approval(serialize_app_approval(signed), "a.json") == signed


def test_the_signed_bytes_name_the_format_and_every_field() -> None:
    raw = APPROVAL.canonical_bytes()
    assert raw.startswith(b'{"app":{"app_hash":"' + HASH.encode())
    assert b'"format":"silobridge.app-approval/v1"' in raw
    for field in (b"tax", b"3f2a9c0d5e6b7a81", b"silobridge 0.8", b"2026-11-30T09:30:00Z"):
        assert field in raw


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"app_hash": "AB" * 32}, "64 lowercase hex"),
        ({"department": "Tax Office"}, "not a valid node name"),
        ({"key_id": "xyz"}, "16 hex"),
        ({"label": "a\nb"}, "printable"),
        ({"issued_at": "yesterday"}, "ISO time"),
    ],
)
def test_invalid_fields_are_refused(change: dict[str, str], problem: str) -> None:
    fields = {**APPROVAL.to_json_dict(), **change}
    with pytest.raises(ConfigError, match=problem):
        AppApproval(**fields)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"format": "silobridge.column-approval/v2", "approval": {}, "signature": ""}',
        '{"format": "silobridge.app-approval/v1", "app": {"app_hash": "x"}, "signature": ""}',
    ],
)
def test_other_documents_are_not_app_approvals(text: str) -> None:
    with pytest.raises(ConfigError, match=r"x\.json"):
        parse_app_approval(text, "x.json")
