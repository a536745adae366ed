"""One release per admitted node: the exchange of one-shot kinds (statistics, linear fits).

The job goes to every node that admitted it, once; each reply is believed only under its
department's seal for exactly this request, and its kind's payload (the RESULT record's
JSON) is handed back for the kind to parse. Every answer and every silence reaches
`on_reply`, so the coordinator's log and its settlement see them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flwr.app import Message, RecordDict

from server.exchange import AnswerStatus, NodeReply, job_config, push_and_pull
from server.kinds.base import Drive
from server.reply_check import claimed_department
from vocab.reply_seal import content_digest
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope
from vocab.wire import JOB, REPORT, RESULT, NodeReport, ReplyStatus

__all__ = ["NodeRelease", "OneShot", "release_once"]

RELEASE_ROUND = 1


@dataclass(frozen=True)
class NodeRelease:
    """One node's verified, OK answer: its report and its kind's payload (JSON text)."""

    node_id: int
    department: str
    report: NodeReport
    payload: str


@dataclass(frozen=True)
class OneShot:
    """The round's answers: the releases, and every other node's reason (department ->
    code and reason), in the order the nodes were asked."""

    releases: tuple[NodeRelease, ...]
    missing: tuple[tuple[str, str, str], ...]
    reports: tuple[NodeReport, ...]
    seconds: float


def _payload(reply: Message) -> str:
    record = reply.content.config_records.get(RESULT)
    text = record.get("json") if record is not None else None
    if not isinstance(text, str) or not text:
        raise ValueError("the reply carries no result")
    return text


def release_once(spec: JobEnvelope, drive: Drive, message_type: str) -> OneShot:
    """Asks every admitted node for its one release of `spec`; never raises for a node.

    A node's answer counts only if it is sealed by its department's registered key for
    this very request, names the department it was admitted as, and is well formed.
    """
    started = time.monotonic()
    admitted = {a.node_id: a.department for a in drive.admission.answers if a.would_run}
    spec_bytes = job_to_bytes(spec)
    head = drive.head()

    def content() -> RecordDict:
        return RecordDict({JOB: job_config(spec_bytes, drive.job_id, RELEASE_ROUND, head)})

    request = content_digest(content())
    drive.emit("release_start", nodes=len(admitted), kind=spec.kind)
    replies = push_and_pull(
        drive.grid,
        list(admitted),
        content,
        message_type,
        str(RELEASE_ROUND),
        spec.round_timeout_s,
    )
    releases: list[NodeRelease] = []
    missing: list[tuple[str, str, str]] = []
    reports: list[NodeReport] = []

    def no_answer(node_id: int, code: str, reason: str) -> None:
        department = admitted[node_id]
        missing.append((department, code, reason))
        drive.on_reply(
            NodeReply(
                node_id,
                department,
                RELEASE_ROUND,
                message_type,
                AnswerStatus.NO_ANSWER,
                code,
                reason,
            )
        )
        drive.emit("refusal", department=department, round=RELEASE_ROUND, code=code, reason=reason)

    answered: set[int] = set()
    for node_id, reply in replies:
        answered.add(node_id)
        expected = admitted[node_id]
        if reply.has_error():
            no_answer(node_id, "node_error", f"node error {reply.error.code}: {reply.error.reason}")
            continue
        claimed = claimed_department(reply.content)
        problem = drive.check(
            reply.content, claimed, drive.job_id, RELEASE_ROUND, message_type, request
        )
        if problem is None and claimed != expected:
            problem = f"node admitted as {expected} now claims {claimed[:60]!r}"
        if problem is not None:
            no_answer(node_id, "unverified", problem)
            continue
        try:
            report = NodeReport.from_record(dict(reply.content[REPORT]))
            payload = _payload(reply) if report.status is ReplyStatus.OK else ""
        except Exception as err:  # a reply is untrusted input: no parse error may end the job
            reason = f"malformed reply ({type(err).__name__}: {str(err)[:200]}); another version?"
            no_answer(node_id, "bad_reply", reason)
            continue
        reports.append(report)
        status = AnswerStatus.OK if report.status is ReplyStatus.OK else AnswerStatus.REFUSED
        drive.on_reply(
            NodeReply(
                node_id=node_id,
                department=expected,
                round=RELEASE_ROUND,
                message_type=message_type,
                status=status,
                code=report.code,
                reason=report.reason,
                epsilon_job=report.epsilon_job,
                audit_seq=report.audit_seq,
                audit_head=report.audit_head,
                audit_sig=report.audit_sig,
            )
        )
        if status is AnswerStatus.OK:
            releases.append(NodeRelease(node_id, expected, report, payload))
        else:
            missing.append((expected, report.code, report.reason))
            drive.emit(
                "refusal",
                department=expected,
                round=RELEASE_ROUND,
                code=report.code,
                reason=report.reason,
            )
    for node_id in admitted:
        if node_id not in answered:
            no_answer(node_id, "no_reply", "no reply within the round timeout")
    return OneShot(tuple(releases), tuple(missing), tuple(reports), time.monotonic() - started)
