"""The node's audit log: where it lives, and entries more than one command writes."""

from __future__ import annotations

from pathlib import Path

from clients.ledger import BudgetChange
from vocab.audit_log import AuditLog

__all__ = ["audit_path_for", "log_budget_change"]


def audit_path_for(ledger_path: Path) -> Path:
    """The audit log of the node whose ledger is `ledger_path`: beside it, so one backup
    holds both."""
    return ledger_path.with_name(ledger_path.stem + ".audit.jsonl")


def log_budget_change(audit: AuditLog, change: BudgetChange | None) -> None:
    """Records a budget change the ledger applied on its own (an edit of the config's
    [budget]); nothing when there was none."""
    if change is not None:
        audit.append(
            "budget_change",
            {"dataset": change.dataset, "scope": change.scope.label,
             "epsilon": change.new.epsilon, "delta": change.new.delta, "source": change.source},
        )  # fmt: skip
