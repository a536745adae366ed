"""Column policy: the node refuses a job that names unknown, restricted or unapproved columns."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from clients.node_config import NodeConfig
from vocab.columns import ColumnClass
from vocab.errors import PolicyRefusal

__all__ = ["check_job_columns"]


def _listed(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def check_job_columns(job_name: str, used: Sequence[str], config: NodeConfig) -> None:
    """Refuses the job unless every column it uses is declared and allowed at this node.

    Allowed means: declared under [columns], not the person-id column, not restricted,
    and, if conditional, named together with this job in one of the config's approvals.

    Args:
        job_name: The job's name, as approvals name it.
        used: Every column the job reads (features, target, group-by...).
        config: This node's config.

    Raises:
        PolicyRefusal: Some column is unknown, the person id, restricted, or conditional
            without an approval for this job. The message lists every such column.
    """
    declared = [spec.name for spec in config.columns]
    wanted = list(dict.fromkeys(used))
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
    approved = {
        name
        for approval in config.approvals
        if approval.job == job_name
        for name in approval.columns
    }
    unapproved = [
        name
        for name, spec in by_class.items()
        if spec is not None
        and spec.column_class is ColumnClass.CONDITIONAL
        and name not in approved
    ]
    if unapproved:
        columns = ", ".join(f'"{name}"' for name in unapproved)
        raise PolicyRefusal(
            f"job `{job_name}` uses conditional column(s) {_listed(unapproved)} of department "
            f"`{config.department}` without an approval for this job",
            "ask the department's privacy officer to approve them: an [[approvals]] entry "
            f'with job = "{job_name}" and columns = [{columns}] in {config.config_path}',
        )
