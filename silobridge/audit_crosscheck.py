"""Checks a node's audit log against the chain heads the coordinator recorded from it.

Every node reply carries the head (sequence number and hash) of the node's audit chain
after it logged that reply, and the coordinator writes it into its own log. A node log
that still holds every such head, unchanged, was not rewritten or cut short since; each
head that is missing or differs is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.ledger import EntryStatus, LedgerEntry
from vocab.audit_chain import AuditEntry, VerifyResult, verify_chain
from vocab.audit_log import read_entries

__all__ = ["AnchorMismatch", "CrosscheckReport", "crosscheck", "crosscheck_files", "ledger_gaps"]

_NODE_REPLY = "node_reply"


@dataclass(frozen=True)
class AnchorMismatch:
    """A head the coordinator recorded that the node log does not hold."""

    coordinator_seq: int  # the coordinator's node_reply entry that recorded the head
    job_id: str
    round: int
    seq: int
    hash: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "coordinator_seq": self.coordinator_seq,
            "job_id": self.job_id,
            "round": self.round,
            "seq": self.seq,
            "hash": self.hash,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CrosscheckReport:
    """Both chains' own verification and every recorded head that does not match."""

    department: str
    anchors: int
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
            "anchors": self.anchors,
            "coordinator_chain": chain(self.coordinator_chain),
            "node_chain": chain(self.node_chain),
            "mismatches": [m.to_json() for m in self.mismatches],
        }


def _mismatch(entry: AuditEntry, node_entries: list[AuditEntry]) -> AnchorMismatch | None:
    seq, digest = int(entry.data.get("audit_seq", 0)), str(entry.data.get("audit_head", ""))
    if seq > len(node_entries):
        reason = (
            f"the node log ends at entry {len(node_entries)} but the coordinator recorded "
            f"entry {seq}: entries were cut off"
        )
    elif node_entries[seq - 1].seq != seq:
        reason = f"node log position {seq} holds entry {node_entries[seq - 1].seq}"
    elif node_entries[seq - 1].hash != digest:
        reason = f"node entry {seq} differs from the hash the coordinator recorded"
    else:
        return None
    return AnchorMismatch(
        coordinator_seq=entry.seq,
        job_id=str(entry.data.get("job_id", "")),
        round=int(entry.data.get("round", 0)),
        seq=seq,
        hash=digest,
        reason=reason,
    )


def crosscheck(
    coordinator_entries: list[AuditEntry], node_entries: list[AuditEntry], department: str
) -> CrosscheckReport:
    """Check every head the coordinator recorded for `department` against the node's log.

    Replies that carried no head (seq 0: a node that could not log, or a silent one) are
    skipped; every other head must be in the node log at its position with its hash.
    """
    anchors = [
        e
        for e in coordinator_entries
        if e.kind == _NODE_REPLY
        and e.data.get("department") == department
        and int(e.data.get("audit_seq", 0)) > 0
    ]
    found = (_mismatch(e, node_entries) for e in anchors)
    return CrosscheckReport(
        department=department,
        anchors=len(anchors),
        coordinator_chain=verify_chain(coordinator_entries),
        node_chain=verify_chain(node_entries),
        mismatches=tuple(m for m in found if m is not None),
    )


def crosscheck_files(coordinator_log: Path, node_log: Path, department: str) -> CrosscheckReport:
    """`crosscheck` on two log files.

    Raises:
        DataError: If either file holds a line that is not an audit entry.
    """
    return crosscheck(read_entries(coordinator_log), read_entries(node_log), department)


def ledger_gaps(entries: list[AuditEntry], releases: list[LedgerEntry]) -> list[str]:
    """Releases in a node's ledger that its audit log does not account for.

    Every release must have its `reservation` entry, a committed one its `charge`, a
    cancelled one its `cancel`. A log deleted or cut short - which its own chain cannot
    show - leaves releases without entries. (A node killed in the instant between writing
    its ledger and its log leaves one too; that is worth a look all the same.)
    """
    logged: dict[str, set[int]] = {"reservation": set(), "charge": set(), "cancel": set()}
    for entry in entries:
        if entry.kind in logged and isinstance(entry.data.get("ledger_entry"), int):
            logged[entry.kind].add(int(entry.data["ledger_entry"]))
    needed = {EntryStatus.COMMITTED: "charge", EntryStatus.CANCELLED: "cancel"}
    gaps = []
    for release in releases:
        kinds = ["reservation"] + ([needed[release.status]] if release.status in needed else [])
        missing = [kind for kind in kinds if release.entry_id not in logged[kind]]
        if missing:
            gaps.append(
                f"ledger entry {release.entry_id} (job {release.job_id!r} round "
                f"{release.round}, {release.status.value}) has no {' or '.join(missing)} entry"
            )
    return gaps
