"""Regression jobs through the real ServerApp and the real node release path.

A linear fit from the departments' noisy sufficient statistics lands near the non-private
fit on the same clamped rows; a Poisson fit trains its rounds, refines once and charges
each release, and its intervals cover the non-private fit; a quote prices a regression
and charges nothing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from server.run_config import RunMode
from testkit.inprocess_federation import DEPARTMENTS, Federation
from vocab.bundle import CARD_FILE
from vocab.jobs.regression import RegressionSpec, parse_regression_spec
from vocab.progress import JobEnd, ProgressEvent, QuoteResult, RoundDone

pytestmark = pytest.mark.usefixtures("no_join_grace")


def _spec(name: str, family: str = "linear", x1_bound: float = 4.0, **job: Any) -> RegressionSpec:
    doc: dict[str, Any] = {
        "job": {"kind": "regression", "name": name, "family": family, "target": "x2",
                "target_lower": -4.0, "target_upper": 4.0, "epsilon": 4.0, "delta": 1e-6,
                "min_nodes": 2, "node_wait_s": 1.0, "round_timeout_s": 120.0, **job},
        "features": {"x1": {"lower": -x1_bound, "upper": x1_bound},
                     "grp": {"categories": ["a", "b"]}},
    }  # fmt: skip
    return parse_regression_spec(doc)


def _result(events: list[ProgressEvent]) -> dict[str, Any]:
    final = events[-1]
    assert isinstance(final, JobEnd) and final.files is not None, final
    return dict(json.loads(base64.b64decode(final.files["result.json"])))


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    federation = Federation(tmp_path)
    # A known linear signal: x2 = 0.5 + 0.8 x1 - 0.6 [grp = b] + noise.
    for name, rows in federation.rows.items():
        rng = np.random.default_rng(len(rows))
        rows["x2"] = (
            0.5 + 0.8 * rows["x1"] - 0.6 * (rows["grp"] == "b") + rng.normal(0, 0.5, len(rows))
        )
        rows.to_csv(federation.nodes[name].source.path, index=False)
    return federation


def test_a_linear_fit_lands_near_the_non_private_fit(federation: Federation) -> None:
    spec = _spec("earnings")
    result = _result(federation.submit(spec, 1))
    assert result["status"] == "succeeded", result["failure"]
    rows = pd.concat(federation.rows.values())
    x = np.column_stack(
        [np.ones(len(rows)), rows["x1"].clip(-4, 4), (rows["grp"] == "b").astype(float)]
    )
    ols, *_ = np.linalg.lstsq(x, rows["x2"].clip(-4, 4), rcond=None)
    fitted = {c["name"]: c for c in result["fit"]["coefficients"]}
    assert list(fitted) == ["intercept", "x1", "grp=b"]
    for name, truth in zip(fitted, ols, strict=True):
        coefficient = fitted[name]
        assert abs(coefficient["estimate"] - truth) <= 4 * coefficient["std_error"], name
        assert coefficient["lower"] < coefficient["estimate"] < coefficient["upper"]
    for name in DEPARTMENTS:
        assert 0 < federation.charged(name, "earnings#1") <= spec.epsilon


def test_a_poisson_fit_trains_every_round_and_charges_each(federation: Federation) -> None:
    spec = _spec(
        "counts", family="poisson", target="y", target_lower=0.0, target_upper=1.0,
        rounds=2, local_epochs=1, batch_size=64, epsilon=2.0,
    )  # fmt: skip
    events = federation.submit(spec, 2)
    result = _result(events)
    assert result["status"] == "succeeded", result["failure"]
    assert [e.round for e in events if isinstance(e, RoundDone)] == [1, 2, 3]
    fit = result["fit"]
    assert {c["name"] for c in fit["coefficients"]} == {"intercept", "x1", "grp=b"}
    for name in DEPARTMENTS:
        releases = result["nodes"][name]["releases"]
        assert [r["round"] for r in releases] == [1, 2, 3]
        assert [r["what"] for r in releases][-1] == "score_and_information"
        assert federation.charged(name, "counts#2") == pytest.approx(
            result["nodes"][name]["epsilon_job"]
        )
        assert federation.charged(name, "counts#2") <= spec.epsilon


def _glm(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    b = np.zeros(x.shape[1])
    b[0] = np.log(y.mean())
    for _ in range(50):
        mu = np.exp(x @ b)
        b = b + np.linalg.solve((x * mu[:, None]).T @ x, x.T @ (y - mu))
    return b


def _counts(federation: Federation) -> None:
    """Counts with a known log-linear rate: log mu = 0.7 + 0.3 x1 - 0.5 [grp = b]."""
    for name, rows in federation.rows.items():
        rng = np.random.default_rng(7 + len(rows))
        rate = np.exp(0.7 + 0.3 * rows["x1"] - 0.5 * (rows["grp"] == "b"))
        rows["y"] = rng.poisson(rate)
        rows.to_csv(federation.nodes[name].source.path, index=False)


def test_a_refined_poisson_fit_covers_the_non_private_fit(federation: Federation) -> None:
    _counts(federation)
    # Bounds that fit the data keep the information well above the noise on 900 rows.
    spec = _spec(
        "rates", family="poisson", x1_bound=2.0, target="y", target_lower=0.0,
        target_upper=8.0, rounds=2, local_epochs=1, batch_size=64, epsilon=8.0,
        refine_share=0.9,
    )  # fmt: skip
    result = _result(federation.submit(spec, 4))
    assert result["status"] == "succeeded", result["failure"]
    assert result["fit"]["refined"] is True, result["fit"].get("note")
    rows = pd.concat(federation.rows.values())
    x = np.column_stack(
        [np.ones(len(rows)), rows["x1"].clip(-2.0, 2.0), (rows["grp"] == "b").astype(float)]
    )
    glm = _glm(x, rows["y"].clip(0, 8).to_numpy(dtype=float))
    fitted = result["fit"]["coefficients"]
    for c, truth in zip(fitted, glm, strict=True):
        assert abs(c["estimate"] - truth) <= 4 * c["std_error"], (c, truth)
        assert c["std_error"] > c["noise_std_error"] > 0
        assert c["lower"] < c["estimate"] < c["upper"]
    # The std errors are informative: far narrower than the coefficients' scale.
    assert max(c["std_error"] for c in fitted) < 0.3


def test_too_noisy_information_is_not_refined_and_says_so(federation: Federation) -> None:
    # A loose target bound (20 for counts of about 2) on 900 rows: the released
    # information is buried in its noise, so no interval is claimed.
    _counts(federation)
    spec = _spec(
        "loose", family="poisson", target="y", target_lower=0.0, target_upper=20.0,
        rounds=1, local_epochs=1, batch_size=64, epsilon=2.0,
    )  # fmt: skip
    result = _result(federation.submit(spec, 6))
    assert result["status"] == "succeeded", result["failure"]
    fit = result["fit"]
    assert fit["refined"] is False
    assert "too noisy to refine" in fit["note"]
    assert "std_error" not in fit["coefficients"][0]
    for name in DEPARTMENTS:  # the refinement was released, so it stays charged
        assert [r["round"] for r in result["nodes"][name]["releases"]] == [1, 2]


def test_a_poisson_fit_without_refinement_says_it_has_no_std_errors(
    federation: Federation,
) -> None:
    spec = _spec(
        "plain", family="poisson", target="y", target_lower=0.0, target_upper=1.0,
        rounds=1, local_epochs=1, batch_size=64, epsilon=2.0, refine_share=0.0,
    )  # fmt: skip
    events = federation.submit(spec, 5)
    result = _result(events)
    assert result["status"] == "succeeded", result["failure"]
    assert [e.round for e in events if isinstance(e, RoundDone)] == [1]
    assert result["fit"]["refined"] is False
    assert "std_error" not in result["fit"]["coefficients"][0]
    final = events[-1]
    assert isinstance(final, JobEnd) and final.files is not None
    assert "No standard errors" in base64.b64decode(final.files[CARD_FILE]).decode()


def test_a_quote_prices_a_regression_and_charges_nothing(federation: Federation) -> None:
    quoted = federation.submit(_spec("priced"), 3, RunMode.QUOTE)[-1]
    assert isinstance(quoted, QuoteResult) and quoted.ok, quoted
    for node in quoted.nodes:
        assert node.requested is not None and 0 < node.requested <= 4.0
        assert federation.charged(node.department, "priced#3") == 0.0
