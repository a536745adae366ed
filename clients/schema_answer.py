"""A node's answer to `job schema`: the names, types and classes of its open and conditional
columns, as its officer declared them.

That is metadata the officer published by classifying the columns; nothing is read from
the data, no value or count leaves, and a restricted column is never named. No privacy
budget is spent (nothing about a person is released). The request must carry the
coordinator's claim when the officer set `[coordinator] public_key`, like any job; each
answer is logged in the node's audit log with the coordinator's anchor, and sealed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clients.release import check_claim, logged_answer, open_node, refusal
from vocab.audit_chain import SignedHead
from vocab.audit_log import AuditLog
from vocab.columns import ColumnClass
from vocab.errors import RefusalCode
from vocab.wire import DeclaredColumn, NodeSchema, ReplyStatus, schema_request_bytes

__all__ = ["handle_schema"]

log = logging.getLogger(__name__)

_SHOWN = (ColumnClass.OPEN, ColumnClass.CONDITIONAL)


def handle_schema(
    config_path: Path,
    department_hint: str,
    job_id: str,
    dataset: str,
    coordinator_head: SignedHead | None,
    *,
    claim: str,
) -> NodeSchema:
    """The node's declared open and conditional columns, or a refusal. Never raises."""
    audit: AuditLog | None = None
    department = department_hint
    try:
        cfg, audit = open_node(config_path)
        department = cfg.department
        check_claim(cfg, job_id, schema_request_bytes(dataset), claim)
        if dataset and dataset != cfg.dataset:
            answer = NodeSchema(
                department, ReplyStatus.REFUSED, RefusalCode.OTHER_DATASET.value,
                f"this node holds dataset {cfg.dataset!r}", dataset=cfg.dataset,
            )  # fmt: skip
        else:
            columns = tuple(
                DeclaredColumn(c.name, c.type.value, c.column_class.value)
                for c in cfg.columns
                if c.column_class in _SHOWN
            )
            answer = NodeSchema(department, ReplyStatus.OK, dataset=cfg.dataset, columns=columns)
    except Exception as err:  # a daemon answers, it does not crash
        code, reason = refusal(err, f"schema request {job_id}", log)
        answer = NodeSchema(department, ReplyStatus.REFUSED, code.value, reason)
    if audit is None:
        return answer
    anchor = None if coordinator_head is None else coordinator_head.to_record()
    entry = {
        "job_id": job_id, "dataset": dataset, "status": answer.status.value,
        "code": answer.code, "columns": [c.name for c in answer.columns],
        "coordinator_head": anchor,
    }  # fmt: skip
    return logged_answer(audit, "schema", entry, answer)
