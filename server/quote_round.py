"""A dry run: asks every connected node what the whole job would cost it; charges nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

from server.central_budget.central_budget import CentralCheck
from server.exchange import (
    AnswerStatus,
    Claimer,
    HeadSource,
    NodeReply,
    answers_to,
    job_config,
    no_claim,
    no_head,
    push_and_pull,
    wait_for_nodes,
)
from server.home.coordinator_audit import central_view
from server.reply_check import ReplyCheck, claimed_department
from vocab.errors import RefusalCode
from vocab.progress import Emit, NodeQuoteView, QuoteEvent, QuotePreview, ScopeView
from vocab.reply_seal import content_digest
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope
from vocab.wire import JOB, QUOTE, REPORT, NodeQuote, ReplyStatus

__all__ = ["OnReply", "QuoteAnswer", "QuoteOutcome", "run_quote"]

QuoteEventT = TypeVar("QuoteEventT", bound=QuoteEvent)
OnReply = Callable[[NodeReply], None]

QUOTE_ROUND = 0


@dataclass(frozen=True)
class QuoteAnswer:
    """One node's answer to the quote; `quote` is None when it gave no usable one."""

    node_id: int
    department: str
    status: AnswerStatus
    code: str = ""
    reason: str = ""
    quote: NodeQuote | None = None

    @property
    def would_run(self) -> bool:
        return self.status is AnswerStatus.OK

    def view(self) -> NodeQuoteView:
        """The answer as the quote's progress event shows it."""
        quote = self.quote
        return NodeQuoteView(
            department=self.department,
            node_id=str(self.node_id),
            status=self.status.value,
            would_run=self.would_run,
            code=self.code,
            reason=self.reason,
            requested=quote.requested if quote else None,
            scopes=tuple(
                ScopeView(
                    scope=s.scope,
                    cap=s.epsilon,
                    delta=s.delta,
                    spent=s.spent,
                    remaining=s.remaining,
                    after=s.spent_after,
                    remaining_after=s.remaining_after,
                    fits=s.fits,
                )
                for s in (quote.scopes if quote else ())
            ),
            audit_seq=quote.audit_seq if quote else 0,
            audit_head=quote.audit_head if quote else "",
        )


@dataclass(frozen=True)
class QuoteOutcome:
    """Every asked node's answer and the central check, and whether the job would run."""

    spec: JobEnvelope
    job_id: str
    answers: tuple[QuoteAnswer, ...]
    central: CentralCheck
    elsewhere: tuple[str, ...] = ()
    """Departments whose nodes hold another dataset than the job's: they take no part."""

    @property
    def would_run(self) -> int:
        return sum(a.would_run for a in self.answers)

    @property
    def ok(self) -> bool:
        return self.central.fits and self.would_run >= self.spec.min_nodes

    @property
    def reason(self) -> str:
        """Why the job would not run, in one line ("" when it would)."""
        refusal = self.central.refusal()
        if refusal is not None:
            return f"refused by the coordinator: {refusal.message}"
        if self.would_run >= self.spec.min_nodes:
            return ""
        others = ", ".join(
            f"{a.department} {a.code or a.status.value}" for a in self.answers if not a.would_run
        )
        return (
            f"only {self.would_run} of {len(self.answers)} node(s) would run the job; it "
            f"needs {self.spec.min_nodes}" + (f" ({others})" if others else "")
        )

    def event(
        self, event_type: type[QuoteEventT], preview: QuotePreview | None = None
    ) -> QuoteEventT:
        """The quote as an `admission` or `quote_result` progress event, with the kind's
        `preview` figures."""
        return event_type(
            job=self.spec.name,
            job_id=self.job_id,
            epsilon=self.spec.epsilon,
            delta=self.spec.delta,
            analyst=self.spec.analyst,
            project=self.spec.project,
            min_nodes=self.spec.min_nodes,
            job_kind=self.spec.kind,
            would_run=self.would_run,
            ok=self.ok,
            reason=self.reason,
            nodes=tuple(a.view() for a in self.answers),
            elsewhere=self.elsewhere,
            central=central_view(self.central),
            preview=preview or QuotePreview(),
        )


def _unknown(node_id: int) -> str:
    # A node that gave no usable answer never told us its department.
    return f"node {node_id}"


