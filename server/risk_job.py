"""Runs one federated DP risk-model job over a Flower Grid: rounds, quorum, final evaluation."""

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

from server.aggregation import ServerOptimizer, mean_delta
from server.exchange import AnswerStatus, NodeReply, job_config, push_and_pull, wait_for_nodes
from vocab.jobspec import RiskJobSpec
from vocab.metrics import HoldoutSummary
from vocab.serde import job_to_bytes
from vocab.wire import (
    ARRAYS,
    EVALUATE,
    HOLDOUT,
    JOB,
    REPORT,
    TRAIN,
    NodeReport,
    ReplyStatus,
    summary_from_record,
)

__all__ = ["JobOutcome", "NodeTally", "RoundRecord", "run_risk_job"]

log = logging.getLogger(__name__)

Weights = list[npt.NDArray[np.float32]]
Emit = Callable[..., None]
OnReply = Callable[[NodeReply], None]


@dataclass
class NodeTally:
    """What the coordinator knows about one department over the job."""

    node_id: int
    department: str = "?"
    last_report: NodeReport | None = None
    rounds: list[int] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    active: bool = True


@dataclass(frozen=True)
class RoundRecord:
    """One round: who trained, who refused, and the incoming model's pooled held-out metrics."""

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
    initial_metrics: dict[str, float] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    nodes: dict[int, NodeTally] = field(default_factory=dict)
    weights: Weights = field(default_factory=list)
    seconds: float = 0.0


def _metrics(summary: HoldoutSummary | None) -> dict[str, float]:
    if summary is None or summary.n == 0:
        return {}
    return {
        "auc": summary.auc,
        "accuracy": summary.accuracy,
        "loss": summary.loss,
        "n_holdout": float(summary.n),
    }


def _send(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    rnd: int,
    kind: str,
    weights: Weights,
    node_ids: list[int],
) -> list[tuple[int, Message]]:
    """Send the weights and the job to each node; replies that came within the round timeout."""
    spec_bytes = job_to_bytes(spec)

    def content() -> RecordDict:
        return RecordDict(
            {
                ARRAYS: ArrayRecord([w.copy() for w in weights]),
                JOB: job_config(spec_bytes, job_id, rnd),
            }
        )

    return push_and_pull(grid, node_ids, content, kind, str(rnd), spec.round_timeout_s)


def _no_answer(
    tally: NodeTally, rnd: int, kind: str, code: str, reason: str, on_reply: OnReply
) -> None:
    tally.refusals.append({"round": rnd, "code": code, "reason": reason})
    tally.active = False
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
        )
    )


def _collect(
    replies: list[tuple[int, Message]],
    outcome: JobOutcome,
    rnd: int,
    asked: list[int],
    *,
    kind: str,
    on_reply: OnReply,
) -> tuple[list[tuple[NodeTally, Message]], list[NodeTally], HoldoutSummary | None]:
    """Sort replies into accepted and refused; drop refusing or silent nodes from the job.

    Every answer, and every silence, is passed to `on_reply`.
    """
    need_weights = kind == TRAIN
    accepted: list[tuple[NodeTally, Message]] = []
    refused: list[NodeTally] = []
    pooled: HoldoutSummary | None = None
    answered: set[int] = set()
    for node_id, reply in replies:
        tally = outcome.nodes[node_id]
        answered.add(node_id)
        if reply.has_error():
            reason = f"node error {reply.error.code}: {reply.error.reason}"
            _no_answer(tally, rnd, kind, "node_error", reason, on_reply)
            refused.append(tally)
            continue
        try:
            report = NodeReport.from_record(dict(reply.content[REPORT]))
            accepted_without_weights = (
                report.status is ReplyStatus.OK
                and need_weights
                and ARRAYS not in reply.content.array_records
            )
            if accepted_without_weights:
                raise KeyError(ARRAYS)
        except (KeyError, TypeError, ValueError) as err:
            reason = f"malformed reply ({type(err).__name__}: {err}); node runs another version?"
            _no_answer(tally, rnd, kind, "bad_reply", reason, on_reply)
            refused.append(tally)
            continue
        tally.department, tally.last_report = report.department, report
        _answered(tally, rnd, kind, report, on_reply)
        if report.status is ReplyStatus.REFUSED:
            tally.refusals.append({"round": rnd, "code": report.code, "reason": report.reason})
            tally.active = False
            refused.append(tally)
            continue
        if HOLDOUT in reply.content.metric_records:
            summary = summary_from_record(dict(reply.content[HOLDOUT]))
            pooled = summary if pooled is None else pooled.merge(summary)
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


