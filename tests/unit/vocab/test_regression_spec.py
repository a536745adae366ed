"""The regression kind's spec: parsing, validation, columns and coefficient names."""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vocab.errors import JobSpecError
from vocab.jobs.regression import (
    MAX_COEFFICIENTS,
    Family,
    RegressionSpec,
    parse_regression_spec,
)
from vocab.jobspec import FeatureSpec
from vocab.spec import ENVELOPE_KEYS

ROOT = Path(__file__).resolve().parents[3]


def _doc(features: dict[str, Any] | None = None, **job: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "r",
        "kind": "regression",
        "target": "y",
        "target_lower": 0.0,
        "target_upper": 10.0,
    }
    base.update(job)
    if features is None:
        features = {"x": {"lower": -1.0, "upper": 3.0}, "c": {"categories": ["a", "b", "c"]}}
    return {"job": base, "features": features}


def _load(name: str) -> RegressionSpec:
    text = (ROOT / "examples" / "jobs" / name).read_text(encoding="utf-8")
    return parse_regression_spec(tomllib.loads(text), source=name)


def test_defaults_columns_and_names() -> None:
    spec = parse_regression_spec(_doc())
    assert spec.kind == "regression" and spec.family is Family.LINEAR
    assert spec.columns == ("x", "c", "y")
    assert spec.n_inputs == 3 and spec.n_coefficients == 4
    # The first level of a categorical is the reference: no coefficient of its own.
    assert spec.coefficient_names == ("intercept", "x", "c=b", "c=c")
    assert spec.max_rows == 1 and spec.budget.epsilon == spec.epsilon


def test_poisson_with_exposure_and_log_feature() -> None:
    spec = parse_regression_spec(
        _doc(
            {"x": {"lower": 0.0, "upper": 100.0, "log": True}},
            family="poisson",
            exposure="population",
            target_lower=0,
            target_upper=50,
        )
    )
    assert spec.family is Family.POISSON
    assert spec.columns == ("x", "y", "population")
    assert spec.coefficient_names == ("intercept", "log1p(x)")
    assert isinstance(spec.target_lower, float) and spec.target_upper == 50.0


def test_refine_share_defaults_round_trips_and_adds_a_message_round() -> None:
    from vocab.jobs.regression import DEFAULT_REFINE_SHARE
    from vocab.serde import job_from_bytes, job_to_bytes

    poisson = parse_regression_spec(_doc(family="poisson", target_lower=0, rounds=2))
    assert poisson.refine_share == DEFAULT_REFINE_SHARE and poisson.refines
    assert poisson.message_rounds == 3  # two training rounds, then the refinement
    off = parse_regression_spec(_doc(family="poisson", target_lower=0, rounds=2, refine_share=0))
    assert not off.refines and off.message_rounds == 2
    assert isinstance(off.refine_share, float)
    for spec in (poisson, off):  # 0 ("off") survives the wire; unset is the default
        assert job_from_bytes(job_to_bytes(spec)) == spec
    linear = parse_regression_spec(_doc())
    assert not linear.refines and linear.message_rounds == 1


def test_example_specs_load() -> None:
    earnings = _load("earnings_regression.toml")
    assert earnings.family is Family.LINEAR and earnings.dataset == "earnings"
    assert earnings.coefficient_names == (
        "intercept", "age", "education", "gender=female",
        "region=Midwest", "region=South", "region=West",
    )  # fmt: skip
    births = _load("births_poisson.toml")
    assert births.family is Family.POISSON and births.dataset == "births"
    assert births.n_coefficients == 1 + 11 + 6


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"kind": "risk"}, "kind"),
        ({"kind": None}, "kind"),
        ({"family": "logistic"}, "family"),
        ({"typo": 1}, "typo"),
        ({"target_lower": 5.0, "target_upper": 5.0}, "target_lower"),
        ({"target_lower": 6.0, "target_upper": 5.0}, "target_lower"),
        ({"target_upper": math.inf}, "target_upper"),
        ({"target_lower": math.nan}, "target_lower"),
        ({"target_lower": "0"}, "target_lower"),
        ({"target_upper": True}, "target_upper"),
        ({"target_upper": 1e300}, "target_upper"),
        ({"family": "poisson", "target_lower": -1.0}, "target_lower"),
        ({"exposure": "pop"}, "exposure"),
        ({"family": "poisson", "exposure": "x"}, "x"),
        ({"target": "x"}, "x"),
        ({"target": ""}, "target"),
        ({"max_rows": 0}, "max_rows"),
        ({"max_rows": 10_000}, "max_rows"),
        ({"max_rows": 1.5}, "max_rows"),
        ({"rounds": 0}, "rounds"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"learning_rate": 1e3}, "learning_rate"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"refine_share": 1.0}, "refine_share"),
        ({"refine_share": -0.1}, "refine_share"),
        ({"refine_share": "half"}, "refine_share"),
        ({"refine_share": math.nan}, "refine_share"),
        ({"delta": 0.0}, "delta"),
        ({"epsilon": math.nan}, "epsilon"),
        ({"name": "bad name!"}, "name"),
    ],
)
def test_bad_job_fields_are_named(overrides: dict[str, Any], needle: str) -> None:
    doc = _doc(**overrides)
    if overrides.get("kind", "regression") is None:
        del doc["job"]["kind"]
    with pytest.raises(JobSpecError) as info:
        parse_regression_spec(doc)
    assert needle in str(info.value)


