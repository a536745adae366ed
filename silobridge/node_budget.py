"""The department officer's view of a node's budgets: show, set and history, as plain data.

Runs on the node host against the node's own ledger and audit log; every change is
appended to the audit log before the command reports success.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.ledger.ledger import EntryStatus, Scope, ScopeKind
from clients.ledger.node_audit import log_budget_change, node_audit_log
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig, load_node_config
from vocab.errors import ConfigError
from vocab.jobspec import NAME_RE
from vocab.privacy import Budget

__all__ = [
    "NodeBudgetView",
    "budget_history",
    "budget_view",
    "open_node_ledger",
    "set_node_budget",
]


@dataclass(frozen=True)
class NodeBudgetView:
    """What `budget show` prints: every scope of the current period, and the lifetime loss."""

    department: str
    dataset: str
    period: str
    scopes: list[dict[str, Any]]
    lifetime_epsilon: float
    reserved_entries: int

    def to_json(self) -> dict[str, Any]:
        return {
            "side": "node",
            "department": self.department,
            "dataset": self.dataset,
            "period": self.period,
            "scopes": self.scopes,
            "lifetime_epsilon": self.lifetime_epsilon,
            "reserved_entries": self.reserved_entries,
        }


def open_node_ledger(config_path: Path) -> tuple[NodeConfig, SqliteLedger]:
    """The node's ledger; an edit of the config's [budget] it applies is audited here too."""
    cfg = load_node_config(config_path)
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    log_budget_change(node_audit_log(cfg.ledger_path), ledger.config_change)
    return cfg, ledger


def budget_view(config_path: Path) -> NodeBudgetView:
    """Spent and remaining per scope of the current period, from the node's ledger."""
    cfg, ledger = open_node_ledger(config_path)
    scopes = []
    for item in ledger.budgets():
        spent = ledger.spent(item.scope)
        scopes.append(
            {
                "scope": item.scope.label,
                "epsilon": item.budget.epsilon,
                "delta": item.budget.delta,
                "spent": spent,
                "remaining": max(0.0, item.budget.epsilon - spent),
                "set_at": item.set_at.isoformat(),
            }
        )
    reserved = sum(1 for e in ledger.history() if e.status is EntryStatus.RESERVED)
    return NodeBudgetView(
        cfg.department, cfg.dataset, ledger.period(), scopes, ledger.lifetime_spent(), reserved
    )


def set_node_budget(
    config_path: Path,
    epsilon: float,
    delta: float | None = None,
    *,
    purpose: str | None = None,
    analyst: str | None = None,
    new_period: str | None = None,
) -> str:
    """Sets one budget of the current period, or opens a new period with its total.

    Args:
        epsilon, delta: The budget; delta defaults to the current period total's.
        purpose / analyst / new_period: At most one; none sets the period total.

    Returns:
        A one-line description of what changed.

    Raises:
        ConfigError: A bad value, several scopes at once, or a period name reused.
    """
    if sum(x is not None for x in (purpose, analyst, new_period)) > 1:
        raise ConfigError(
            "give at most one of --purpose, --analyst, --period",
            "run the command once per budget",
        )
    cfg, ledger = open_node_ledger(config_path)
    audit = node_audit_log(cfg.ledger_path)
    budget = Budget(epsilon, ledger.budget().delta if delta is None else delta)
    if analyst is not None and not NAME_RE.fullmatch(analyst):
        raise ConfigError(
            f"analyst name {analyst!r} is not one a job spec can carry",
            "use 1-64 letters, digits, '.', '_' or '-', as in the job spec's `analyst`",
        )
    scope: Scope | None = None
    if new_period is not None:
        label = f"period {new_period}"
    else:
        if purpose is not None:
            scope = Scope(ScopeKind.PURPOSE, purpose)
        elif analyst is not None:
            scope = Scope(ScopeKind.ANALYST, analyst)
        else:
            scope = Scope(ScopeKind.PERIOD, ledger.period())
        label = scope.label
    record = {"dataset": cfg.dataset, "scope": label, "epsilon": budget.epsilon,
              "delta": budget.delta, "source": "officer"}  # fmt: skip
    # Logged before it takes effect, so no change is ever in force unlogged; a change
    # that then fails is logged as failed.
    audit.append("budget_change", record)
    try:
        if scope is None:
            ledger.open_period(str(new_period), budget)
        else:
            ledger.set_budget(scope, budget)
    except Exception as err:
        audit.append("budget_change_failed", {**record, "reason": str(err)})
        raise
    if scope is None:
        return f"opened period {new_period!r} with total epsilon {budget.epsilon:g}"
    return f"{scope.label}: epsilon {budget.epsilon:g}, delta {budget.delta:g}"


def budget_history(config_path: Path) -> dict[str, Any]:
    """Every budget change, and every job's releases with their status and epsilon."""
    cfg, ledger = open_node_ledger(config_path)
    changes = [
        {
            "at": c.changed_at.isoformat(),
            "scope": c.scope.label,
            "old_epsilon": None if c.old is None else c.old.epsilon,
            "new_epsilon": c.new.epsilon,
            "delta": c.new.delta,
            "source": c.source,
        }
        for c in ledger.budget_changes()
    ]
    rounds: dict[str, list[Any]] = defaultdict(list)
    for entry in ledger.history():
        rounds[entry.job_id].append(entry)
    jobs = []
    for job_id, entries in rounds.items():
        first = entries[0]
        statuses = [e.status.value for e in entries]
        jobs.append(
            {
                "job_id": job_id,
                "period": first.period,
                "purpose": first.requester.purpose,
                "analyst": first.requester.analyst,
                "project": first.requester.project,
                "started": first.created_at.isoformat(),
                "rounds": {s: statuses.count(s) for s in sorted(set(statuses))},
                "epsilon": ledger.job_epsilon(job_id),
            }
        )
    return {"department": cfg.department, "dataset": cfg.dataset, "changes": changes,
            "jobs": jobs}  # fmt: skip
