"""The signed, hash-chained audit log format: each entry carries the hash of the one before
it and its writer's ed25519 signature over its position and hash.

Editing, deleting or reordering any entry breaks a hash or a link. A chain alone can be
recomputed by whoever can write the file, so every entry is also signed with the writer's
own identity key (the node's, or the coordinator's): a log re-chained without that key
fails verification at the first re-chained entry. Cutting entries off the end, or a
rewrite by someone who holds the key, is caught against anchors: signed chain heads the
other side recorded (each node reply carries the node's head, each job message the
coordinator's).

Why a signature on every entry rather than signed checkpoints: an entry is signed as it is
written (microseconds, next to the fsync each append already pays), so no entry is ever
waiting unsigned for a checkpoint, and any entry's (seq, hash, signature) is at once a
signed head another party can record and verify on its own - no separate checkpoint
records to keep, order or lose.

Entries hold event metadata only, never raw records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from vocab.identity_key import IdentityKey, PublicIdentity

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainHead",
    "SignedHead",
    "VerifyResult",
    "entry_hash",
    "head_message",
    "make_entry",
    "verify_chain",
]

GENESIS = "0" * 64

_HEAD_DOMAIN = b"silobridge.audit-head.v1"

_UNSIGNED_HINT = (
    "it was written by a silobridge version that did not sign its audit log: move the old "
    "log aside (keep it, with its last verified head) and let the node or coordinator start "
    "a new, signed one"
)


def _canonical(seq: int, ts: str, kind: str, data: dict[str, Any], prev: str) -> bytes:
    body = {"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def entry_hash(seq: int, ts: str, kind: str, data: dict[str, Any], prev: str) -> str:
    """SHA-256 of the entry's canonical JSON, previous hash included."""
    return hashlib.sha256(_canonical(seq, ts, kind, data, prev)).hexdigest()


def head_message(seq: int, digest: str) -> bytes:
    """What an entry's signature covers: its position and its hash (which covers the rest).

    Domain-separated, so no other signature a key makes can pass for an audit head.
    """
    return b"%s\n%d\n%s" % (_HEAD_DOMAIN, seq, digest.encode("ascii", "backslashreplace"))


@dataclass(frozen=True)
class AuditEntry:
    """One event in the log; `key` is the signer's key id (for people: the signature is
    checked against a key the verifier chose, never against this field)."""

    seq: int
    ts: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str
    sig: str = ""
    key: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"seq": self.seq, "ts": self.ts, "kind": self.kind, "data": self.data,
             "prev": self.prev, "hash": self.hash, "sig": self.sig, "key": self.key},
            sort_keys=True, separators=(",", ":"), allow_nan=False,
        )  # fmt: skip

    @property
    def head(self) -> SignedHead:
        """This entry as a signed chain head."""
        return SignedHead(self.seq, self.hash, self.sig)


@dataclass(frozen=True)
class ChainHead:
    """An entry's position and hash: what an unsigned anchor (a result.json) records."""

    seq: int
    hash: str


@dataclass(frozen=True)
class SignedHead:
    """An entry's position, hash and its writer's signature: what the other side records."""

    seq: int
    hash: str
    sig: str

    def verified_by(self, key: PublicIdentity) -> bool:
        return bool(self.sig) and key.verifies(self.sig, head_message(self.seq, self.hash))

    def to_record(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "sig": self.sig}

    @classmethod
    def from_record(cls, record: object) -> SignedHead:
        """A head as `to_record` wrote it.

        Raises:
            ValueError: It is not one.
        """
        if not isinstance(record, dict):
            raise ValueError(f"a chain head is a mapping, got {type(record).__name__}")
        seq, digest, sig = record.get("seq"), record.get("hash"), record.get("sig")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError(f"a chain head's seq is an integer >= 1, got {seq!r}")
        if not isinstance(digest, str) or not isinstance(sig, str):
            raise ValueError("a chain head's hash and sig are text")
        return cls(seq, digest, sig)


@dataclass(frozen=True)
class VerifyResult:
    """`ok`, or the first bad entry (1-based sequence number, or line) and why."""

    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str = ""


def make_entry(
    prev: ChainHead | SignedHead | None,
    ts: str,
    kind: str,
    data: dict[str, Any],
    key: IdentityKey,
) -> AuditEntry:
    """The entry that follows `prev` (None: the first entry), signed with `key`."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    digest = entry_hash(seq, ts, kind, data, prev_hash)
    sig = key.sign(head_message(seq, digest))
    return AuditEntry(seq, ts, kind, data, prev_hash, digest, sig, key.public.key_id)


def _bad(entries: list[AuditEntry], position: int, reason: str) -> VerifyResult:
    return VerifyResult(False, len(entries), position, reason)


def _entry_problem(entry: AuditEntry, position: int, prev_hash: str, key: PublicIdentity) -> str:
    if entry.seq != position:
        return (
            f"entry {position} has sequence number {entry.seq}: an entry was removed, "
            "inserted or moved"
        )
    if entry.prev != prev_hash:
        return f"entry {position} does not link to entry {position - 1}"
    if entry_hash(entry.seq, entry.ts, entry.kind, entry.data, entry.prev) != entry.hash:
        return f"entry {position} was edited (its hash does not match)"
    if not entry.sig:
        return f"entry {position} is not signed: {_UNSIGNED_HINT}"
    if not entry.head.verified_by(key):
        signer = f" (it names key {entry.key})" if entry.key and entry.key != key.key_id else ""
        return (
            f"entry {position}'s signature does not verify with key {key.key_id}{signer}: the "
            "log was re-chained or re-signed without that key"
        )
    return ""


def verify_chain(
    entries: list[AuditEntry], key: PublicIdentity, anchor: ChainHead | None = None
) -> VerifyResult:
    """Check sequence, links, hashes and every signature against `key`; with an anchor,
    also that nothing was cut off."""
    prev_hash = GENESIS
    for position, entry in enumerate(entries, start=1):
        problem = _entry_problem(entry, position, prev_hash, key)
        if problem:
            return _bad(entries, position, problem)
        prev_hash = entry.hash
    if anchor is not None:
        if anchor.seq > len(entries):
            return _bad(entries, len(entries) + 1,
                        f"the log ends at entry {len(entries)} but an anchor records entry "
                        f"{anchor.seq}: entries were cut off")  # fmt: skip
        if anchor.seq >= 1 and entries[anchor.seq - 1].hash != anchor.hash:
            return _bad(entries, anchor.seq, f"entry {anchor.seq} differs from the anchored hash")
    return VerifyResult(True, len(entries))
