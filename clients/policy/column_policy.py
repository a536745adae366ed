"""Column policy: the node refuses a job that names unknown, restricted or unapproved columns."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clients.node_config import NodeConfig
from clients.policy.approval_check import UsedApproval, approve_conditional_columns
from vocab.approval import JobClaims
from vocab.columns import ColumnClass
from vocab.errors import PolicyRefusal

__all__ = ["PolicyDecision", "check_job_columns"]


@dataclass(frozen=True)
class PolicyDecision:
    """A job the column policy let through: its columns and the approvals that allowed it."""

    job: str
    columns: tuple[str, ...]
    approvals: tuple[UsedApproval, ...]
    """One entry per signed approval used, naming the conditional columns it unlocked."""

    def audit_record(self) -> dict[str, Any]:
        """JSON-ready fields for the audit log (key id, digest, job, columns, expiry)."""
        return {
            "job": self.job,
            "columns": list(self.columns),
            "approvals": [used.audit_record() for used in self.approvals],
        }


def _listed(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def check_job_columns(
    config: NodeConfig, claims: JobClaims, now: datetime | None = None
) -> PolicyDecision:
    """Refuses the job unless every column it uses is declared and allowed at this node.

    Allowed means: declared under [columns], not the person-id column, not restricted,
    and, if conditional, covered by a signed approval the officer key verifies, for this
    department, dataset, job name and purpose, at the job's epsilon, valid at `now`
    (see `clients.policy.approval_check`).

    Args:
        config: This node's config.
        claims: The job's name, purpose, every column it reads (features, target,
            group-by...) and its per-node epsilon.
        now: When to judge the approvals' validity; the current time by default.

    Returns:
        The decision: the job's columns and the approvals used, for the audit log.

    Raises:
        PolicyRefusal: Some column is unknown, the person id, restricted, or conditional
            without a valid approval. The message lists every such column, and for an
            unapproved one why its closest approval fails.
        ConfigError: The officer key named by the config cannot be read.
    """
    job_name = claims.name
    declared = [spec.name for spec in config.columns]
    wanted = list(dict.fromkeys(claims.columns))
    unknown = [name for name in wanted if config.column(name) is None]
    if unknown:
        guesses = []
        for name in unknown:
            close = difflib.get_close_matches(name, declared, n=3)
            if close:
                guesses.append(f"`{name}`: did you mean {_listed(close)}?")
        raise PolicyRefusal(
            f"job `{job_name}` uses column(s) {_listed(unknown)} that department "
            f"`{config.department}` does not declare"
            + (f" ({'; '.join(guesses)})" if guesses else ""),
            "fix the column names in the job spec, or ask the node operator to declare "
            "the columns under [columns]",
        )
    if config.person_id is not None and config.person_id in wanted:
        raise PolicyRefusal(
            f"job `{job_name}` uses `{config.person_id}`, the person-id column of "
            f"department `{config.department}`; it identifies people and is never released",
            "remove it from the job spec",
        )
    by_class = {name: config.column(name) for name in wanted}
    restricted = [
        name
        for name, spec in by_class.items()
        if spec is not None and spec.column_class is ColumnClass.RESTRICTED
    ]
    if restricted:
        raise PolicyRefusal(
            f"job `{job_name}` uses restricted column(s) {_listed(restricted)} of department "
            f"`{config.department}`; restricted columns are never used",
            "remove them from the job spec (no approval can unlock a restricted column)",
        )
    conditional = [
        name
        for name, spec in by_class.items()
        if spec is not None and spec.column_class is ColumnClass.CONDITIONAL
    ]
    used = approve_conditional_columns(
        config, claims, conditional, datetime.now(UTC) if now is None else now
    )
    return PolicyDecision(job=job_name, columns=tuple(wanted), approvals=used)
