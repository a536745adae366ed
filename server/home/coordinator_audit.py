"""The coordinator's signed, hash-chained audit log: one method per event, metadata only.

Entries name jobs, analysts, projects, epsilons, node answers and the nodes' own signed
audit chain heads; never weights, records or statistics computed from them. Every entry is
signed with the coordinator's identity key; its head goes to the nodes with every job
message (`head`), so each node's log anchors this one.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.central_budget.central_budget import CapChange, CentralCheck
from server.run_config import RunMode
from vocab.audit_chain import AuditEntry, SignedHead
from vocab.audit_log import AuditLog
from vocab.identity_key import IdentityKey
from vocab.progress import CapView, CentralView
from vocab.spec import JobEnvelope

if TYPE_CHECKING:  # Flower is not imported where only the officer's CLI needs this module.
    from server.exchange import NodeReply

__all__ = ["CoordinatorAudit", "CoordinatorEvent", "central_view", "check_record"]


class CoordinatorEvent(enum.Enum):
    """The kinds of entry the coordinator writes."""

    JOB_RECEIVED = "job_received"
    CAP_CHECK = "cap_check"
    REFUSAL = "refusal"
    NODE_REPLY = "node_reply"
    QUOTE = "quote"
    JOB_END = "job_end"
    CAP_CHANGE = "cap_change"
    API_DENIED = "api_denied"
    SCHEMA = "schema"


def central_view(check: CentralCheck) -> CentralView:
    """A central check as a quote's progress event shows it."""
    return CentralView(
        requested=check.requested,
        fits=check.fits,
        caps=tuple(
            CapView(
                kind=c.kind.value,
                key=c.key,
                cap=c.cap,
                spent=c.spent,
                remaining=c.remaining,
                after=c.after,
                fits=c.fits,
            )
            for c in check.checks
        ),
    )


def check_record(check: CentralCheck) -> dict[str, Any]:
    """A central check as plain data (audit entries; the quote event's `central` too)."""
    view = central_view(check)
    return {
        "requested": view.requested,
        "fits": view.fits,
        "caps": [dataclasses.asdict(c) for c in view.caps],
    }


class CoordinatorAudit:
    """Appends the coordinator's events to `<home>/coordinator.audit.jsonl`, signed with
    the coordinator's identity key."""

    def __init__(self, path: Path, key: IdentityKey) -> None:
        self._log = AuditLog(path, key)

    @property
    def path(self) -> Path:
        return self._log.path

    def head(self) -> SignedHead | None:
        """The log's signed head, as job messages carry it to the nodes."""
        return self._log.head()

    def _append(self, event: CoordinatorEvent, data: dict[str, Any]) -> AuditEntry:
        return self._log.append(event.value, data)

    def job_received(
        self, spec: JobEnvelope, job_id: str, mode: RunMode, app: str = ""
    ) -> AuditEntry:
        return self._append(
            CoordinatorEvent.JOB_RECEIVED,
            {
                "job": spec.name,
                "job_id": job_id,
                "kind": spec.kind,
                "dataset": spec.dataset,
                "analyst": spec.analyst,
                "project": spec.project,
                "purpose": spec.purpose,
                "epsilon": spec.epsilon,
                "delta": spec.delta,
                "rounds": spec.message_rounds,
                "min_nodes": spec.min_nodes,
                "columns": list(spec.columns),
                "mode": mode.value,
                **({"app": app} if app else {}),
            },
        )

    def cap_check(
        self, job_id: str, check: CentralCheck, *, mode: RunMode, reserved: bool
    ) -> AuditEntry:
        return self._append(
            CoordinatorEvent.CAP_CHECK,
            {"job_id": job_id, "mode": mode.value, "reserved": reserved, **check_record(check)},
        )

    def refusal(self, job_id: str, code: str, reason: str, **figures: Any) -> AuditEntry:
        return self._append(
            CoordinatorEvent.REFUSAL,
            {"job_id": job_id, "code": code, "reason": reason, **figures},
        )

    def node_reply(self, job_id: str, reply: NodeReply) -> AuditEntry:
        return self._append(
            CoordinatorEvent.NODE_REPLY,
            {
                "job_id": job_id,
                "node_id": str(reply.node_id),
                "department": reply.department,
                "round": reply.round,
                "message_type": reply.message_type,
                "status": reply.status.value,
                "code": reply.code,
                "reason": reply.reason,
                "epsilon_job": reply.epsilon_job,
                "audit_seq": reply.audit_seq,
                "audit_head": reply.audit_head,
                "audit_sig": reply.audit_sig,
            },
        )

    def schema(self, job_id: str, caller: str, dataset: str, answers: dict[str, str]) -> AuditEntry:
        """A `job schema` request: who asked, and each department's answer status."""
        return self._append(
            CoordinatorEvent.SCHEMA,
            {"job_id": job_id, "caller": caller, "dataset": dataset, "answers": answers},
        )

    def quote(self, job_id: str, summary: dict[str, Any]) -> AuditEntry:
        return self._append(CoordinatorEvent.QUOTE, {"job_id": job_id, **summary})

    def job_end(self, job_id: str, status: str, **details: Any) -> AuditEntry:
        return self._append(
            CoordinatorEvent.JOB_END, {"job_id": job_id, "status": status, **details}
        )

    def cap_change(self, change: CapChange) -> AuditEntry:
        return self._append(
            CoordinatorEvent.CAP_CHANGE,
            {"kind": change.kind.value, "key": change.key, "old": change.old, "new": change.new},
        )

    def api_denied(self, caller: str, method: str, status: str, reason: str) -> AuditEntry:
        """A call to the service's API was refused (no or bad credential, wrong role)."""
        return self._append(
            CoordinatorEvent.API_DENIED,
            {"caller": caller, "method": method, "status": status, "reason": reason[:500]},
        )
