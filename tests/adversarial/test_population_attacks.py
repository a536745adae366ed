"""Attacks on population jobs, run against a real node (its release path, ledger, keys).

* Averaging: asking for the same statistics again to average the noise away. The same job
  gets the same bytes back (no fresh noise, no charge); a new job id pays again, and the
  ledger refuses once the budget is spent.
* Differencing: two queries that differ by one filter to isolate a person. Each is a
  charged release; the budget bounds how many.
* Shape channels: grouping or filtering by a column that is not open (its values would
  shape the result) is refused, even a conditional one; a statistics message for a risk
  job (to get an extra evaluation under another message type) is refused.
* Hostile nodes: a linear-regression node that claims less noise than the plan, or sends
  statistics of the wrong layout, is dropped by the coordinator; so is a node whose poisson
  refinement claims less noise than planned.
* The poisson refinement: asked at any other round or message, or of a job that does not
  refine, it is refused uncharged; asked again it is the same bytes, charged once; a
  hostile model cannot widen what one row moves (tests/unit/vocab/test_regression_plan.py
  checks the bound for any model).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Message

from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig
from clients.release import JobRequest, handle_request
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.bundle import RESULT_FILE
from vocab.columns import ColumnClass
from vocab.jobs.regression import parse_regression_spec
from vocab.jobs.regression_release import LinearRelease
from vocab.jobs.statistics import StatisticsSpec, parse_statistics_spec
from vocab.models import build_model, get_weights
from vocab.progress import JobEnd, Refusal
from vocab.wire import REGRESSION, RESULT, STATISTICS, ReplyStatus


def _stats(name: str, epsilon: float = 1.0, **extra: Any) -> StatisticsSpec:
    return parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": name, "epsilon": epsilon, "delta": 1e-6,
                    "min_nodes": 1},
            "statistics": [{"measure": "count"}],
            **extra,
        }
    )  # fmt: skip


@pytest.fixture
def node(tmp_path: Path) -> NodeConfig:
    return write_node(tmp_path / "tax", "tax", 3.0, make_rows(400, seed=4))


def _ask(cfg: NodeConfig, spec: Any, job_id: str, message: str = STATISTICS, rnd: int = 1) -> Any:
    return handle_request(
        cfg.config_path, cfg.department, JobRequest(spec, job_id, rnd, [], message)
    )


def _charged(cfg: NodeConfig, job_id: str) -> float:
    return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).job_epsilon(job_id)


def test_asking_again_for_the_same_job_gives_the_same_noise_and_no_charge(
    node: NodeConfig,
) -> None:
    spec = _stats("again")
    first, second = _ask(node, spec, "again#1"), _ask(node, spec, "again#1")
    assert first.report.status is ReplyStatus.OK
    assert first.result == second.result  # the same noisy figures, not a fresh draw
    assert _charged(node, "again#1") == pytest.approx(first.report.epsilon_job)


def test_new_job_ids_pay_again_until_the_budget_refuses(tmp_path: Path) -> None:
    node = write_node(tmp_path / "small", "small", 1.5, make_rows(300, seed=6))
    answers = [_ask(node, _stats("avg"), f"avg#{i}") for i in range(4)]
    ok = [a for a in answers if a.report.status is ReplyStatus.OK]
    refused = [a for a in answers if a.report.status is ReplyStatus.REFUSED]
    assert ok and refused and all(a.report.code == "budget_exceeded" for a in refused)
    ledger = SqliteLedger(node.ledger_path, node.dataset, node.budget)
    assert ledger.spent() <= node.budget.epsilon


def test_differencing_by_a_filter_is_two_charged_releases(node: NodeConfig) -> None:
    everyone = _stats("all", epsilon=0.5)
    all_but = _stats("all-but", epsilon=0.5, filters={"grp": {"values": ["a"]}})
    for spec, job in ((everyone, "all#1"), (all_but, "all-but#1")):
        assert _ask(node, spec, job).report.status is ReplyStatus.OK
        assert _charged(node, job) > 0


def test_grouping_by_a_conditional_column_is_refused_even_with_no_approval_needed(
    tmp_path: Path,
) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, make_rows(200, seed=5))
    columns = tuple(
        dataclasses.replace(c, column_class=ColumnClass.CONDITIONAL) if c.name == "grp" else c
        for c in cfg.columns
    )
    from clients.node_config import render_node_config

    cfg.config_path.write_text(render_node_config(dataclasses.replace(cfg, columns=columns)))
    outcome = _ask(cfg, _stats("shape", group_by={"grp": {"keys": ["a", "b"]}}), "shape#1")
    assert outcome.report.status is ReplyStatus.REFUSED
    assert "grp (conditional)" in outcome.report.reason
    assert _charged(cfg, "shape#1") == 0.0


def test_a_statistics_message_for_a_risk_job_is_refused(node: NodeConfig) -> None:
    spec = synthetic_spec("risk", rounds=1)
    weights = get_weights(build_model(spec))
    request = JobRequest(spec, "risk#1", spec.evaluation_round(1), weights, STATISTICS)
    outcome = handle_request(node.config_path, node.department, request)
    assert outcome.report.status is ReplyStatus.REFUSED and outcome.holdout is None
    assert _charged(node, "risk#1") == 0.0


def test_a_regression_node_claiming_less_noise_is_not_believed() -> None:
    from server.kinds.regression import _planned_std

    spec = parse_regression_spec(
        {
            "job": {"kind": "regression", "name": "fit", "target": "x2", "target_lower": -4.0,
                    "target_upper": 4.0, "max_rows": 2},
            "features": {"x1": {"lower": -4.0, "upper": 4.0}},
        }
    )  # fmt: skip
    from vocab.jobs.regression_plan import plan_linear

    honest = plan_linear(spec, 1).noise_std
    assert _planned_std(spec, honest) and _planned_std(spec, plan_linear(spec, 2).noise_std)
    assert not _planned_std(spec, honest / 10)
    dims = spec.n_coefficients
    with pytest.raises(ValueError):
        LinearRelease.from_json('{"xtx_upper": [NaN], "xty": [], "yty": 0}', dims)


def test_a_linear_release_goes_only_to_its_own_message(node: NodeConfig) -> None:
    spec = parse_regression_spec(
        {
            "job": {"kind": "regression", "name": "lin", "target": "x2", "target_lower": -4.0,
                    "target_upper": 4.0, "min_nodes": 1},
            "features": {"x1": {"lower": -4.0, "upper": 4.0}},
        }
    )  # fmt: skip
    assert _ask(node, spec, "lin#1", STATISTICS).report.status is ReplyStatus.REFUSED
    assert _ask(node, spec, "lin#1", REGRESSION, rnd=2).report.status is ReplyStatus.REFUSED
    assert _charged(node, "lin#1") == 0.0
    assert _ask(node, spec, "lin#1", REGRESSION).report.status is ReplyStatus.OK


def _poisson(name: str, **job: Any) -> Any:
    return parse_regression_spec(
        {
            "job": {"kind": "regression", "name": name, "family": "poisson", "target": "y",
                    "target_lower": 0.0, "target_upper": 5.0, "rounds": 2, "local_epochs": 1,
                    "batch_size": 64, "epsilon": 2.0, "delta": 1e-6, "min_nodes": 1, **job},
            "features": {"x1": {"lower": -4.0, "upper": 4.0}},
        }
    )  # fmt: skip


def _refine_at(cfg: NodeConfig, spec: Any, job_id: str, rnd: int) -> Any:
    weights = [np.zeros((1, spec.n_coefficients), dtype=np.float32)]
    request = JobRequest(spec, job_id, rnd, weights, REGRESSION)
    return handle_request(cfg.config_path, cfg.department, request)


def test_the_refinement_is_released_only_as_the_round_after_training(node: NodeConfig) -> None:
    spec = _poisson("counts")
    for rnd in (1, 2, 4):  # during training, or past the refinement
        assert _refine_at(node, spec, "counts#1", rnd).report.status is ReplyStatus.REFUSED
    off = _poisson("plain", refine_share=0.0)
    assert _refine_at(node, off, "plain#1", 3).report.status is ReplyStatus.REFUSED
    assert _charged(node, "counts#1") == 0.0 and _charged(node, "plain#1") == 0.0
    first = _refine_at(node, spec, "counts#1", 3)
    assert first.report.status is ReplyStatus.OK, first.report.reason
    charged = _charged(node, "counts#1")
    assert charged > 0
    again = _refine_at(node, spec, "counts#1", 3)  # a replay: no fresh noise, no charge
    assert again.result == first.result and _charged(node, "counts#1") == charged
    release = LinearRelease.from_json(first.result, spec.n_coefficients)
    assert [r.what for r in first.report.releases] == ["score_and_information"]
    assert release.noise_std > 0


def test_a_node_claiming_less_refinement_noise_is_dropped(tmp_path: Path) -> None:
    from clients.reply_sealing import sealed_reply
    from testkit.inprocess_federation import Federation

    federation = Federation(tmp_path)
    honest = federation.grid.nodes[12]
    config = federation.nodes["health"].config_path

    def understating(msg: Message) -> Message:
        reply = honest(msg)
        record = reply.content.config_records.get(RESULT)
        if msg.metadata.message_type == REGRESSION and record is not None:
            doc = json.loads(str(record["json"]))
            doc["noise_std"] = doc["noise_std"] / 10  # "trust me, I added little noise"
            record["json"] = json.dumps(doc)
            return sealed_reply(msg, reply.content, config)  # sealed: it is the node's word
        return reply

    federation.grid.nodes[12] = understating
    spec = _poisson("counts", min_nodes=2, node_wait_s=1.0, round_timeout_s=120.0)
    events = federation.submit(spec, 7)
    dropped = [e for e in events if isinstance(e, Refusal) and e.code == "bad_reply"]
    assert [e.department for e in dropped] == ["health"]
    assert "planned noise" in dropped[0].reason
    final = events[-1]
    assert isinstance(final, JobEnd) and final.files is not None
    fit = json.loads(base64.b64decode(final.files[RESULT_FILE]))["fit"]
    assert fit["refined"] is False and "released the refinement" in fit["note"]
