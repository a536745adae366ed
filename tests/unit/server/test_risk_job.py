"""The round loop: quorum, refusals and replies the SuperLink sends on a node's behalf.

A small in-process Grid stands in for the SuperLink here: the cases below (a node the
SuperLink answers for, a malformed reply) cannot be produced on demand by real processes.
The real path is covered by tests/integration.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from server.central_budget.central_budget import CentralCheck
from server.kinds.risk.rounds import run_risk_job
from server.quote_round import QuoteOutcome, run_quote
from testkit.fake_grid import Behaviour, InProcessGrid
from vocab.jobspec import EvaluationMode, RiskJobSpec, parse_job_spec
from vocab.metrics import score_histogram
from vocab.models import build_model, get_weights
from vocab.progress import Evaluated, EvaluateStart, ProgressEvent
from vocab.wire import (
    ARRAYS,
    EVALUATE,
    HOLDOUT,
    QUOTE,
    REPORT,
    NodeQuote,
    NodeReport,
    ReplyStatus,
    histogram_to_record,
)


def _healthy(name: str) -> Behaviour:
    def answer(msg: Message) -> Message:
        kind = msg.metadata.message_type
        if kind == QUOTE:
            quote = NodeQuote(name, ReplyStatus.OK, requested=1.0)
            return Message(RecordDict({REPORT: ConfigRecord(quote.to_record())}), reply_to=msg)
        report = NodeReport(
            name, ReplyStatus.OK, epsilon_job=0.5, epsilon_spent=0.5, epsilon_budget=3.0, delta=1e-5
        )
        content = RecordDict({REPORT: ConfigRecord(report.to_record())})
        if kind == EVALUATE:
            spec = _spec(2)
            hist = score_histogram([-1.0, 1.0, 2.0], [0.0, 1.0, 1.0], spec.thresholds)
            content[HOLDOUT] = MetricRecord(histogram_to_record(hist))
        else:
            weights = [w + 0.1 for w in msg.content.array_records[ARRAYS].to_numpy_ndarrays()]
            content[ARRAYS] = ArrayRecord(weights)
        return Message(content, reply_to=msg)

    return answer


def _admission(grid: InProcessGrid, spec: RiskJobSpec) -> QuoteOutcome:
    return run_quote(
        grid, spec, "j#1", CentralCheck(spec.epsilon, ()), _quiet, _quiet, check=grid.check
    )


def _quiet(*args: object, **kwargs: object) -> None:
    del args, kwargs


def _unreachable(msg: Message) -> Message:
    # The SuperLink answers for a node it cannot reach: the reply's sender is the SuperLink.
    reply = Message(Error(code=3, reason="node unavailable"), reply_to=msg)
    reply.metadata.__dict__["_src_node_id"] = 1
    return reply


def _no_weights(msg: Message) -> Message:
    report = NodeReport("odd", ReplyStatus.OK)
    return Message(RecordDict({REPORT: ConfigRecord(report.to_record())}), reply_to=msg)


def _spec(min_nodes: int) -> RiskJobSpec:
    return parse_job_spec(
        {
            "job": {
                "name": "j",
                "target": "y",
                "positive": "1",
                "rounds": 2,
                "min_nodes": min_nodes,
                "node_wait_s": 1.0,
                "round_timeout_s": 2.0,
            },
            "features": {"x": {"lower": 0.0, "upper": 1.0}},
        }
    )


def test_unreachable_and_malformed_nodes_are_dropped_and_the_job_continues() -> None:
    grid = InProcessGrid(
        {11: _healthy("tax"), 12: _healthy("health"), 13: _unreachable, 14: _no_weights}
    )
    spec = _spec(min_nodes=2)
    admission = _admission(grid, spec)
    outcome = run_risk_job(
        grid, spec, "j#1", get_weights(build_model(spec)), admission, _quiet, check=grid.check
    )
    assert outcome.status == "succeeded"
    assert [r.participants for r in outcome.rounds] == [("health", "tax")] * 2
    # The unreachable node never admitted the job; the odd one sent no weights in round 1.
    assert outcome.nodes[13].refusals[0] == {
        "round": 0, "code": "node_error", "reason": "node error 3: node unavailable"
    }  # fmt: skip
    assert outcome.nodes[14].refusals[0]["code"] == "bad_reply"
    assert np.allclose(outcome.weights[1], get_weights(build_model(spec))[1] + 0.2)
    # The final model was evaluated on the pooled (here exact) histograms.
    assert outcome.final_metrics["n_holdout"] == 6
    assert outcome.rounds[-1].metrics == outcome.final_metrics


def test_quorum_loss_fails_the_job_with_a_reason() -> None:
    grid = InProcessGrid({11: _healthy("tax"), 12: _healthy("health")})
    spec = _spec(min_nodes=2)
    admission = _admission(grid, spec)
    grid.nodes[12] = _unreachable  # admitted, then gone
    outcome = run_risk_job(
        grid, spec, "j#2", get_weights(build_model(spec)), admission, _quiet, check=grid.check
    )
    assert outcome.status == "failed"
    assert "only 1 node(s) accepted" in outcome.failure


def test_without_a_quorum_at_admission_no_node_is_asked_to_train() -> None:
    grid = InProcessGrid({11: _healthy("tax"), 13: _unreachable})
    spec = _spec(min_nodes=2)
    admission = _admission(grid, spec)
    asked = grid.count
    outcome = run_risk_job(
        grid, spec, "j#3", get_weights(build_model(spec)), admission, _quiet, check=grid.check
    )
    assert outcome.status == "failed" and "nothing charged" in outcome.failure
    assert grid.count == asked  # no training message was sent
    assert outcome.rounds == []


def test_a_paid_learning_curve_evaluates_after_every_round() -> None:
    grid = InProcessGrid({11: _healthy("tax"), 12: _healthy("health")})
    spec = dataclasses.replace(_spec(min_nodes=2), evaluation=EvaluationMode.ROUNDS)
    events: list[ProgressEvent] = []
    outcome = run_risk_job(
        grid, spec, "j#4", get_weights(build_model(spec)), _admission(grid, spec),
        events.append, check=grid.check,
    )  # fmt: skip
    assert outcome.status == "succeeded"
    assert all(r.metrics for r in outcome.rounds)
    assert [e.after_round for e in events if isinstance(e, Evaluated)] == [1, 2]
    asked = [e for e in events if isinstance(e, EvaluateStart)]
    assert len(asked) == spec.rounds
