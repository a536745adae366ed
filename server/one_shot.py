"""One message to each of a set of nodes, and their verified answers: the exchange of the
kinds that are not the risk model's (statistics and linear fits once; Poisson rounds).

Each reply is believed only under its department's seal for exactly this request, and
its kind's payload (the RESULT record's JSON, or the weights of a model update) is handed
back for the kind to parse. Every answer and every silence reaches `on_reply`, so the
coordinator's log and its settlement see them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, Message, RecordDict

from server.exchange import AnswerStatus, NodeReply, answers_to, job_config, push_and_pull
from server.kinds.base import Drive
from server.reply_check import claimed_department
from vocab.progress import Refusal, ReleaseStart
from vocab.reply_seal import content_digest
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope
from vocab.wire import ARRAYS, JOB, REPORT, RESULT, NodeReport, ReplyStatus

__all__ = [
    "RELEASE_ROUND",
    "NodeRelease",
    "OneShot",
    "admitted_nodes",
    "ask_nodes",
    "release_once",
]

RELEASE_ROUND = 1
"""The round of a one-shot kind's single release."""

Weights = list[npt.NDArray[np.float32]]


@dataclass(frozen=True)
class NodeRelease:
    """One node's verified, OK answer: its report and its kind's payload (JSON text, or
    the weights of a model update)."""

    node_id: int
    department: str
    report: NodeReport
    payload: str = ""
    weights: Weights | None = None


@dataclass(frozen=True)
class OneShot:
    """One message's answers: the releases, every other asked node's (department, code,
    reason), and the reports of every node that answered."""

    releases: tuple[NodeRelease, ...]
    missing: tuple[tuple[str, str, str], ...]
    reports: tuple[NodeReport, ...]
    seconds: float


def _payload(reply: Message, weights: bool) -> tuple[str, Weights | None]:
    if weights:
        arrays = reply.content.array_records.get(ARRAYS)
        if arrays is None:
            raise ValueError("the reply carries no weights")
        return "", [np.asarray(a, dtype=np.float32) for a in arrays.to_numpy_ndarrays()]
    record = reply.content.config_records.get(RESULT)
    text = record.get("json") if record is not None else None
    if not isinstance(text, str) or not text:
        raise ValueError("the reply carries no result")
    return text, None


def admitted_nodes(drive: Drive) -> dict[int, str]:
    """The nodes that admitted the whole job: node id -> department."""
    return {a.node_id: a.department for a in drive.admission.answers if a.would_run}


def release_once(spec: JobEnvelope, drive: Drive, message_type: str) -> OneShot:
    """Asks every admitted node for its one release of `spec`; never raises for a node."""
    admitted = admitted_nodes(drive)
    drive.emit(ReleaseStart(nodes=len(admitted), job_kind=spec.kind))
    return ask_nodes(spec, drive, message_type, RELEASE_ROUND, admitted)


class _Answers:
    """Sorts replies into releases and missing answers, reporting each as it goes."""

    def __init__(self, drive: Drive, message_type: str, rnd: int, nodes: dict[int, str]) -> None:
        self.drive, self.message_type, self.rnd, self.nodes = drive, message_type, rnd, nodes
        self.releases: list[NodeRelease] = []
        self.missing: list[tuple[str, str, str]] = []
        self.reports: list[NodeReport] = []

    def no_answer(self, node_id: int, code: str, reason: str) -> None:
        department = self.nodes[node_id]
        self.missing.append((department, code, reason))
        self.drive.on_reply(
            NodeReply(
                node_id, department, self.rnd, self.message_type, AnswerStatus.NO_ANSWER,
                code, reason,
            )
        )  # fmt: skip
        self.drive.emit(Refusal(department=department, round=self.rnd, code=code, reason=reason))

    def answered(
        self, node_id: int, report: NodeReport, payload: str, arrays: Weights | None
    ) -> None:
        department = self.nodes[node_id]
        self.reports.append(report)
        ok = report.status is ReplyStatus.OK
        self.drive.on_reply(
            NodeReply(
                node_id=node_id, department=department, round=self.rnd,
                message_type=self.message_type,
                status=AnswerStatus.OK if ok else AnswerStatus.REFUSED, code=report.code,
                reason=report.reason, epsilon_job=report.epsilon_job,
                audit_seq=report.audit_seq, audit_head=report.audit_head,
                audit_sig=report.audit_sig,
            )
        )  # fmt: skip
        if ok:
            self.releases.append(NodeRelease(node_id, department, report, payload, arrays))
            return
        self.missing.append((department, report.code, report.reason))
        self.drive.emit(
            Refusal(department=department, round=self.rnd, code=report.code, reason=report.reason)
        )


def ask_nodes(
    spec: JobEnvelope,
    drive: Drive,
    message_type: str,
    rnd: int,
    nodes: dict[int, str],
    weights: Weights | None = None,
    *,
    reply_weights: bool | None = None,
) -> OneShot:
    """Sends `spec`'s message `rnd` (with `weights`, a model) to `nodes` (node id -> the
    department it was admitted as); never raises for a node.

    A node's answer counts only if it is sealed by its department's registered key for
    this very request, names the department it was admitted as, and is well formed; a
    model update must come back as weights, any other release as a RESULT record.
    `reply_weights` says which is expected (default: weights when a model was sent).
    """
    want_weights = weights is not None if reply_weights is None else reply_weights
    started = time.monotonic()
    spec_bytes = job_to_bytes(spec)
    head = drive.head()
    signature = drive.claim(spec_bytes)

    def content() -> RecordDict:
        records = RecordDict({JOB: job_config(spec_bytes, drive.job_id, rnd, head, signature)})
        if weights is not None:
            records[ARRAYS] = ArrayRecord([w.copy() for w in weights])
        return records

    request = content_digest(content())
    replies = push_and_pull(
        drive.grid, list(nodes), content, message_type, str(rnd), spec.round_timeout_s,
        answers_to(drive.emit, rnd),
    )  # fmt: skip
    answers = _Answers(drive, message_type, rnd, nodes)
    answered: set[int] = set()
    for node_id, reply in replies:
        answered.add(node_id)
        if reply.has_error():
            reason = f"node error {reply.error.code}: {reply.error.reason}"
            answers.no_answer(node_id, "node_error", reason)
            continue
        # The seal first: nothing of an unverified reply is parsed or believed.
        claimed = claimed_department(reply.content)
        problem = drive.check(reply.content, claimed, drive.job_id, rnd, message_type, request)
        if problem is None and claimed != nodes[node_id]:
            problem = f"node admitted as {nodes[node_id]} now claims {claimed[:60]!r}"
        if problem is not None:
            answers.no_answer(node_id, "unverified", problem)
            continue
        try:
            report = NodeReport.from_record(dict(reply.content[REPORT]))
            ok = report.status is ReplyStatus.OK
            payload, arrays = _payload(reply, want_weights) if ok else ("", None)
        except Exception as err:  # a reply is untrusted input: no parse error may end the job
            reason = f"malformed reply ({type(err).__name__}: {str(err)[:200]}); another version?"
            answers.no_answer(node_id, "bad_reply", reason)
            continue
        answers.answered(node_id, report, payload, arrays)
    for node_id in nodes:
        if node_id not in answered:
            answers.no_answer(node_id, "no_reply", "no reply within the round timeout")
    return OneShot(
        tuple(answers.releases),
        tuple(answers.missing),
        tuple(answers.reports),
        time.monotonic() - started,
    )
