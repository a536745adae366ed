"""The audit log file: appends chain and sign; every tamper case is found at the first bad
entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vocab.audit_chain import ChainHead, verify_chain
from vocab.audit_log import AuditLog, read_entries
from vocab.errors import DataError
from vocab.identity_key import IdentityKey, load_or_create_identity


@pytest.fixture
def key(tmp_path: Path) -> IdentityKey:
    return load_or_create_identity(tmp_path / "writer.key")


@pytest.fixture
def log_path(tmp_path: Path, key: IdentityKey) -> Path:
    log = AuditLog(tmp_path / "ledger.audit.jsonl", key)
    for i in range(5):
        log.append("charge", {"job_id": "j#1", "round": i + 1})
    return log.path


def _rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_intact_log_verifies_with_its_anchor(log_path: Path, key: IdentityKey) -> None:
    entries = read_entries(log_path)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    head = AuditLog(log_path, key).head()
    assert head == entries[-1].head and head.verified_by(key.public)
    assert ChainHead(head.seq, head.hash) == ChainHead(5, entries[-1].hash)
    assert verify_chain(entries, key.public, head).ok


def test_edited_entry_is_found(log_path: Path, key: IdentityKey) -> None:
    lines = log_path.read_text().splitlines()
    raw = json.loads(lines[2])
    raw["data"]["round"] = 99
    lines[2] = json.dumps(raw)
    _rewrite(log_path, lines)
    result = verify_chain(read_entries(log_path), key.public)
    assert (result.ok, result.first_bad) == (False, 3) and "edited" in result.reason


def test_deleted_entry_is_found(log_path: Path, key: IdentityKey) -> None:
    lines = log_path.read_text().splitlines()
    _rewrite(log_path, lines[:1] + lines[2:])
    result = verify_chain(read_entries(log_path), key.public)
    assert (result.ok, result.first_bad) == (False, 2)


def test_reordered_entries_are_found(log_path: Path, key: IdentityKey) -> None:
    lines = log_path.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    _rewrite(log_path, lines)
    assert verify_chain(read_entries(log_path), key.public).first_bad == 2


def test_truncation_is_found_only_against_an_anchor(log_path: Path, key: IdentityKey) -> None:
    head = AuditLog(log_path, key).head()
    lines = log_path.read_text().splitlines()
    _rewrite(log_path, lines[:3])
    assert verify_chain(read_entries(log_path), key.public).ok  # a clean prefix looks fine alone...
    result = verify_chain(read_entries(log_path), key.public, head)
    assert (result.ok, result.first_bad) == (False, 4) and "cut off" in result.reason


def test_rewritten_history_differs_from_the_anchor(
    log_path: Path, tmp_path: Path, key: IdentityKey
) -> None:
    head = AuditLog(log_path, key).head()
    forged = AuditLog(tmp_path / "forged.jsonl", key)
    for i in range(5):
        forged.append("charge", {"job_id": "j#1", "round": i + 1, "forged": True})
    result = verify_chain(read_entries(forged.path), key.public, head)
    assert (result.ok, result.first_bad) == (False, 5)


def test_garbage_line_is_a_clear_error(log_path: Path) -> None:
    with log_path.open("a") as fh:
        fh.write("not json\n")
    with pytest.raises(DataError, match="line 6"):
        read_entries(log_path)


def _damage(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


def test_a_byte_that_is_not_utf8_is_the_first_bad_entry(log_path: Path, key: IdentityKey) -> None:
    _damage(log_path, 3, b'"j#1"', b'"j#\xff1"')
    entries = read_entries(log_path)
    assert len(entries) == 5 and "\ufffd" in entries[2].data["job_id"]
    outcome = verify_chain(entries, key.public)
    assert (outcome.ok, outcome.first_bad) == (False, 3)
    assert "edited" in outcome.reason


def test_a_byte_that_is_not_utf8_does_not_stop_appending(log_path: Path, key: IdentityKey) -> None:
    _damage(log_path, 2, b'"j#1"', b'"j#\xfe1"')
    entry = AuditLog(log_path, key).append("charge", {"job_id": "j#2", "round": 1})
    assert entry.seq == 6
    assert read_entries(log_path)[-1] == entry


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"round":2', b'"round":NaN'),  # could not be hashed to verify it
        (b'"round":2', b'"round":' + b"[" * 100_000),  # too deep to parse
        (b'"seq":2', b'"seq":1e400'),  # int(inf): OverflowError
    ],
)
def test_unhashable_or_unparseable_line_is_a_clear_error(
    log_path: Path, old: bytes, new: bytes
) -> None:
    _damage(log_path, 2, old, new)
    with pytest.raises(DataError, match="line 2"):
        read_entries(log_path)


def test_head_and_append_read_only_the_tail_yet_agree_with_a_full_read(
    tmp_path: Path, key: IdentityKey
) -> None:
    log = AuditLog(tmp_path / "a.jsonl", key)
    assert log.head() is None
    for i in range(300):  # longer than one tail chunk
        log.append("event", {"i": i, "padding": "x" * (i % 50)})
        head = log.head()
        last = read_entries(log.path)[-1]
        assert head is not None and (head.seq, head.hash) == (last.seq, last.hash)
    assert verify_chain(read_entries(log.path), key.public).ok
