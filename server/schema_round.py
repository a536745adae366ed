"""`job schema`: every connected node's officer-declared open and conditional columns.

One message per node, signed by the coordinator like a job (nodes that trust its key
check the claim) and carrying its audit chain head; a reply counts only when sealed by
its department's registered node key. Nothing is charged anywhere: the answer is what
each officer published by classifying the columns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

from server.exchange import AnswerStatus, NodeReply, job_config, push_and_pull, wait_for_nodes
from server.home.coordinator_home import CoordinatorHome
from server.reply_check import ReplyCheck, claimed_department, registered_nodes
from vocab.job_claim import sign_claim
from vocab.progress import no_progress
from vocab.reply_seal import content_digest
from vocab.wire import JOB, REPORT, SCHEMA, NodeSchema, ReplyStatus, schema_request_bytes

__all__ = ["SchemaAnswer", "ask_schema"]

WAIT_S = 10.0
"""How long to wait for a first node to be connected."""
TIMEOUT_S = 60.0
"""How long nodes have to answer."""


@dataclass(frozen=True)
class SchemaAnswer:
    """One department's answer; `schema` is None when it gave no believable one."""

    department: str
    status: str
    code: str = ""
    reason: str = ""
    schema: NodeSchema | None = None


def ask_schema(grid: Grid, home: CoordinatorHome, caller: str, dataset: str) -> list[SchemaAnswer]:
    """Ask every connected node; log the request and every answer in the coordinator's log."""
    audit = home.audit()
    identity = home.identity()
    job_id = f"schema-{uuid.uuid4().hex[:12]}"
    request = schema_request_bytes(dataset)
    claim = sign_claim(identity, job_id, request)
    expected = len(home.nodes.departments())
    node_ids = wait_for_nodes(grid, 1, WAIT_S, no_progress, expected)
    head = audit.head()

    def content() -> RecordDict:
        record = job_config(request, job_id, 0, head, claim)
        record["dataset"] = dataset
        return RecordDict({JOB: record})

    digest = content_digest(content())
    check = registered_nodes(home.nodes)
    replies = dict(push_and_pull(grid, node_ids, content, SCHEMA, "0", TIMEOUT_S))
    answers: list[SchemaAnswer] = []
    for node_id in node_ids:
        answer = _answer(replies.get(node_id), job_id, digest, check)
        answers.append(answer)
        schema = answer.schema
        status = AnswerStatus(answer.status)
        audit.node_reply(
            job_id,
            NodeReply(
                node_id, answer.department, 0, SCHEMA, status, answer.code, answer.reason,
                audit_seq=schema.audit_seq if schema else 0,
                audit_head=schema.audit_head if schema else "",
                audit_sig=schema.audit_sig if schema else "",
            ),
        )  # fmt: skip
    audit.schema(job_id, caller, dataset, {a.department: a.status for a in answers})
    return sorted(answers, key=lambda a: a.department)


def _answer(reply: Message | None, job_id: str, digest: str, check: ReplyCheck) -> SchemaAnswer:
    if reply is None:
        return SchemaAnswer("?", AnswerStatus.NO_ANSWER.value, "no_reply", "no answer in time")
    if reply.has_error():
        return SchemaAnswer("?", AnswerStatus.NO_ANSWER.value, "node_error", "the node failed")
    department = claimed_department(reply.content)
    problem = check(reply.content, department, job_id, 0, SCHEMA, digest)
    if problem is not None:
        return SchemaAnswer(department or "?", AnswerStatus.NO_ANSWER.value, "unverified", problem)
    try:
        schema = NodeSchema.from_record(dict(reply.content.config_records[REPORT]))
    except (KeyError, TypeError, ValueError) as err:
        return SchemaAnswer(department, AnswerStatus.NO_ANSWER.value, "bad_reply", str(err)[:200])
    if schema.status is not ReplyStatus.OK:
        return SchemaAnswer(
            department, AnswerStatus.REFUSED.value, schema.code, schema.reason, schema
        )
    return SchemaAnswer(department, AnswerStatus.OK.value, schema=schema)
