"""Dry-run quotes: every node is asked, every answer (or silence) is listed, nothing is charged."""

from __future__ import annotations

from typing import Any

import pytest
from flwr.app import ConfigRecord, Error, Message, RecordDict

from server.central_budget.central_budget import CapCheck, CapKind, CentralCheck
from server.exchange import AnswerStatus, NodeReply
from server.quote_round import run_quote
from testkit.fake_grid import Behaviour, InProcessGrid
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.progress import QuoteResult, decode_event, encode_event
from vocab.serde import job_from_bytes
from vocab.wire import ARRAYS, JOB, QUOTE, REPORT, NodeQuote, ReplyStatus, ScopeQuote

pytestmark = pytest.mark.usefixtures("no_join_grace")

SEEN: list[Message] = []


def _spec(min_nodes: int = 2) -> RiskJobSpec:
    return parse_job_spec(
        {
            "job": {"name": "q", "target": "y", "positive": "1", "min_nodes": min_nodes,
                    "epsilon": 1.0, "node_wait_s": 1.0, "round_timeout_s": 1.0,
                    "analyst": "r.ahmed"},
            "features": {"x": {"lower": 0.0, "upper": 1.0}},
        }
    )  # fmt: skip


def _quoting(name: str, *, fits: bool = True) -> Behaviour:
    def answer(msg: Message) -> Message:
        SEEN.append(msg)
        spent_after = 1.4 if fits else 3.4
        scope = ScopeQuote("period 2026", 3.0, 1e-5, 0.6, spent_after, fits)
        quote = NodeQuote(
            name,
            ReplyStatus.OK if fits else ReplyStatus.REFUSED,
            "" if fits else "budget_exceeded",
            "" if fits else "period 2026 needs epsilon 0.8 but only 0.4 remains",
            requested=0.8,
            scopes=(scope,),
            audit_seq=7,
            audit_head="ab" * 32,
        )
        return Message(RecordDict({REPORT: ConfigRecord(quote.to_record())}), reply_to=msg)

    return answer


def _unreachable(msg: Message) -> Message:
    reply = Message(Error(code=3, reason="node unavailable"), reply_to=msg)
    reply.metadata.__dict__["_src_node_id"] = 1
    return reply


def _malformed(msg: Message) -> Message:
    record = ConfigRecord({"department": "odd", "scopes": "not json"})
    return Message(RecordDict({REPORT: record}), reply_to=msg)


def _silent(msg: Message) -> None:
    return None


def _no_caps() -> CentralCheck:
    return CentralCheck(1.0, ())


def _quote(grid: InProcessGrid, spec: RiskJobSpec, central: CentralCheck) -> Any:
    replies: list[NodeReply] = []
    outcome = run_quote(
        grid, spec, "q#1", central, lambda *a, **k: None, replies.append, check=grid.check
    )
    return outcome, replies


def test_every_node_is_asked_with_the_job_and_no_weights() -> None:
    SEEN.clear()
    spec = _spec()
    outcome, _ = _quote(InProcessGrid({11: _quoting("tax"), 12: _quoting("health")}), spec,
                        _no_caps())  # fmt: skip
    assert outcome.ok and outcome.would_run == 2
    assert len(SEEN) == 2
    for msg in SEEN:
        assert msg.metadata.message_type == QUOTE
        assert ARRAYS not in msg.content.array_records
        job = msg.content.config_records[JOB]
        assert (job["job_id"], job["round"]) == ("q#1", 0)
        assert job_from_bytes(bytes(job["spec"])) == spec  # type: ignore[arg-type]


