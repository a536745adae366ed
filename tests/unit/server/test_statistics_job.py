"""A statistics job through the real ServerApp and the real node release path.

Two departments answer over an in-process grid with their real ClientApp functions, real
ledgers and keys: the combined counts land near the truth, each node is charged exactly
what it quoted, a resent release is never charged twice, and a restricted grouping column
or an over-budget query is refused before anything is charged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from server.run_config import RunMode
from testkit.inprocess_federation import DEPARTMENTS, Federation
from vocab.jobs.statistics import StatisticsSpec, parse_statistics_spec
from vocab.progress import Admission, JobEnd, ProgressEvent, QuoteResult, encode_event

pytestmark = pytest.mark.usefixtures("no_join_grace")


def _spec(name: str = "stats", **job: Any) -> StatisticsSpec:
    doc: dict[str, Any] = {
        "job": {"kind": "statistics", "name": name, "epsilon": 1.0, "delta": 1e-6,
                "min_nodes": 2, "node_wait_s": 1.0, "round_timeout_s": 60.0, **job},
        "statistics": [
            {"measure": "count"},
            {"measure": "mean", "column": "x1", "lower": -4.0, "upper": 4.0},
        ],
        "group_by": {"grp": {"keys": ["a", "b"]}},
    }  # fmt: skip
    return parse_statistics_spec(doc)


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def _result(events: list[ProgressEvent]) -> dict[str, Any]:
    final = events[-1]
    assert isinstance(final, JobEnd) and final.files is not None, final
    return json.loads(base64.b64decode(final.files["result.json"]))


def test_counts_are_near_the_truth_and_each_node_is_charged_what_it_quoted(
    federation: Federation,
) -> None:
    spec = _spec()
    quoted = federation.submit(spec, 1, RunMode.QUOTE)[-1]
    assert isinstance(quoted, QuoteResult) and quoted.ok, quoted
    assert {"count", "reference_count"} <= set(quoted.preview.half_widths or {})
    events = federation.submit(spec, 2)
    result = _result(events)
    assert result["status"] == "succeeded", result["failure"]
    truth = pd.concat(federation.rows.values())
    counts = {c["group"]["grp"]: c for c in result["cells"] if c["statistic"] == "count"}
    for key in ("a", "b"):
        cell = counts[key]
        assert abs(cell["value"] - (truth["grp"] == key).sum()) <= 5 * cell["std"]
        assert cell["lower"] < cell["value"] < cell["upper"]
    means = {c["group"]["grp"]: c for c in result["cells"] if c["statistic"] == "mean"}
    exact = truth.assign(x=truth["x1"].clip(-4, 4)).groupby("grp")["x"].mean()
    for key in ("a", "b"):
        assert abs(means[key]["value"] - exact[key]) <= 5 * means[key]["std"]
    for node in quoted.nodes:
        assert federation.charged(node.department, "stats#2") == pytest.approx(
            node.requested, rel=1e-9
        )
    assert federation.charged("tax", "stats#1") == 0.0  # the quote charged nothing


def test_a_restricted_grouping_column_is_refused_before_any_charge(
    federation: Federation,
) -> None:
    doc_spec = parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": "leak", "min_nodes": 2, "node_wait_s": 1.0},
            "statistics": [{"measure": "count"}],
            "group_by": {"secret": {"keys": ["s1", "s2"]}},
        }
    )
    events = federation.submit(doc_spec, 3)
    final = events[-1]
    assert isinstance(final, JobEnd) and final.status == "failed"
    assert "restricted" in " ".join(encode_event(e) for e in events if isinstance(e, Admission))
    for name in DEPARTMENTS:
        assert federation.charged(name, "leak#3") == 0.0


def test_an_over_budget_query_is_refused_and_charges_nothing(tmp_path: Path) -> None:
    federation = Federation(tmp_path, budget=0.5)
    events = federation.submit(_spec("greedy", epsilon=2.0), 4)
    assert isinstance(events[-1], JobEnd) and events[-1].status == "failed"
    assert "budget" in " ".join(encode_event(e) for e in events).lower()
    for name in DEPARTMENTS:
        assert federation.charged(name, "greedy#4") == 0.0


def test_a_job_no_noise_can_price_fails_with_the_nodes_reason_not_a_bug(
    federation: Federation,
) -> None:
    # Too small an epsilon for any noise in range: neither the quote preview nor a node
    # can plan it; the job fails with that reason, charging nothing.
    for mode in (RunMode.QUOTE, RunMode.RUN):
        events = federation.submit(_spec("tiny", epsilon=0.01, delta=1e-9), 8, mode)
        final = events[-1]
        if isinstance(final, QuoteResult):
            assert not final.ok and "bug" not in final.reason, final.reason
            assert "spec_invalid" in final.reason
        else:
            assert isinstance(final, JobEnd) and final.status == "failed"
            assert "bug" not in final.failure and "spec_invalid" in final.failure
    for name in DEPARTMENTS:
        assert federation.charged(name, "tiny#8") == 0.0


def test_nodes_holding_another_dataset_take_no_part(federation: Federation) -> None:
    events = federation.submit(_spec("census", dataset="census"), 5)
    admission = next(e for e in events if isinstance(e, Admission))
    assert list(admission.elsewhere) == sorted(DEPARTMENTS) and list(admission.nodes) == []
    assert not admission.ok
    for name in DEPARTMENTS:
        assert federation.charged(name, "census#5") == 0.0
    ran = federation.submit(_spec("people", dataset="people"), 6)
    assert isinstance(ran[-1], JobEnd) and ran[-1].status == "succeeded"


def test_groups_chosen_privately_are_released_charged_and_combined(
    federation: Federation,
) -> None:
    doc: dict[str, Any] = {
        "job": {"kind": "statistics", "name": "chosen", "epsilon": 1.0, "delta": 1e-6,
                "min_nodes": 2, "node_wait_s": 1.0, "round_timeout_s": 60.0,
                "max_partitions": 10, "selection_share": 0.5},
        "statistics": [
            {"measure": "count"},
            {"measure": "mean", "column": "x1", "lower": -4.0, "upper": 4.0},
        ],
        "group_by": {"grp": {"select": "private"}},
    }  # fmt: skip
    spec = parse_statistics_spec(doc)
    quoted = federation.submit(spec, 7, RunMode.QUOTE)[-1]
    assert isinstance(quoted, QuoteResult) and quoted.ok, quoted
    assert (quoted.preview.half_widths or {})["count"] > 0
    result = _result(federation.submit(spec, 8))
    assert result["status"] == "succeeded", result["failure"]
    assert "chosen privately" in result["note"]
    truth = pd.concat(federation.rows.values())
    counts = {c["group"]["grp"]: c for c in result["cells"] if c["statistic"] == "count"}
    # Hundreds of rows per group at each node: far above the threshold, so both nodes
    # release both groups, and nothing else exists.
    assert set(counts) == {"a", "b"}
    for key in ("a", "b"):
        assert abs(counts[key]["value"] - (truth["grp"] == key).sum()) <= 5 * counts[key]["std"]
    for node in quoted.nodes:
        assert federation.charged(node.department, "chosen#8") == pytest.approx(
            node.requested, rel=1e-9
        )
        # Charged as a thresholded release consuming half the job's delta.
        (release,) = result["nodes"][node.department]["releases"]
        assert release["mechanism"] == "gaussian_threshold"
        assert release["params"]["delta"] == pytest.approx(5e-7)
        assert release["params"]["partition_threshold"] > 1
