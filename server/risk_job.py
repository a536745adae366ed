"""Runs one federated DP risk-model job over a Flower Grid: rounds, quorum, final evaluation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from server.aggregation import ServerOptimizer, mean_delta
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

# A SuperNode polls every 3 s; waiting this long after quorum lets nodes that are
# still connecting join the first round.
_JOIN_GRACE_S = 4.0
_PULL_INTERVAL_S = 0.5


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


def _wait_for_nodes(grid: Grid, spec: RiskJobSpec, emit: Emit) -> list[int]:
    deadline = time.monotonic() + spec.node_wait_s
    ids = sorted(grid.get_node_ids())
    while len(ids) < spec.min_nodes and time.monotonic() < deadline:
        time.sleep(0.5)
        ids = sorted(grid.get_node_ids())
    if len(ids) >= spec.min_nodes:
        time.sleep(_JOIN_GRACE_S)
        ids = sorted(grid.get_node_ids())
    emit("nodes", connected=len(ids), min_nodes=spec.min_nodes)
    return ids


def _send(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    rnd: int,
    kind: str,
    weights: Weights,
    node_ids: list[int],
) -> list[tuple[int, Message]]:
    """Push one message per node and pull replies until all answered or the round times out.

    Replies are matched to nodes by the message they answer, not by their sender: the
    SuperLink itself answers for a node it cannot reach. Polling every
    `_PULL_INTERVAL_S` (Flower's own loop sleeps 3 s) keeps the round overhead low.
    """
    spec_bytes = job_to_bytes(spec)
    messages = [
        Message(
            RecordDict(
                {
                    ARRAYS: ArrayRecord([w.copy() for w in weights]),
                    JOB: ConfigRecord({"spec": spec_bytes, "job_id": job_id, "round": rnd}),
                }
            ),
            dst_node_id=node_id,
            message_type=kind,
            group_id=str(rnd),
        )
        for node_id in node_ids
    ]
    message_ids = list(grid.push_messages(messages))
    pending = {mid: nid for mid, nid in zip(message_ids, node_ids, strict=False) if mid}
    replies: list[tuple[int, Message]] = []
    deadline = time.monotonic() + spec.round_timeout_s
    while pending and time.monotonic() < deadline:
        for reply in grid.pull_messages(list(pending)):
            node_id = pending.pop(reply.metadata.reply_to_message_id, None)
            if node_id is not None:
                replies.append((node_id, reply))
        if pending:
            time.sleep(_PULL_INTERVAL_S)
    return replies


def _collect(
    replies: list[tuple[int, Message]],
    outcome: JobOutcome,
    rnd: int,
    asked: list[int],
    *,
    need_weights: bool,
) -> tuple[list[tuple[NodeTally, Message]], list[NodeTally], HoldoutSummary | None]:
    """Sort replies into accepted and refused; drop refusing or silent nodes from the job."""
    accepted: list[tuple[NodeTally, Message]] = []
    refused: list[NodeTally] = []
    pooled: HoldoutSummary | None = None
    answered: set[int] = set()
    for node_id, reply in replies:
        tally = outcome.nodes[node_id]
        answered.add(node_id)
        if reply.has_error():
            reason = f"node error {reply.error.code}: {reply.error.reason}"
            tally.refusals.append({"round": rnd, "code": "node_error", "reason": reason})
            tally.active = False
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
            tally.refusals.append({"round": rnd, "code": "bad_reply", "reason": reason})
            tally.active = False
            refused.append(tally)
            continue
        tally.department, tally.last_report = report.department, report
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
            tally.refusals.append(
                {"round": rnd, "code": "no_reply", "reason": "no reply within the round timeout"}
            )
            tally.active = False
            refused.append(tally)
    return accepted, refused, pooled


def run_risk_job(
    grid: Grid, spec: RiskJobSpec, job_id: str, initial: Weights, emit: Emit
) -> JobOutcome:
    """Train `spec` across the connected nodes; never raises for node-side failures.

    A round continues while at least `spec.min_nodes` nodes accept; refusing or silent
    nodes are recorded with their reason and not asked again in this job.
    """
    started = time.monotonic()
    outcome = JobOutcome(spec=spec, job_id=job_id, weights=initial)
    node_ids = _wait_for_nodes(grid, spec, emit)
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
        accepted, refused, pooled = _collect(replies, outcome, rnd, asked, need_weights=True)
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
        _final_evaluation(grid, spec, job_id, weights, outcome, emit)
    outcome.seconds = time.monotonic() - started
    return outcome


def _final_evaluation(
    grid: Grid,
    spec: RiskJobSpec,
    job_id: str,
    weights: Weights,
    outcome: JobOutcome,
    emit: Emit,
) -> None:
    asked = [t.node_id for t in outcome.nodes.values() if t.active]
    emit("evaluate_start", nodes=len(asked))
    rnd = spec.rounds + 1
    replies = _send(grid, spec, job_id, rnd, EVALUATE, weights, asked)
    accepted, refused, pooled = _collect(replies, outcome, rnd, asked, need_weights=False)
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