def test_answers_refusals_and_silences_are_all_listed() -> None:
    grid = InProcessGrid(
        {
            11: _quoting("tax"),
            12: _quoting("health", fits=False),
            13: _unreachable,
            14: _malformed,
            15: _silent,
        }
    )
    outcome, replies = _quote(grid, _spec(min_nodes=2), _no_caps())
    by_node = {a.node_id: a for a in outcome.answers}
    assert by_node[11].status is AnswerStatus.OK and by_node[11].department == "tax"
    assert by_node[12].status is AnswerStatus.REFUSED and by_node[12].code == "budget_exceeded"
    assert [by_node[n].code for n in (13, 14, 15)] == ["node_error", "bad_reply", "no_reply"]
    assert all(by_node[n].status is AnswerStatus.NO_ANSWER for n in (13, 14, 15))
    assert outcome.would_run == 1 and not outcome.ok
    assert outcome.reason.startswith("only 1 of 5 node(s) would run the job; it needs 2")
    assert "health budget_exceeded" in outcome.reason
    # One audit record per asked node, quotes carry the node's chain head.
    assert sorted(r.node_id for r in replies) == [11, 12, 13, 14, 15]
    tax = next(r for r in replies if r.node_id == 11)
    assert (tax.message_type, tax.round, tax.audit_seq, tax.epsilon_job) == (QUOTE, 0, 7, 0.0)


def test_quote_result_event_shape() -> None:
    grid = InProcessGrid({11: _quoting("tax"), 12: _quoting("health", fits=False), 15: _silent})
    check = CapCheck(CapKind.ANALYST, "r.ahmed", 5.0, 1.0, 1.0)
    # The fields as they go on the wire, where the analyst's CLI reads them back.
    outcome = _quote(grid, _spec(min_nodes=1), CentralCheck(1.0, (check,)))[0]
    event = outcome.event(QuoteResult).to_fields()
    assert {k: event[k] for k in ("job", "job_id", "epsilon", "min_nodes", "would_run", "ok")} == {
        "job": "q", "job_id": "q#1", "epsilon": 1.0, "min_nodes": 1, "would_run": 1, "ok": True
    }  # fmt: skip
    assert event["reason"] == ""
    assert [n["department"] for n in event["nodes"]] == ["health", "node 15", "tax"]
    tax = event["nodes"][2]
    assert tax["would_run"] and tax["status"] == "ok" and tax["requested"] == 0.8
    assert tax["scopes"] == [
        {"scope": "period 2026", "cap": 3.0, "delta": 1e-5, "spent": 0.6,
         "remaining": 2.4, "after": 1.4, "remaining_after": pytest.approx(1.6), "fits": True}
    ]  # fmt: skip
    silent = event["nodes"][1]
    assert (silent["status"], silent["code"], silent["requested"], silent["scopes"]) == (
        "no_answer", "no_reply", None, []
    )  # fmt: skip
    assert event["central"] == {
        "requested": 1.0,
        "fits": True,
        "caps": [{"kind": "analyst", "key": "r.ahmed", "cap": 5.0, "spent": 1.0,
                  "remaining": 4.0, "after": 2.0, "fits": True}],
    }  # fmt: skip


def test_central_cap_makes_the_quote_fail_even_when_nodes_would_run() -> None:
    grid = InProcessGrid({11: _quoting("tax"), 12: _quoting("health")})
    check = CapCheck(CapKind.PROJECT, "fraud", 1.5, 1.0, 1.0)
    outcome, _ = _quote(grid, _spec(), CentralCheck(1.0, (check,)))
    assert outcome.would_run == 2 and not outcome.ok
    assert outcome.reason.startswith(
        "refused by the coordinator: the central cap of project 'fraud' would bring epsilon "
        "spent from 1.0000 to 2.0000"
    )


def _mistyped(msg: Message) -> Message:
    record = NodeQuote("odd", ReplyStatus.OK, requested=0.8).to_record()
    record["requested"] = "a lot"
    return Message(RecordDict({REPORT: ConfigRecord(record)}), reply_to=msg)


def test_a_quote_with_mistyped_figures_is_a_bad_reply_the_analyst_can_still_read() -> None:
    grid = InProcessGrid({11: _quoting("tax"), 14: _mistyped})
    outcome, _ = _quote(grid, _spec(min_nodes=1), _no_caps())
    by_node = {a.node_id: a for a in outcome.answers}
    assert by_node[14].code == "bad_reply" and "requested" in by_node[14].reason
    event = outcome.event(QuoteResult)
    assert decode_event(encode_event(event)) == event
