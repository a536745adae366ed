"""The node's audit log: where it lives, the key that signs it, and entries more than one
command writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from clients.ledger.ledger import BudgetChange, LedgerEntry
from clients.node_identity import node_identity
from vocab.audit_log import AuditLog

__all__ = ["audit_path_for", "log_budget_change", "node_audit_log", "release_digest"]


def audit_path_for(ledger_path: Path) -> Path:
    """The audit log of the node whose ledger is `ledger_path`: beside it, so one backup
    holds both."""
    return ledger_path.with_name(ledger_path.stem + ".audit.jsonl")


def node_audit_log(ledger_path: Path) -> AuditLog:
    """The node's audit log, signed with the node's identity key (made on first use)."""
    return AuditLog(audit_path_for(ledger_path), node_identity(ledger_path))


def release_digest(entry: LedgerEntry) -> str:
    """SHA-256 of what a ledger release row says about the budget: which dataset, period,
    job, round and requester it charges, with which mechanism and parameters, and its status.

    The `reservation` and `charge` audit entries carry it, so a row edited (a status turned
    to cancelled, a period moved, parameters shrunk), deleted or added by hand no longer
    matches the signed log. Timestamps and the owning process are left out: they say
    nothing about what was spent, and a resumed reservation changes them.
    """
    body = {
        "id": entry.entry_id,
        "dataset": entry.dataset,
        "period": entry.period,
        "job_id": entry.job_id,
        "round": entry.round,
        "purpose": entry.requester.purpose,
        "analyst": entry.requester.analyst,
        "project": entry.requester.project,
        "mechanism": entry.event.mechanism.value,
        "params": entry.event.params(),
        "status": entry.status.value,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def log_budget_change(audit: AuditLog, change: BudgetChange | None) -> None:
    """Records a budget change the ledger applied on its own (an edit of the config's
    [budget]); nothing when there was none."""
    if change is not None:
        audit.append(
            "budget_change",
            {"dataset": change.dataset, "scope": change.scope.label,
             "epsilon": change.new.epsilon, "delta": change.new.delta, "source": change.source},
        )  # fmt: skip