def test_missing_bounds_are_named() -> None:
    doc = _doc()
    del doc["job"]["target_upper"]
    with pytest.raises(JobSpecError, match="target_upper"):
        parse_regression_spec(doc)


@pytest.mark.parametrize(
    ("features", "needle"),
    [
        ({}, "features"),
        ({"x": {"lower": 1.0, "upper": 1.0}}, "x"),
        ({"x": {"lower": 0.0}}, "x"),
        ({"x": {"lower": -math.inf, "upper": 1.0}}, "x"),
        ({"x": {"lower": "0", "upper": 1.0}}, "lower"),
        ({"x": {"lower": -1.0, "upper": 1.0, "log": True}}, "log"),
        ({"x": {"lower": 0.0, "upper": 1.0, "log": "yes"}}, "log"),
        ({"x": {"lower": 0.0, "upper": 1.0, "scale": 2}}, "scale"),
        ({"c": {"categories": ["a"]}}, "c"),
        ({"c": {"categories": ["a", "a"]}}, "twice"),
        ({"c": {"categories": [1, 2]}}, "categories"),
        ({"c": ["a", "b"]}, "table"),
        ({"y": {"lower": 0.0, "upper": 1.0}}, "y"),
    ],
)
def test_bad_features_are_named(features: dict[str, Any], needle: str) -> None:
    with pytest.raises(JobSpecError) as info:
        parse_regression_spec(_doc(features))
    assert needle in str(info.value)


def test_unknown_table_and_missing_job() -> None:
    with pytest.raises(JobSpecError, match="unknown table"):
        parse_regression_spec({**_doc(), "model": {}})
    with pytest.raises(JobSpecError, match=r"\[job\]"):
        parse_regression_spec({"features": {}})


def test_unknown_key_message_lists_the_allowed_keys() -> None:
    with pytest.raises(JobSpecError) as info:
        parse_regression_spec(_doc(target_bounds=[0, 1]))
    for key in ("target_lower", "exposure", "max_rows", *ENVELOPE_KEYS):
        assert key in info.value.hint


def test_too_many_coefficients_refused() -> None:
    levels = [f"l{i}" for i in range(MAX_COEFFICIENTS + 1)]
    with pytest.raises(JobSpecError, match="coefficients"):
        parse_regression_spec(_doc({"c": {"categories": levels}}))


def test_direct_construction_is_validated() -> None:
    """A spec built from a decoded message, not TOML, is held to the same rules."""
    with pytest.raises(JobSpecError, match="family"):
        RegressionSpec(
            name="r",
            family="linear",  # type: ignore[arg-type]
            target="y",
            target_lower=0.0,
            target_upper=1.0,
            features=(FeatureSpec("x", 0.0, 1.0),),
        )
    with pytest.raises(JobSpecError, match="feature"):
        RegressionSpec(
            name="r",
            target="y",
            target_lower=0.0,
            target_upper=1.0,
            features=("x",),  # type: ignore[arg-type]
        )
    with pytest.raises(JobSpecError, match="lower < upper"):
        RegressionSpec(
            name="r",
            target="y",
            target_lower=0.0,
            target_upper=1.0,
            features=(FeatureSpec("x", 2.0, 1.0),),
        )


def test_spec_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, vocab.jobs.regression, vocab.jobs.regression_release; "
        "print(sorted(m for m in ('pandas', 'torch', 'flwr') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