def run_risk_job(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    initial: Weights,
    emit: Emit,
    on_reply: OnReply = _ignore,
) -> JobOutcome:
    """Train `spec` across the connected nodes; never raises for node-side failures.

    A round continues while at least `spec.min_nodes` nodes accept; refusing or silent
    nodes are recorded with their reason and not asked again in this job. `on_reply`
    sees every node's answer (or silence) to every message, in order.
    """
    started = time.monotonic()
    outcome = JobOutcome(spec=spec, job_id=job_id, weights=initial)
    node_ids = wait_for_nodes(grid, spec.min_nodes, spec.node_wait_s, emit)
    outcome.nodes = {nid: NodeTally(nid) for nid in node_ids}
    if len(node_ids) < spec.min_nodes:
        outcome.status = "failed"
        outcome.failure = (
            f"only {len(node_ids)} node(s) connected within {spec.node_wait_s:.0f}s;"
            f" the job needs {spec.min_nodes}"
        )
        return outcome
    optimizer = ServerOptimizer(spec.aggregator, spec.server_learning_rate)
    weights = initial
    for rnd in range(1, spec.rounds + 1):
        t0 = time.monotonic()
        asked = [t.node_id for t in outcome.nodes.values() if t.active]
        emit("round_start", round=rnd, rounds=spec.rounds, nodes=len(asked))
        replies = _send(grid, spec, job_id, rnd, TRAIN, weights, asked)
        accepted, refused, pooled = _collect(
            replies, outcome, rnd, asked, kind=TRAIN, on_reply=on_reply
        )
        for tally in refused:
            emit("refusal", department=tally.department, **tally.refusals[-1])
        metrics = _metrics(pooled)
        if rnd == 1:
            outcome.initial_metrics = metrics
        record = RoundRecord(
            round=rnd,
            participants=tuple(sorted(t.department for t, _ in accepted)),
            refused=tuple(sorted(t.department for t in refused)),
            metrics=metrics,
            seconds=time.monotonic() - t0,
        )
        outcome.rounds.append(record)
        if len(accepted) < spec.min_nodes:
            outcome.status = "failed"
            outcome.failure = (
                f"round {rnd}: only {len(accepted)} node(s) accepted; the job "
                f"needs {spec.min_nodes} (see the refusals)"
            )
            emit("round_end", **_round_event(record, outcome))
            break
        for tally, _ in accepted:
            tally.rounds.append(rnd)
        updates = [
            [
                np.asarray(a, np.float32)
                for a in reply.content.array_records[ARRAYS].to_numpy_ndarrays()
            ]
            for _, reply in accepted
        ]
        weights = optimizer.step(weights, mean_delta(weights, updates))
        emit("round_end", **_round_event(record, outcome))
    outcome.weights = weights
    if outcome.status != "failed":
        _final_evaluation(grid, spec, job_id, weights, outcome, emit, on_reply)
    outcome.seconds = time.monotonic() - started
    return outcome


def _final_evaluation(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    weights: Weights,
    outcome: JobOutcome,
    emit: Emit,
    on_reply: OnReply,
) -> None:
    asked = [t.node_id for t in outcome.nodes.values() if t.active]
    emit("evaluate_start", nodes=len(asked))
    rnd = spec.rounds + 1
    replies = _send(grid, spec, job_id, rnd, EVALUATE, weights, asked)
    accepted, refused, pooled = _collect(
        replies, outcome, rnd, asked, kind=EVALUATE, on_reply=on_reply
    )
    for tally in refused:
        emit("refusal", department=tally.department, **tally.refusals[-1])
    outcome.final_metrics = _metrics(pooled)
    outcome.status = "succeeded" if pooled is not None else "failed"
    if pooled is None:
        outcome.failure = "no node evaluated the final model"
    emit("evaluated", nodes=len(accepted), **outcome.final_metrics)


def _round_event(record: RoundRecord, outcome: JobOutcome) -> dict[str, Any]:
    privacy = {
        t.department: {
            "epsilon_job": t.last_report.epsilon_job,
            "epsilon_spent": t.last_report.epsilon_spent,
            "epsilon_budget": t.last_report.epsilon_budget,
        }
        for t in outcome.nodes.values()
        if t.last_report is not None
    }
    return {
        "round": record.round,
        "rounds": outcome.spec.rounds,
        "participants": list(record.participants),
        "refused": list(record.refused),
        "metrics": record.metrics,
        "seconds": round(record.seconds, 2),
        "privacy": privacy,
    }