def _read(
    node_id: int, reply: Message, job_id: str, request: str, check: ReplyCheck
) -> QuoteAnswer:
    unknown = _unknown(node_id)
    if reply.has_error():
        reason = f"node error {reply.error.code}: {reply.error.reason}"
        return QuoteAnswer(node_id, unknown, AnswerStatus.NO_ANSWER, "node_error", reason)
    claimed = claimed_department(reply.content)
    problem = check(reply.content, claimed, job_id, QUOTE_ROUND, QUOTE, request)
    if problem is not None:
        return QuoteAnswer(node_id, unknown, AnswerStatus.NO_ANSWER, "unverified", problem)
    try:
        quote = NodeQuote.from_record(dict(reply.content[REPORT]))
    except Exception as err:  # a reply is untrusted input: no parse error may end the job
        reason = f"malformed quote ({type(err).__name__}: {str(err)[:200]}); another version?"
        return QuoteAnswer(node_id, unknown, AnswerStatus.NO_ANSWER, "bad_reply", reason)
    status = AnswerStatus.OK if quote.status is ReplyStatus.OK else AnswerStatus.REFUSED
    return QuoteAnswer(node_id, quote.department, status, quote.code, quote.reason, quote)


def _reply_of(answer: QuoteAnswer) -> NodeReply:
    quote = answer.quote
    return NodeReply(
        node_id=answer.node_id,
        department=answer.department,
        round=QUOTE_ROUND,
        message_type=QUOTE,
        status=answer.status,
        code=answer.code,
        reason=answer.reason,
        audit_seq=quote.audit_seq if quote else 0,
        audit_head=quote.audit_head if quote else "",
        audit_sig=quote.audit_sig if quote else "",
    )


def run_quote(
    grid: Grid,
    spec: JobEnvelope,
    job_id: str,
    central: CentralCheck,
    emit: Emit,
    on_reply: OnReply,
    coordinator_head: HeadSource = no_head,
    *,
    check: ReplyCheck,
    claim: Claimer = no_claim,
    expected_nodes: int = 0,
) -> QuoteOutcome:
    """Ask every node that connects within `spec.node_wait_s` for its quote.

    Sends the same JOB record as a training message (round 0) with message type QUOTE
    and waits up to `spec.round_timeout_s`; silent nodes are listed as such. Never raises
    for node-side failures. The message carries `coordinator_head()` as it is sent. A
    reply counts only if `check` believes the department it names; each department counts
    once. `expected_nodes` (the registered nodes) ends the wait for late joiners early.
    """
    node_ids = wait_for_nodes(grid, spec.min_nodes, spec.node_wait_s, emit, expected_nodes)
    spec_bytes = job_to_bytes(spec)
    head = coordinator_head()
    signature = claim(spec_bytes)

    def content() -> RecordDict:
        return RecordDict({JOB: job_config(spec_bytes, job_id, QUOTE_ROUND, head, signature)})

    request = content_digest(content())  # what every node is asked, as it receives it
    on_answers = answers_to(emit, QUOTE_ROUND)
    replies = dict(
        push_and_pull(
            grid, node_ids, content, QUOTE, str(QUOTE_ROUND), spec.round_timeout_s, on_answers
        )
    )
    answers = []
    elsewhere: list[str] = []
    spoken_for: set[str] = set()
    for node_id in node_ids:
        reply = replies.get(node_id)
        if reply is None:
            silent = "no reply within the round timeout"
            unknown = _unknown(node_id)
            answer = QuoteAnswer(node_id, unknown, AnswerStatus.NO_ANSWER, "no_reply", silent)
        else:
            answer = _read(node_id, reply, job_id, request, check)
        if answer.quote is not None and answer.department in spoken_for:
            # One department, one voice: a second node with its key adds no quorum.
            twice = f"{answer.department} already answered through another node"
            answer = QuoteAnswer(
                node_id, answer.department, AnswerStatus.NO_ANSWER, "duplicate", twice
            )
        elif answer.quote is not None:
            spoken_for.add(answer.department)
        on_reply(_reply_of(answer))
        if answer.quote is not None and answer.code == RefusalCode.OTHER_DATASET.value:
            elsewhere.append(answer.department)  # verified: it holds another dataset
            continue
        answers.append(answer)
    answers.sort(key=lambda a: (a.department, a.node_id))
    return QuoteOutcome(spec, job_id, tuple(answers), central, tuple(sorted(elsewhere)))
