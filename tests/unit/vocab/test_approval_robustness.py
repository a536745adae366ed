"""A malformed approval file of any kind is a ConfigError naming the file, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import vocab.approval
from vocab.approval import (
    Approval,
    SignedApproval,
    load_signed_approval,
    parse_signed_approval,
    serialize_signed_approval,
)
from vocab.errors import ConfigError

SOURCE = "approvals/x.json"


def _approval(**overrides: Any) -> Approval:
    fields: dict[str, Any] = {
        "department": "northeast",
        "dataset": "lending",
        "job": "lending-risk",
        "purpose": "joint credit-default risk model",
        "columns": frozenset({"annual_inc"}),
        "max_epsilon": 1.0,
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC),
        "expires_at": datetime(2027, 1, 1, tzinfo=UTC),
        "key_id": "0123456789abcdef",
        "analyst": "demo.analyst",
        "spec_fingerprint": "5" * 64,
        "app_hash": "a" * 64,
    }
    fields.update(overrides)
    return Approval(**fields)


def _text() -> str:
    return serialize_signed_approval(SignedApproval(_approval(), bytes(64)))


def _parse_error(text: str, source: str = SOURCE) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_signed_approval(text, source)
    message = info.value.message
    assert message.startswith("approval file ")
    # Printable, loggable and sendable over gRPC: no lone surrogates survive.
    message.encode("utf-8")
    assert info.value.hint
    return info.value


@pytest.mark.parametrize(
    ("literal", "needle"),
    [
        ("1" + "0" * 400, "max_epsilon"),  # an int beyond float range: OverflowError before
        ("1e400", "max_epsilon"),  # parses as inf
        ("-1e400", "max_epsilon"),
        ("NaN", "max_epsilon"),
        ("Infinity", "max_epsilon"),
        ("1" + "0" * 5000, "number too long"),  # longer than Python reads as an int
    ],
)
def test_absurd_max_epsilon_is_a_config_error(literal: str, needle: str) -> None:
    text = _text().replace('"max_epsilon": 1.0', f'"max_epsilon": {literal}')
    error = _parse_error(text)
    assert SOURCE in error.message and needle in error.message
    assert len(error.message) < 500


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('"purpose": "joint', '"purpose": "\\ud800joint', "purpose"),
        ('"annual_inc"\n', '"annual\\udfffinc"\n', "columns"),
    ],
)
def test_lone_surrogate_is_a_config_error(old: str, new: str, field: str) -> None:
    # JSON escapes can spell a lone surrogate, which has no UTF-8 form: such an approval
    # could never be signed, and its canonical bytes used to crash every job.
    text = _text().replace(old, new)
    assert text != _text()
    error = _parse_error(text)
    assert SOURCE in error.message and f"`{field}`" in error.message
    assert "surrogate" in error.message


def test_lone_surrogates_in_unknown_keys_and_the_file_name_still_print() -> None:
    document = json.loads(_text())
    document["approval"]["\udc80bad"] = 1
    error = _parse_error(json.dumps(document), source="approvals/\udcffname.json")
    assert "\\udcff" in error.message and "\\udc80" in error.message


def test_nesting_too_deep_to_read_is_a_config_error() -> None:
    text = _text().replace('"purpose": "joint', '"purpose": ' + "[" * 100_000 + '"joint')
    error = _parse_error(text)
    assert "nested too deeply" in error.message


def test_any_other_parse_failure_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> datetime:
        raise ArithmeticError("something no check foresaw")

    monkeypatch.setattr(vocab.approval, "_field_time", broken)
    error = _parse_error(_text())
    assert SOURCE in error.message and "something no check foresaw" in error.message


def test_load_of_a_malformed_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(_text().replace('"max_epsilon": 1.0', '"max_epsilon": 1' + "0" * 400))
    with pytest.raises(ConfigError, match=r"huge\.json"):
        load_signed_approval(path)


@pytest.mark.parametrize(
    "overrides",
    [
        {"purpose": "risk \ud800 model"},
        {"columns": frozenset({"annual_inc", "zip\udfff"})},
        {"max_epsilon": 10**400},
        {"max_epsilon": -(10**400)},
        {"max_epsilon": 10**5000},  # too many digits even to repr
        {"max_epsilon": float("inf")},
        {"max_epsilon": float("nan")},
        {"purpose": 10**5000},
        {"department": 10**5000},
    ],
)
def test_approval_refuses_text_without_utf8_and_numbers_without_a_finite_float(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError) as info:
        _approval(**overrides)
    assert len(info.value.message) < 300


def test_a_large_but_finite_integer_epsilon_is_a_float() -> None:
    assert _approval(max_epsilon=10**300).max_epsilon == 1e300
