"""Signed audit entries: a chain re-built without the writer's key, or by an older version,
never verifies; a signed head stands on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vocab.audit_chain import (
    AuditEntry,
    SignedHead,
    entry_hash,
    head_message,
    make_entry,
    verify_chain,
)
from vocab.audit_log import AuditLog, read_entries
from vocab.errors import DataError
from vocab.identity_key import IdentityKey, load_or_create_identity

TS = "2026-01-01T00:00:00.000+00:00"


@pytest.fixture
def key(tmp_path: Path) -> IdentityKey:
    return load_or_create_identity(tmp_path / "writer.key")


@pytest.fixture
def other(tmp_path: Path) -> IdentityKey:
    return load_or_create_identity(tmp_path / "forger.key")


def _chain(key: IdentityKey, jobs: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for job in range(jobs):
        for kind in ("job_received", "reservation", "charge", "release"):
            prev = entries[-1].head if entries else None
            entries.append(make_entry(prev, TS, kind, {"job_id": f"j#{job}"}, key))
    return entries


def _rechain(entries: list[AuditEntry], key: IdentityKey | None) -> list[AuditEntry]:
    """The entries linked afresh; signed by `key`, or (None) with hashes alone."""
    out: list[AuditEntry] = []
    for e in entries:
        seq = len(out) + 1
        prev = out[-1].hash if out else "0" * 64
        if key is not None:
            out.append(make_entry(out[-1].head if out else None, e.ts, e.kind, e.data, key))
        else:
            digest = entry_hash(seq, e.ts, e.kind, e.data, prev)
            out.append(AuditEntry(seq, e.ts, e.kind, e.data, prev, digest, e.sig, e.key))
    return out


def test_a_signed_chain_verifies_with_its_key_only(key: IdentityKey, other: IdentityKey) -> None:
    entries = _chain(key, 3)
    assert verify_chain(entries, key.public).ok
    wrong = verify_chain(entries, other.public)
    assert (wrong.ok, wrong.first_bad) == (False, 1)
    assert other.public.key_id in wrong.reason and key.public.key_id in wrong.reason


def test_a_job_deleted_and_rechained_without_the_key_fails_at_the_first_rechained_entry(
    key: IdentityKey, other: IdentityKey
) -> None:
    entries = _chain(key, 3)
    without_job_1 = [e for e in entries if e.data["job_id"] != "j#1"]
    # Hashes recomputed, old signatures kept: the signatures no longer cover the entries.
    kept = verify_chain(_rechain(without_job_1, None), key.public)
    assert (kept.ok, kept.first_bad) == (False, 5) and "signature does not verify" in kept.reason
    # Re-signed with another key: the same.
    forged = verify_chain(_rechain(without_job_1, other), key.public)
    assert (forged.ok, forged.first_bad) == (False, 1)
    # Re-signed with the writer's own key it verifies: only the other side's records,
    # `audit crosscheck`, can catch that (tests/adversarial/test_audit_rewrite.py).
    assert verify_chain(_rechain(without_job_1, key), key.public).ok


def test_a_signed_head_verifies_on_its_own(key: IdentityKey, other: IdentityKey) -> None:
    head = _chain(key, 1)[-1].head
    assert head.verified_by(key.public) and not head.verified_by(other.public)
    assert SignedHead.from_record(head.to_record()) == head
    assert not SignedHead(head.seq + 1, head.hash, head.sig).verified_by(key.public)
    assert not SignedHead(head.seq, head.hash, "").verified_by(key.public)
    # The domain prefix keeps any other signature this key makes from passing as a head.
    assert head_message(4, "ab").startswith(b"silobridge.audit-head.v1\n")
    other_use = key.sign(b"4\nab")
    assert not SignedHead(4, "ab", other_use).verified_by(key.public)


@pytest.mark.parametrize(
    "record",
    [None, [], {"seq": 0, "hash": "h", "sig": "s"}, {"seq": True, "hash": "h", "sig": "s"},
     {"seq": 1, "hash": 3, "sig": "s"}, {"seq": 1, "hash": "h"}],
)  # fmt: skip
def test_a_malformed_head_record_is_refused(record: object) -> None:
    with pytest.raises(ValueError, match="chain head"):
        SignedHead.from_record(record)


def _unsigned_log(path: Path) -> None:
    """A log as silobridge wrote it before it signed entries: no sig, no key."""
    lines = []
    prev = "0" * 64
    for seq in (1, 2):
        digest = entry_hash(seq, TS, "charge", {"round": seq}, prev)
        raw = {"seq": seq, "ts": TS, "kind": "charge", "data": {"round": seq}, "prev": prev,
               "hash": digest}  # fmt: skip
        lines.append(json.dumps(raw) + "\n")
        prev = digest
    path.write_text("".join(lines))


def test_an_older_unsigned_log_fails_clearly(tmp_path: Path, key: IdentityKey) -> None:
    path = tmp_path / "old.audit.jsonl"
    _unsigned_log(path)
    outcome = verify_chain(read_entries(path), key.public)
    assert (outcome.ok, outcome.first_bad) == (False, 1)
    assert "not signed" in outcome.reason and "move the old log aside" in outcome.reason
    with pytest.raises(DataError, match="unsigned entry"):
        AuditLog(path, key).append("charge", {"round": 3})
    assert len(read_entries(path)) == 2  # nothing appended to a chain that cannot verify


def test_a_log_signed_by_another_key_is_not_continued(
    tmp_path: Path, key: IdentityKey, other: IdentityKey
) -> None:
    path = tmp_path / "a.audit.jsonl"
    AuditLog(path, key).append("charge", {"round": 1})
    with pytest.raises(DataError, match="key file was replaced"):
        AuditLog(path, other).append("charge", {"round": 2})
    head = AuditLog(path, key).head()
    assert head is not None and head.verified_by(key.public)
