"""Population models on real processes: a SuperLink, SuperNodes over TLS, real ledgers.

The session's federation has two healthy departments (alpha, beta), one whose budget is
too small (poor) and one whose data is corrupt (until test_federation repairs it, so whether
it takes part depends on the order the tests run in: the truth is read from the data of the
nodes whose releases were combined). A statistics job's combined counts land
within a few noise standard deviations of the truth and each node is charged exactly what
it quoted; a restricted column and an over-budget query are refused with nothing charged;
a linear regression's coefficients land near the non-private fit; a poisson regression
trains, releases its refinement and is charged what it quoted.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clients.ledger.sqlite_ledger import SqliteLedger
from server.run_config import RunMode
from tests.integration.conftest import LiveFederation
from vocab.jobs.regression import parse_regression_spec
from vocab.jobs.statistics import StatisticsSpec, parse_statistics_spec
from vocab.progress import Admission, FinalEvent, JobEnd, JobStart, QuoteResult

pytestmark = pytest.mark.integration

HEALTHY = ("alpha", "beta")
# Named: once any analyst cap is set (test_governance sets one), an unnamed analyst's
# cap is 0.
ANALYST = "population.check"


def _statistics(name: str, *, group: str = "grp", **job: Any) -> StatisticsSpec:
    keys = ["a", "b"] if group == "grp" else ["s1", "s2"]
    return parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": name, "analyst": ANALYST, "epsilon": 1.0,
                    "delta": 1e-6, "min_nodes": 2, "node_wait_s": 60.0, "round_timeout_s": 120.0,
                    **job},
            "statistics": [
                {"measure": "count"},
                {"measure": "mean", "column": "x1", "lower": -4.0, "upper": 4.0},
            ],
            "group_by": {group: {"keys": keys}},
        }
    )  # fmt: skip


def _charged(federation: LiveFederation, name: str, job_id: str) -> float:
    cfg = federation.nodes[name]
    return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).job_epsilon(job_id)


def _result(final: FinalEvent) -> dict[str, Any]:
    assert isinstance(final, JobEnd) and final.files is not None, final
    return dict(json.loads(base64.b64decode(final.files["result.json"])))


def _truth(federation: LiveFederation, result: dict[str, Any]) -> pd.DataFrame:
    # The rows of the nodes whose releases were combined, as their sources hold them.
    nodes = federation.nodes
    return pd.concat([pd.read_csv(nodes[n].source.path) for n in result["combined"]])  # type: ignore[union-attr]


def test_dp_counts_are_near_the_truth_and_charged_as_quoted(
    federation: LiveFederation,
) -> None:
    spec = _statistics("pop-counts")
    quote = federation.run(spec, "pop-quote", RunMode.QUOTE)
    assert isinstance(quote, QuoteResult) and quote.ok, quote
    quoted = {n.department: n for n in quote.nodes}
    running = {n for n, q in quoted.items() if q.would_run}
    assert set(HEALTHY) <= running and "poor" not in running
    final = federation.run(spec, "pop-run")
    result = _result(final)
    assert result["status"] == "succeeded", result["failure"]
    assert set(result["combined"]) == running
    truth = _truth(federation, result)
    for cell in result["cells"]:
        rows = truth[truth["grp"] == cell["group"]["grp"]]
        exact = len(rows) if cell["statistic"] == "count" else rows["x1"].clip(-4, 4).mean()
        assert abs(cell["value"] - exact) <= 5 * cell["std"], cell
    job_id = next(e.job_id for e in federation.events if isinstance(e, JobStart)
                  and e.job == "pop-counts" and e.mode == "run")  # fmt: skip
    for name in running:
        assert _charged(federation, name, job_id) == pytest.approx(quoted[name].requested, rel=1e-9)
        assert result["nodes"][name]["epsilon_job"] == pytest.approx(quoted[name].requested)


def test_a_restricted_group_column_is_refused_and_charges_nothing(
    federation: LiveFederation,
) -> None:
    final = federation.run(_statistics("pop-secret", group="secret"), "pop-secret")
    assert isinstance(final, JobEnd) and final.status == "failed"
    assert "not started, nothing charged" in final.failure
    admission = [e for e in federation.events if isinstance(e, Admission)][-1]
    reasons = " ".join(n.reason for n in admission.nodes)
    assert "secret (restricted)" in reasons
    for name in HEALTHY:
        assert _charged(federation, name, admission.job_id) == 0.0


def test_an_over_budget_query_is_refused_and_charges_nothing(
    federation: LiveFederation,
) -> None:
    final = federation.run(_statistics("pop-greedy", epsilon=50.0), "pop-greedy")
    assert isinstance(final, JobEnd) and final.status == "failed"
    admission = [e for e in federation.events if isinstance(e, Admission)][-1]
    assert {n.code for n in admission.nodes if n.department in HEALTHY} == {"budget_exceeded"}
    for name in HEALTHY:
        assert _charged(federation, name, admission.job_id) == 0.0


def test_a_linear_regression_lands_near_the_non_private_fit(
    federation: LiveFederation,
) -> None:
    spec = parse_regression_spec(
        {
            "job": {"kind": "regression", "name": "pop-linear", "analyst": ANALYST,
                    "family": "linear",
                    "target": "x2", "target_lower": -4.0, "target_upper": 4.0,
                    "epsilon": 2.0, "delta": 1e-6, "min_nodes": 2, "node_wait_s": 60.0},
            "features": {"x1": {"lower": -4.0, "upper": 4.0},
                         "grp": {"categories": ["a", "b"]}},
        }
    )  # fmt: skip
    result = _result(federation.run(spec, "pop-linear"))
    assert result["status"] == "succeeded", result["failure"]
    truth = _truth(federation, result)
    x = np.column_stack(
        [np.ones(len(truth)), truth["x1"].clip(-4, 4), (truth["grp"] == "b").astype(float)]
    )
    ols, *_ = np.linalg.lstsq(x, truth["x2"].clip(-4, 4), rcond=None)
    for row, exact in zip(result["fit"]["coefficients"], ols, strict=True):
        assert abs(row["estimate"] - exact) <= 4 * row["std_error"], row


def test_a_poisson_regression_trains_refines_and_charges_what_it_quoted(
    federation: LiveFederation,
) -> None:
    spec = parse_regression_spec(
        {
            "job": {"kind": "regression", "name": "pop-poisson", "analyst": ANALYST,
                    "family": "poisson", "target": "y", "target_lower": 0.0,
                    "target_upper": 1.0, "rounds": 2, "local_epochs": 1, "batch_size": 64,
                    "refine_share": 0.8, "epsilon": 1.5, "delta": 1e-6, "min_nodes": 2,
                    "node_wait_s": 60.0},
            "features": {"x1": {"lower": -3.0, "upper": 3.0},
                         "grp": {"categories": ["a", "b"]}},
        }
    )  # fmt: skip
    result = _result(federation.run(spec, "pop-poisson"))
    assert result["status"] == "succeeded", result["failure"]
    fit = result["fit"]
    # Refined with intervals, or - if the noise buried the information on these few rows -
    # plainly not, saying so; never intervals that the release cannot support.
    if fit["refined"]:
        assert all(r["lower"] < r["estimate"] < r["upper"] for r in fit["coefficients"])
    else:
        assert "too noisy" in fit["note"], fit
    for name in result["combined"]:
        node = result["nodes"][name]
        whats = [r["what"] for r in node["releases"]]
        assert whats == ["model_update", "model_update", "score_and_information"]
        assert _charged(federation, name, result["job_id"]) == pytest.approx(node["epsilon_job"])
        assert node["epsilon_job"] <= spec.epsilon
