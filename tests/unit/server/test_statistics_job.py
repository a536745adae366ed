"""A statistics job through the real ServerApp and the real node release path.

Two departments answer over an in-process grid with their real ClientApp functions, real
ledgers and keys: the combined counts land near the truth, each node is charged exactly
what it quoted, a resent release is never charged twice, and a restricted grouping column
or an over-budget query is refused before anything is charged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flwr.app import Context, Message, RecordDict

from clients.client_app import CONFIG_KEY, DEPARTMENT_KEY, _answer, quote
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from clients.sqlite_ledger import SqliteLedger
from server.coordinator_home import CoordinatorHome
from server.run_config import RunMode
from server.server_app import run_submission
from silobridge.synthetic import make_rows, write_node
from tests.unit.server.fake_grid import InProcessGrid
from vocab.jobs.statistics import StatisticsSpec, parse_statistics_spec
from vocab.serde import job_to_bytes
from vocab.wire import QUOTE

pytestmark = pytest.mark.usefixtures("no_join_grace")

DEPARTMENTS = ("tax", "health")


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


def _node_app(cfg: NodeConfig) -> Callable[[Message], Message]:
    context = Context(1, 1, {CONFIG_KEY: str(cfg.config_path), DEPARTMENT_KEY: cfg.department},
                      RecordDict(), {})  # fmt: skip

    def answer(msg: Message) -> Message:
        kind = msg.metadata.message_type
        if kind == QUOTE:
            return quote(msg, context)
        return _answer(msg, context, kind)

    return answer


class Federation:
    def __init__(self, root: Path, budget: float = 10.0) -> None:
        self.home = CoordinatorHome(root / "coordinator")
        self.home.root.mkdir(parents=True)
        self.rows = {name: make_rows(400 + 100 * i, seed=i) for i, name in enumerate(DEPARTMENTS)}
        self.nodes = {
            name: write_node(root / name, name, budget, self.rows[name]) for name in DEPARTMENTS
        }
        for name, cfg in self.nodes.items():
            self.home.nodes.register(name, node_identity(cfg.ledger_path).public.pem())
        self.grid = InProcessGrid(
            {11 + i: _node_app(self.nodes[n]) for i, n in enumerate(DEPARTMENTS)},
            self.home.nodes,
        )
        self.root = root

    def submit(
        self, spec: StatisticsSpec, run_id: int, mode: RunMode = RunMode.RUN
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        def emit(event: str, /, **fields: Any) -> None:
            events.append({"event": event, **fields})

        job = base64.b64encode(job_to_bytes(spec)).decode()
        config = {"job": job, "out": str(self.root / "out"), "mode": mode.value}
        run_submission(self.grid, config, run_id, str(self.home.root), emit)
        return events

    def charged(self, name: str, job_id: str) -> float:
        cfg = self.nodes[name]
        return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).job_epsilon(job_id)


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def _result(events: list[dict[str, Any]]) -> dict[str, Any]:
    final = events[-1]
    assert final["event"] == "job_end", final
    return json.loads(base64.b64decode(final["files"]["result.json"]))


def test_counts_are_near_the_truth_and_each_node_is_charged_what_it_quoted(
    federation: Federation,
) -> None:
    spec = _spec()
    quoted = federation.submit(spec, 1, RunMode.QUOTE)[-1]
    assert quoted["event"] == "quote_result" and quoted["ok"], quoted
    assert {"count", "reference_count"} <= set(quoted["half_widths"])
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
    for node in quoted["nodes"]:
        assert federation.charged(node["department"], "stats#2") == pytest.approx(
            node["requested"], rel=1e-9
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
    assert final["event"] == "job_end" and final["status"] == "failed"
    assert "restricted" in json.dumps([e for e in events if e["event"] == "admission"])
    for name in DEPARTMENTS:
        assert federation.charged(name, "leak#3") == 0.0


def test_an_over_budget_query_is_refused_and_charges_nothing(tmp_path: Path) -> None:
    federation = Federation(tmp_path, budget=0.5)
    events = federation.submit(_spec("greedy", epsilon=2.0), 4)
    assert events[-1]["status"] == "failed"
    assert "budget" in json.dumps(events).lower()
    for name in DEPARTMENTS:
        assert federation.charged(name, "greedy#4") == 0.0
