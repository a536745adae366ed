"""Checks a node's and the coordinator's audit logs against each other, and a node's log
against its ledger.

Both directions: every node reply carries the node's signed chain head, which the
coordinator records in its log; every job message carries the coordinator's signed chain
head, which the node records in its log. A log still holding every head the other side
recorded from it, unchanged, was not rewritten or cut short since - even by someone holding
its key, who can re-sign a re-chained log but cannot change the other side's records. Each
recorded head must also carry its writer's valid signature, so neither side can invent
heads to blame the other. The ledger check binds every release row to the signed chain:
the `reservation` and `charge` entries carry the digest of the row they wrote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.ledger.ledger import LedgerEntry
from clients.ledger.node_audit import release_digest
from vocab.audit_chain import AuditEntry, SignedHead, VerifyResult, verify_chain
from vocab.audit_log import read_entries
from vocab.identity_key import PublicIdentity

__all__ = [
    "AnchorMismatch",
    "CrosscheckReport",
    "RecordedBy",
    "crosscheck",
    "crosscheck_files",
    "ledger_mismatches",
]

_NODE_REPLY = "node_reply"
_JOB_RECEIVED = "job_received"
_LEDGER_KINDS = ("reservation", "charge", "cancel")


class RecordedBy(enum.Enum):
    """Which side recorded a head: the coordinator a node's, or a node the coordinator's."""

    COORDINATOR = "coordinator"
    NODE = "node"


@dataclass(frozen=True)
class AnchorMismatch:
    """A head one side recorded that the other side's log does not hold (or that its
    writer never signed).

    `recorded_at` is the recording entry's sequence number in the recorder's own log;
    `seq` and `hash` the head it recorded from the other log.
    """

    recorded_by: RecordedBy
    recorded_at: int
    job_id: str
    round: int
    seq: int
    hash: str
    reason: str

    @property
    def other(self) -> str:
        """The side whose log the head anchors."""
        return "node" if self.recorded_by is RecordedBy.COORDINATOR else "coordinator"

    def to_json(self) -> dict[str, Any]:
        return {
            "recorded_by": self.recorded_by.value,
            "recorded_at": self.recorded_at,
            "job_id": self.job_id,
            "round": self.round,
            "seq": self.seq,
            "hash": self.hash,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CrosscheckReport:
    """Both chains' own verification and every recorded head that does not match.

    `node_anchors` counts the node heads the coordinator recorded, `coordinator_anchors`
    the coordinator heads the node recorded.
    """

    department: str
    node_anchors: int
    coordinator_anchors: int
    coordinator_chain: VerifyResult
    node_chain: VerifyResult
    mismatches: tuple[AnchorMismatch, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.coordinator_chain.ok and self.node_chain.ok and not self.mismatches

    def to_json(self) -> dict[str, Any]:
        def chain(result: VerifyResult) -> dict[str, Any]:
            return {
                "ok": result.ok,
                "entries": result.entries,
                "first_bad": result.first_bad,
                "reason": result.reason,
            }

        return {
            "ok": self.ok,
            "department": self.department,
            "node_anchors": self.node_anchors,
            "coordinator_anchors": self.coordinator_anchors,
            "coordinator_chain": chain(self.coordinator_chain),
            "node_chain": chain(self.node_chain),
            "mismatches": [m.to_json() for m in self.mismatches],
        }


def _held(head: SignedHead, log: list[AuditEntry], key: PublicIdentity, side: str) -> str:
    """Why `log` (the `side`'s) does not hold `head` signed by `key`; "" when it does."""
    if not head.verified_by(key):
        return (
            f"the recorded {side} head's signature does not verify with key {key.key_id}: "
            f"the {side} never signed it"
        )
    if head.seq > len(log):
        return (
            f"the {side} log ends at entry {len(log)} but entry {head.seq} was recorded: "
            "entries were cut off"
        )
    if log[head.seq - 1].seq != head.seq:
        return f"{side} log position {head.seq} holds entry {log[head.seq - 1].seq}"
    if log[head.seq - 1].hash != head.hash:
        return (
            f"{side} entry {head.seq} differs from the hash recorded: the {side} log was "
            "rewritten after it"
        )
    return ""


def _node_head_problem(entry: AuditEntry, node: list[AuditEntry], key: PublicIdentity) -> str:
    data = entry.data
    if "audit_sig" not in data:
        return (
            "the coordinator recorded this node head without its signature (an older "
            "silobridge wrote the entry): it cannot be checked"
        )
    head = SignedHead(int(data["audit_seq"]), str(data["audit_head"]), str(data["audit_sig"]))
    return _held(head, node, key, "node")


def _coordinator_head_of(entry: AuditEntry) -> tuple[SignedHead | None, str]:
    if "coordinator_head" not in entry.data:
        return None, (
            "the node recorded this message without the coordinator's chain head (an older "
            "silobridge wrote the entry): it cannot be checked"
        )
    raw = entry.data["coordinator_head"]
    if raw is None:
        return None, "the job message carried no coordinator chain head: it anchors nothing"
    try:
        return SignedHead.from_record(raw), ""
    except ValueError as err:
        return None, f"the recorded coordinator head is malformed ({err})"


def _mismatch(
    by: RecordedBy, entry: AuditEntry, head: SignedHead | None, reason: str
) -> AnchorMismatch:
    return AnchorMismatch(
        recorded_by=by,
        recorded_at=entry.seq,
        job_id=str(entry.data.get("job_id", "")),
        round=int(entry.data.get("round", 0)),
        seq=head.seq if head else 0,
        hash=head.hash if head else "",
        reason=reason,
    )


def crosscheck(
    coordinator_entries: list[AuditEntry],
    node_entries: list[AuditEntry],
    department: str,
    coordinator_key: PublicIdentity,
    node_key: PublicIdentity,
) -> CrosscheckReport:
    """Check both logs (signed by their keys) and every head each recorded of the other.

    Coordinator to node: every head the coordinator recorded from `department` (replies
    that carried none, seq 0, are skipped) must be signed by `node_key` and be in the node
    log at its position with its hash. Node to coordinator: every job message the node
    recorded must carry a coordinator head signed by `coordinator_key` that is in the
    coordinator's log at its position with its hash.
    """
    node_anchors = [
        e
        for e in coordinator_entries
        if e.kind == _NODE_REPLY
        and e.data.get("department") == department
        and int(e.data.get("audit_seq", 0)) > 0
    ]
    mismatches = []
    for e in node_anchors:
        reason = _node_head_problem(e, node_entries, node_key)
        if reason:
            recorded = SignedHead(int(e.data["audit_seq"]), str(e.data.get("audit_head", "")), "")
            mismatches.append(_mismatch(RecordedBy.COORDINATOR, e, recorded, reason))
    coordinator_anchors = [e for e in node_entries if e.kind == _JOB_RECEIVED]
    for e in coordinator_anchors:
        head, reason = _coordinator_head_of(e)
        if head is not None:
            reason = _held(head, coordinator_entries, coordinator_key, "coordinator")
        if reason:
            mismatches.append(_mismatch(RecordedBy.NODE, e, head, reason))
    return CrosscheckReport(
        department=department,
        node_anchors=len(node_anchors),
        coordinator_anchors=len(coordinator_anchors),
        coordinator_chain=verify_chain(coordinator_entries, coordinator_key),
        node_chain=verify_chain(node_entries, node_key),
        mismatches=tuple(mismatches),
    )


def crosscheck_files(
    coordinator_log: Path,
    node_log: Path,
    department: str,
    coordinator_key: PublicIdentity,
    node_key: PublicIdentity,
) -> CrosscheckReport:
    """`crosscheck` on two log files.

    Raises:
        DataError: If either file holds a line that is not an audit entry.
    """
    return crosscheck(
        read_entries(coordinator_log), read_entries(node_log), department, coordinator_key,
        node_key,
    )  # fmt: skip


def _described(row: LedgerEntry) -> str:
    return (
        f"ledger entry {row.entry_id} (job {row.job_id!r} round {row.round}, "
        f"{row.status.value}, period {row.period})"
    )


def ledger_mismatches(
    entries: list[AuditEntry], releases: list[LedgerEntry], dataset: str
) -> list[str]:
    """Every release row of `dataset` that the signed audit log does not vouch for, and
    every row it records that the ledger no longer holds.

    Each `reservation`, `charge` (or `cancel`) entry carries the digest of the ledger row
    it wrote; the row must match the digest of its latest such entry. A row edited by hand
    (a charge turned into a cancellation, a period moved, parameters shrunk), deleted or
    added is reported. (A node killed in the instant between writing its ledger and its log
    leaves a row ahead of its entry too; that is worth a look all the same.)
    """
    problems: list[str] = []
    recorded: dict[int, tuple[AuditEntry, str]] = {}
    for e in entries:
        ledger_entry = e.data.get("ledger_entry")
        if e.kind not in _LEDGER_KINDS or not isinstance(ledger_entry, int):
            continue
        if e.data.get("dataset", dataset) != dataset:
            continue  # another dataset sharing the node's ledger file
        digest = e.data.get("ledger_row")
        if not isinstance(digest, str):
            problems.append(
                f"audit entry {e.seq} ({e.kind} of ledger entry {ledger_entry}) carries no "
                "ledger row digest: an older silobridge wrote it, so its row cannot be checked"
            )
            continue
        recorded[ledger_entry] = (e, digest)
    held = {row.entry_id: row for row in releases}
    for entry_id, row in held.items():
        if entry_id not in recorded:
            problems.append(
                f"{_described(row)} has no audit entry: it was added (or its entries were "
                "removed) outside the node"
            )
        elif release_digest(row) != recorded[entry_id][1]:
            e = recorded[entry_id][0]
            problems.append(
                f"{_described(row)} differs from what audit entry {e.seq} ({e.kind}) "
                "recorded: the row was edited after it was logged"
            )
    for entry_id, (e, _) in recorded.items():
        if entry_id not in held:
            problems.append(
                f"ledger entry {entry_id} (job {e.data.get('job_id')!r} round "
                f"{e.data.get('round')}), recorded by audit entry {e.seq}, is missing from the "
                "ledger: it was deleted"
            )
    return problems
