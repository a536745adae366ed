"""The hash-chained audit log format: each entry carries the hash of the one before it.

Editing, deleting or reordering any entry breaks a hash or a link; cutting entries off the
end is caught against an anchor (a sequence number and hash recorded elsewhere, e.g. the
chain head a node sends the coordinator with every reply). Entries hold event metadata
only, never raw records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainHead",
    "VerifyResult",
    "entry_hash",
    "make_entry",
    "verify_chain",
]

GENESIS = "0" * 64


def _canonical(seq: int, ts: str, kind: str, data: dict[str, Any], prev: str) -> bytes:
    body = {"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def entry_hash(seq: int, ts: str, kind: str, data: dict[str, Any], prev: str) -> str:
    """SHA-256 of the entry's canonical JSON, previous hash included."""
    return hashlib.sha256(_canonical(seq, ts, kind, data, prev)).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One event in the log."""

    seq: int
    ts: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str

    def to_json(self) -> str:
        return json.dumps(
            {"seq": self.seq, "ts": self.ts, "kind": self.kind, "data": self.data,
             "prev": self.prev, "hash": self.hash},
            sort_keys=True, separators=(",", ":"), allow_nan=False,
        )  # fmt: skip


@dataclass(frozen=True)
class ChainHead:
    """The last entry's position and hash: what an anchor records."""

    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """`ok`, or the first bad entry (1-based sequence number, or line) and why."""

    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str = ""


def make_entry(prev: ChainHead | None, ts: str, kind: str, data: dict[str, Any]) -> AuditEntry:
    """The entry that follows `prev` (None: the first entry)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    return AuditEntry(seq, ts, kind, data, prev_hash, entry_hash(seq, ts, kind, data, prev_hash))


def verify_chain(entries: list[AuditEntry], anchor: ChainHead | None = None) -> VerifyResult:
    """Check sequence, links and hashes; with an anchor, also that nothing was cut off."""
    prev_hash = GENESIS
    for position, entry in enumerate(entries, start=1):
        if entry.seq != position:
            return VerifyResult(False, len(entries), position,
                                f"entry {position} has sequence number {entry.seq}: "
                                "an entry was removed, inserted or moved")  # fmt: skip
        if entry.prev != prev_hash:
            return VerifyResult(
                False,
                len(entries),
                position,
                f"entry {position} does not link to entry {position - 1}",
            )
        recomputed = entry_hash(entry.seq, entry.ts, entry.kind, entry.data, entry.prev)
        if recomputed != entry.hash:
            return VerifyResult(
                False,
                len(entries),
                position,
                f"entry {position} was edited (its hash does not match)",
            )
        prev_hash = entry.hash
    if anchor is not None:
        if anchor.seq > len(entries):
            return VerifyResult(False, len(entries), len(entries) + 1,
                                f"the log ends at entry {len(entries)} but an anchor "
                                f"records entry {anchor.seq}: entries were cut off")  # fmt: skip
        if anchor.seq >= 1 and entries[anchor.seq - 1].hash != anchor.hash:
            return VerifyResult(
                False,
                len(entries),
                anchor.seq,
                f"entry {anchor.seq} differs from the anchored hash",
            )
    return VerifyResult(True, len(entries))
