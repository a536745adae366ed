"""Progress events: every kind survives the wire, and a hostile stream never crashes a reader."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.progress import (
    EVENT_PREFIX,
    Admission,
    Answers,
    CapView,
    CentralView,
    Evaluated,
    EvaluateStart,
    Failed,
    JobEnd,
    JobStart,
    NodePrivacy,
    NodeQuoteView,
    NodesConnected,
    ProgressEvent,
    ProgressEventError,
    QuotePreview,
    QuoteResult,
    Refusal,
    Released,
    ReleaseStart,
    RoundDone,
    RoundEnd,
    RoundStart,
    ScopeView,
    decode_event,
    encode_event,
)

_NODE = NodeQuoteView(
    department="tax", node_id="11", status="ok", would_run=True, code="", reason="",
    requested=0.8, scopes=(ScopeView("period 2026", 3.0, 1e-5, 0.6, 2.4, 1.4, 1.6, True),),
    audit_seq=7, audit_head="ab" * 32,
)  # fmt: skip
_SILENT = NodeQuoteView(
    department="node 15", node_id="15", status="no_answer", would_run=False, code="no_reply",
    reason="no reply within the round timeout", requested=None, scopes=(), audit_seq=0,
    audit_head="",
)  # fmt: skip
_CENTRAL = CentralView(1.0, True, (CapView("analyst", "r.ahmed", 5.0, 1.0, 4.0, 2.0, True),))
_QUOTE: dict[str, Any] = dict(
    job="q", job_id="q#1", epsilon=1.0, delta=1e-5, analyst="r.ahmed", project="", min_nodes=1,
    would_run=1, ok=True, reason="", nodes=(_SILENT, _NODE), central=_CENTRAL,
)  # fmt: skip

EVENTS: list[ProgressEvent] = [
    JobStart(job="j", job_id="j#1", rounds=2, epsilon=1.0, delta=1e-5, min_nodes=2,
             analyst="a", project="p", out="", job_kind="risk", mode="quote"),
    NodesConnected(connected=3, min_nodes=2),
    Admission(**_QUOTE, preview=QuotePreview("final", 1, 0.1)),
    RoundStart(round=1, rounds=2, nodes=2),
    Refusal(department="health", round=0, code="budget_exceeded", reason="too much"),
    RoundEnd(round=1, rounds=2, participants=("health", "tax"), refused=(), metrics={},
             seconds=1.5, privacy={"tax": NodePrivacy(0.4, 1.2, 3.0)}),
    EvaluateStart(after_round=2, nodes=2),
    Evaluated(after_round=2, nodes=2, metrics={"auc": 0.7, "auc_se": 0.03, "n_holdout": 600.0}),
    ReleaseStart(nodes=2, job_kind="statistics"),
    Released(departments=("health", "tax"), seconds=0.4),
    RoundDone(round=1, nodes=2, seconds=0.3),
    QuoteResult(**_QUOTE, job_kind="statistics", elsewhere=("census",),
                preview=QuotePreview(half_widths={"count": 4.0, "reference_count": 1000.0})),
    JobEnd(status="succeeded", failure="", result="/r/result.json",
           files={"result.json": "e30="}, metrics={"cells": 4, "rmse": 0.5}, seconds=3.2),
    JobEnd(status="failed", failure="too big", result="", files=None, metrics={}, seconds=0.0),
    Failed(reason="the central cap of analyst 'x' would be exceeded"),
    Answers(round=1, answered=2, asked=3),
]  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_every_event_reads_back_as_it_was_sent(event: ProgressEvent) -> None:
    line = encode_event(event)
    assert line.startswith(EVENT_PREFIX) and "\n" not in line
    assert decode_event(f"INFO :      {line}\n") == event


def test_the_wire_keeps_one_flat_json_object_per_event() -> None:
    evaluated = json.loads(encode_event(EVENTS[7])[len(EVENT_PREFIX) :])
    assert evaluated == {"event": "evaluated", "after_round": 2, "nodes": 2, "auc": 0.7,
                         "auc_se": 0.03, "n_holdout": 600.0}  # fmt: skip
    admission = json.loads(encode_event(EVENTS[2])[len(EVENT_PREFIX) :])
    assert (admission["evaluation"], admission["evaluations"]) == ("final", 1)
    assert "half_widths" not in admission and "preview" not in admission
    assert admission["nodes"][0]["requested"] is None and admission["nodes"][1]["scopes"][0] == {
        "scope": "period 2026", "cap": 3.0, "delta": 1e-5, "spent": 0.6, "remaining": 2.4,
        "after": 1.4, "remaining_after": 1.6, "fits": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        "INFO : starting run 42",
        EVENT_PREFIX + "not json",
        EVENT_PREFIX + "[1, 2]",
        EVENT_PREFIX + '{"connected": 3}',
        EVENT_PREFIX + '{"event": "from_the_future", "x": 1}',
        EVENT_PREFIX + '{"event": ["nodes"]}',
        EVENT_PREFIX + "[" * 100_000,
        EVENT_PREFIX + '{"event": "nodes", "connected": ' + "9" * 5000 + "}",
    ],
)
def test_lines_that_are_not_our_events_are_skipped(line: str) -> None:
    assert decode_event(line) is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"event": "nodes", "connected": 3}, "min_nodes is missing"),
        ({"event": "nodes", "connected": True, "min_nodes": 2}, "connected should be int"),
        ({"event": "failed", "reason": {"html": 1}}, "reason should be str"),
        ({"event": "released", "departments": "tax", "seconds": 1.0}, "departments"),
        ({"event": "evaluated", "after_round": 1, "nodes": 2, "auc": "high"}, "metrics.auc"),
        ({"event": "job_end", "status": "succeeded", "failure": "", "result": "",
          "files": {"result.json": 5}, "metrics": {}, "seconds": 1.0}, "files.result.json"),
        ({**json.loads(encode_event(EVENTS[11])[len(EVENT_PREFIX):]),
          "half_widths": {"count": "wide"}}, "half_widths.count"),
        ({**json.loads(encode_event(EVENTS[11])[len(EVENT_PREFIX):]),
          "nodes": [{"department": "tax"}]}, "nodes[0].node_id is missing"),
    ],
)  # fmt: skip
def test_a_known_kind_with_malformed_fields_is_a_clear_error(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ProgressEventError, match="malformed") as caught:
        decode_event(EVENT_PREFIX + json.dumps(fields))
    assert caught.value.kind == fields["event"] and problem in str(caught.value)


def test_fields_a_newer_coordinator_adds_are_ignored() -> None:
    line = EVENT_PREFIX + json.dumps({"event": "nodes", "connected": 3, "min_nodes": 2, "x": 1})
    assert decode_event(line) == NodesConnected(connected=3, min_nodes=2)


_names = st.sampled_from(["count", "tax", "auc", "caps", "kind", "result.json"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(EVENTS),
    replaced=st.dictionaries(
        st.sampled_from(["connected", "nodes", "central", "files", "privacy", "metrics",
                         "departments", "reason", "round", "half_widths", "auc"]),
        json_values, max_size=3,
    ),
)  # fmt: skip
def test_a_hostile_stream_yields_an_event_none_or_a_clear_error(
    base: ProgressEvent, replaced: dict[str, Any]
) -> None:
    fields = {**json.loads(encode_event(base)[len(EVENT_PREFIX) :]), **replaced}
    try:
        event = decode_event(EVENT_PREFIX + json.dumps(fields))
    except ProgressEventError:
        return
    assert event is not None and event.kind == base.kind
