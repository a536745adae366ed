"""The round loop: quorum, refusals and replies the SuperLink sends on a node's behalf.

A small in-process Grid stands in for the SuperLink here: the cases below (a node the
SuperLink answers for, a malformed reply) cannot be produced on demand by real processes.
The real path is covered by tests/integration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from server.risk_job import run_risk_job
from tests.unit.server.fake_grid import Behaviour, InProcessGrid
from vocab.jobspec import parse_job_spec
from vocab.metrics import summarize
from vocab.models import build_model, get_weights
from vocab.wire import ARRAYS, HOLDOUT, REPORT, NodeReport, ReplyStatus, summary_to_record


def _healthy(name: str) -> Behaviour:
    def answer(msg: Message) -> Message:
        weights = [w + 0.1 for w in msg.content.array_records[ARRAYS].to_numpy_ndarrays()]
        report = NodeReport(
            name, ReplyStatus.OK, epsilon_job=0.5, epsilon_spent=0.5, epsilon_budget=3.0, delta=1e-5
        )
        holdout = summarize(np.array([-1.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0]))
        content = RecordDict(
            {
                REPORT: ConfigRecord(report.to_record()),
                HOLDOUT: MetricRecord(summary_to_record(holdout)),
                ARRAYS: ArrayRecord(weights),
            }
        )
        return Message(content, reply_to=msg)

    return answer


def _unreachable(msg: Message) -> Message:
    # The SuperLink answers for a node it cannot reach: the reply's sender is the SuperLink.
    reply = Message(Error(code=3, reason="node unavailable"), reply_to=msg)
    reply.metadata.__dict__["_src_node_id"] = 1
    return reply


def _no_weights(msg: Message) -> Message:
    report = NodeReport("odd", ReplyStatus.OK)
    return Message(RecordDict({REPORT: ConfigRecord(report.to_record())}), reply_to=msg)


def _spec(min_nodes: int) -> Any:
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
    outcome = run_risk_job(grid, spec, "j#1", get_weights(build_model(spec)), lambda *a, **k: None)
    assert outcome.status == "succeeded"
    assert [r.participants for r in outcome.rounds] == [("health", "tax")] * 2
    assert outcome.nodes[13].refusals[0]["code"] == "node_error"
    assert outcome.nodes[14].refusals[0]["code"] == "bad_reply"
    assert np.allclose(outcome.weights[1], get_weights(build_model(spec))[1] + 0.2)


def test_quorum_loss_fails_the_job_with_a_reason() -> None:
    grid = InProcessGrid({11: _healthy("tax"), 13: _unreachable})
    outcome = run_risk_job(
        grid, _spec(min_nodes=2), "j#2", get_weights(build_model(_spec(2))), lambda *a, **k: None
    )
    assert outcome.status == "failed"
    assert "only 1 node(s) accepted" in outcome.failure
