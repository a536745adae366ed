"""Runs one federated DP risk-model job over a Flower Grid: admission, rounds, evaluations."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, Message, RecordDict
from flwr.serverapp import Grid

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
)
from server.kinds.risk.aggregation import ServerOptimizer, mean_delta
from server.quote_round import QuoteOutcome
from server.reply_check import ReplyCheck, claimed_department
from vocab.jobspec import MAX_WEIGHT, RiskJobSpec
from vocab.metrics import ScoreHistogram, evaluation_metrics
from vocab.progress import (
    Emit,
    Evaluated,
    EvaluateStart,
    NodePrivacy,
    Refusal,
    RoundEnd,
    RoundStart,
)
from vocab.reply_seal import content_digest
from vocab.serde import job_to_bytes
from vocab.wire import (
    ARRAYS,
    EVALUATE,
    HOLDOUT,
    JOB,
    REPORT,
    TRAIN,
    NodeReport,
    ReleaseRecord,
    ReplyStatus,
    histogram_from_record,
)

__all__ = ["JobOutcome", "NodeTally", "RoundRecord", "run_risk_job"]

log = logging.getLogger(__name__)

Weights = list[npt.NDArray[np.float32]]
OnReply = Callable[[NodeReply], None]

ADMISSION_ROUND = 0


@dataclass
class NodeTally:
    """What the coordinator knows about one department over the job.

    `last_report` carries the latest privacy figures; `training` the last training round's
    (noise multiplier, sampling rate, steps: an evaluation's report has none); `releases`
    every charged release the node reported, in order.
    """

    node_id: int
    department: str = "?"
    last_report: NodeReport | None = None
    training: NodeReport | None = None
    rounds: list[int] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    releases: list[ReleaseRecord] = field(default_factory=list)
    active: bool = True


@dataclass(frozen=True)
class RoundRecord:
    """One round: who trained, who refused, and the noisy metrics of the model after it
    (when the job pays for an evaluation after this round)."""

    round: int
    participants: tuple[str, ...]
    refused: tuple[str, ...]
    metrics: dict[str, float]
    seconds: float


@dataclass
class JobOutcome:
    """The whole job as the result bundle reports it."""

    spec: RiskJobSpec
    job_id: str
    status: str = "running"
    failure: str = ""
    rounds: list[RoundRecord] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)
    nodes: dict[int, NodeTally] = field(default_factory=dict)
    weights: Weights = field(default_factory=list)
    seconds: float = 0.0


def _send(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    rnd: int,
    kind: str,
    weights: Weights,
    node_ids: list[int],
    coordinator_head: HeadSource,
    claim: Claimer,
    emit: Emit,
) -> tuple[list[tuple[int, Message]], str]:
    """Send the weights and the job, with the coordinator's signed audit chain head, to each
    node; the replies that came within the round timeout, and the request's digest."""
    spec_bytes = job_to_bytes(spec)
    head = coordinator_head()
    signature = claim(spec_bytes)

    def content() -> RecordDict:
        return RecordDict(
            {
                ARRAYS: ArrayRecord([w.copy() for w in weights]),
                JOB: job_config(spec_bytes, job_id, rnd, head, signature),
            }
        )

    request = content_digest(content())  # what every node is asked, as it receives it
    replies = push_and_pull(
        grid, node_ids, content, kind, str(rnd), spec.round_timeout_s, answers_to(emit, rnd)
    )
    return replies, request


def _drop(tally: NodeTally, rnd: int, code: str, reason: str) -> None:
    tally.refusals.append({"round": rnd, "code": code, "reason": reason})
    tally.active = False


def _no_answer(
    tally: NodeTally, rnd: int, kind: str, code: str, reason: str, on_reply: OnReply
) -> None:
    _drop(tally, rnd, code, reason)
    status = AnswerStatus.NO_ANSWER
    on_reply(NodeReply(tally.node_id, tally.department, rnd, kind, status, code, reason))


def _answered(tally: NodeTally, rnd: int, kind: str, report: NodeReport, on_reply: OnReply) -> None:
    on_reply(
        NodeReply(
            node_id=tally.node_id,
            department=report.department,
            round=rnd,
            message_type=kind,
            status=AnswerStatus.OK if report.status is ReplyStatus.OK else AnswerStatus.REFUSED,
            code=report.code,
            reason=report.reason,
            epsilon_job=report.epsilon_job,
            audit_seq=report.audit_seq,
            audit_head=report.audit_head,
            audit_sig=report.audit_sig,
        )
    )


def _check_update(reply: Message, weights: Weights) -> None:
    """A training reply's weights: as many arrays as the model, each of its shape, finite.

    Raises:
        ValueError: They are not; the reply is dropped, not averaged in.
    """
    arrays = reply.content.array_records[ARRAYS].to_numpy_ndarrays()
    if [a.shape for a in arrays] != [w.shape for w in weights]:
        raise ValueError("the weights do not have the model's shapes")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("the weights are not all finite")


def _collect(
    replies: list[tuple[int, Message]],
    outcome: JobOutcome,
    rnd: int,
    asked: list[int],
    *,
    kind: str,
    on_reply: OnReply,
    check: ReplyCheck,
    request: str,
) -> tuple[list[tuple[NodeTally, Message]], list[NodeTally], ScoreHistogram | None]:
    """Sort replies into accepted and refused; drop refusing or silent nodes from the job.

    Every answer, and every silence, is passed to `on_reply`; every release a node reports
    (a failed round's too) is kept in its tally.
    """
    need_weights = kind == TRAIN
    accepted: list[tuple[NodeTally, Message]] = []
    refused: list[NodeTally] = []
    pooled: ScoreHistogram | None = None
    answered: set[int] = set()
    for node_id, reply in replies:
        tally = outcome.nodes[node_id]
        answered.add(node_id)
        if reply.has_error():
            reason = f"node error {reply.error.code}: {reply.error.reason}"
            _no_answer(tally, rnd, kind, "node_error", reason, on_reply)
            refused.append(tally)
            continue
        # The seal first: nothing of an unverified reply is parsed or believed.
        claimed = claimed_department(reply.content)
        problem = check(reply.content, claimed, outcome.job_id, rnd, kind, request)
        if problem is None and claimed != tally.department:
            problem = f"node admitted as {tally.department} now claims {claimed[:60]!r}"
        if problem is not None:
            _no_answer(tally, rnd, kind, "unverified", problem, on_reply)
            refused.append(tally)
            continue
        try:
            report = NodeReport.from_record(dict(reply.content[REPORT]))
            holdout = None
            if report.status is ReplyStatus.OK:
                if need_weights:
                    _check_update(reply, outcome.weights)
                else:
                    holdout = histogram_from_record(dict(reply.content[HOLDOUT]))
        except Exception as err:  # a reply is untrusted input: no parse error may end the job
            reason = f"malformed reply ({type(err).__name__}: {str(err)[:200]}); another version?"
            _no_answer(tally, rnd, kind, "bad_reply", reason, on_reply)
            refused.append(tally)
            continue
        tally.last_report = report
        tally.releases.extend(report.releases)
        _answered(tally, rnd, kind, report, on_reply)
        if report.status is ReplyStatus.REFUSED:
            _drop(tally, rnd, report.code, report.reason)
            refused.append(tally)
            continue
        if holdout is not None:
            if len(holdout.pos) != len(outcome.spec.thresholds) + 1:
                _drop(tally, rnd, "bad_reply", "evaluation histogram has the wrong bins")
                refused.append(tally)
                continue
            pooled = holdout if pooled is None else pooled.merge(holdout)
        accepted.append((tally, reply))
    for node_id in asked:
        if node_id not in answered:
            tally = outcome.nodes[node_id]
            reason = "no reply within the round timeout"
            _no_answer(tally, rnd, kind, "no_reply", reason, on_reply)
            refused.append(tally)
    return accepted, refused, pooled


def _ignore(reply: NodeReply) -> None:
    del reply


def _admitted(outcome: JobOutcome, admission: QuoteOutcome, emit: Emit) -> list[int]:
    """The nodes that admitted the whole job; the others are recorded as refusals."""
    outcome.nodes = {a.node_id: NodeTally(a.node_id, a.department) for a in admission.answers}
    for answer in admission.answers:
        if not answer.would_run:
            tally = outcome.nodes[answer.node_id]
            _drop(tally, ADMISSION_ROUND, answer.code or answer.status.value, answer.reason)
            emit(_refusal(tally))
    return [a.node_id for a in admission.answers if a.would_run]


def run_risk_job(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    initial: Weights,
    admission: QuoteOutcome,
    emit: Emit,
    on_reply: OnReply = _ignore,
    coordinator_head: HeadSource = no_head,
    *,
    check: ReplyCheck,
    claim: Claimer = no_claim,
) -> JobOutcome:
    """Train `spec` across the nodes that admitted it; never raises for node-side failures.

    Round 1 starts only when `admission` (every node's dry run of the whole job: limits,
    policy, approvals, schema, every budget) has a quorum, so no node is charged for a job
    that could not start. A round continues while at least `spec.min_nodes` nodes accept;
    refusing or silent nodes are recorded with their reason and not asked again. The nodes
    evaluate the model after the rounds the spec pays for (charged, noisy). `on_reply` sees
    every node's answer (or silence) to every message, in order; every message carries
    `coordinator_head()` as it is sent.
    """
    started = time.monotonic()
    outcome = JobOutcome(spec=spec, job_id=job_id, weights=initial)
    admitted = _admitted(outcome, admission, emit)
    if not admission.ok:
        outcome.status = "failed"
        outcome.failure = f"not started, nothing charged: {admission.reason}"
        return outcome
    for tally in outcome.nodes.values():
        tally.active = tally.node_id in admitted
    optimizer = ServerOptimizer(spec.aggregator, spec.server_learning_rate)
    weights = initial
    evaluated_after = spec.evaluated_after()
    for rnd in range(1, spec.rounds + 1):
        t0 = time.monotonic()
        asked = [t.node_id for t in outcome.nodes.values() if t.active]
        emit(RoundStart(round=rnd, rounds=spec.rounds, nodes=len(asked)))
        replies, request = _send(
            grid, spec, job_id, rnd, TRAIN, weights, asked, coordinator_head, claim, emit
        )
        accepted, refused, _ = _collect(
            replies, outcome, rnd, asked, kind=TRAIN, on_reply=on_reply, check=check,
            request=request,
        )  # fmt: skip
        for tally in refused:
            emit(_refusal(tally))
        participants = tuple(sorted(t.department for t, _ in accepted))
        refused_names = tuple(sorted(t.department for t in refused))
        if len(accepted) < spec.min_nodes:
            record = RoundRecord(rnd, participants, refused_names, {}, time.monotonic() - t0)
            outcome.rounds.append(record)
            outcome.status = "failed"
            outcome.failure = (
                f"round {rnd}: only {len(accepted)} node(s) accepted; the job "
                f"needs {spec.min_nodes} (see the refusals)"
            )
            emit(_round_event(record, outcome))
            break
        for tally, _ in accepted:
            tally.rounds.append(rnd)
            tally.training = tally.last_report
        updates = [
            [
                np.asarray(a, np.float32)
                for a in reply.content.array_records[ARRAYS].to_numpy_ndarrays()
            ]
            for _, reply in accepted
        ]
        stepped = optimizer.step(weights, mean_delta(weights, updates))
        # Nodes refuse weights beyond MAX_WEIGHT: keep the model within it (FedAdam can jump).
        weights = [np.clip(w, -MAX_WEIGHT, MAX_WEIGHT) for w in stepped]
        metrics: dict[str, float] = {}
        if rnd in evaluated_after:
            metrics = _evaluation(
                grid, spec, job_id, rnd, weights, outcome, emit, on_reply, coordinator_head,
                check, claim,
            )  # fmt: skip
        record = RoundRecord(rnd, participants, refused_names, metrics, time.monotonic() - t0)
        outcome.rounds.append(record)
        emit(_round_event(record, outcome))
    outcome.weights = weights
    if outcome.status != "failed":
        outcome.status = "succeeded"
        if evaluated_after:
            outcome.final_metrics = outcome.rounds[-1].metrics
    outcome.seconds = time.monotonic() - started
    return outcome


def _evaluation(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    after: int,
    weights: Weights,
    outcome: JobOutcome,
    emit: Emit,
    on_reply: OnReply,
    coordinator_head: HeadSource,
    check: ReplyCheck,
    claim: Claimer,
) -> dict[str, float]:
    """The nodes' noisy held-out histograms of the model after round `after`, pooled."""
    asked = [t.node_id for t in outcome.nodes.values() if t.active]
    emit(EvaluateStart(after_round=after, nodes=len(asked)))
    rnd = spec.evaluation_round(after)
    replies, request = _send(
        grid, spec, job_id, rnd, EVALUATE, weights, asked, coordinator_head, claim, emit
    )
    accepted, refused, pooled = _collect(
        replies, outcome, rnd, asked, kind=EVALUATE, on_reply=on_reply, check=check,
        request=request,
    )  # fmt: skip
    for tally in refused:
        emit(_refusal(tally))
    metrics = {} if pooled is None else evaluation_metrics(pooled, spec.thresholds)
    if pooled is not None:
        metrics["noise_std_per_bin"] = pooled.noise_std
    emit(Evaluated(after_round=after, nodes=len(accepted), metrics=dict(metrics)))
    return metrics


def _refusal(tally: NodeTally) -> Refusal:
    """The department's latest refusal as a progress event."""
    last = tally.refusals[-1]
    return Refusal(
        department=tally.department, round=last["round"], code=last["code"], reason=last["reason"]
    )


def _round_event(record: RoundRecord, outcome: JobOutcome) -> RoundEnd:
    privacy = {
        t.department: NodePrivacy(
            epsilon_job=t.last_report.epsilon_job,
            epsilon_spent=t.last_report.epsilon_spent,
            epsilon_budget=t.last_report.epsilon_budget,
        )
        for t in outcome.nodes.values()
        if t.last_report is not None
    }
    return RoundEnd(
        round=record.round,
        rounds=outcome.spec.rounds,
        participants=record.participants,
        refused=record.refused,
        metrics=record.metrics,
        seconds=round(record.seconds, 2),
        privacy=privacy,
    )
