"""Job spec parsing and validation: every bad field is refused with its name."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vocab.errors import JobSpecError
from vocab.jobspec import Aggregator, ModelKind, load_job_spec, parse_job_spec
from vocab.serde import job_from_bytes, job_to_bytes

ROOT = Path(__file__).resolve().parents[3]


def _doc(**job: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "j", "target": "y", "positive": "1"}
    base.update(job)
    return {
        "job": base,
        "features": {"x": {"lower": 0.0, "upper": 1.0}, "c": {"categories": ["a", "b"]}},
    }


def test_example_spec_loads_and_round_trips_through_protobuf() -> None:
    spec = load_job_spec(ROOT / "examples" / "jobs" / "lending_risk.toml")
    assert spec.target == "Class" and spec.model is ModelKind.LOGISTIC
    assert spec.columns[-1] == "Class"
    assert job_from_bytes(job_to_bytes(spec)) == spec


def test_defaults_and_widths() -> None:
    spec = parse_job_spec(_doc())
    assert spec.aggregator is Aggregator.FEDAVG
    assert spec.n_inputs == 3
    assert spec.budget.epsilon == spec.epsilon


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"epsilon": float("nan")}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"delta": 1.5}, "delta"),
        ({"delta": 0.0}, "delta"),
        ({"rounds": 0}, "rounds"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"model": "forest"}, "model"),
        ({"aggregator": "median"}, "aggregator"),
        ({"name": "bad name!"}, "name"),
        ({"typo_rounds": 3}, "typo_rounds"),
        ({"kind": "population"}, "kind"),
    ],
)
def test_bad_job_fields_are_named(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(JobSpecError) as info:
        parse_job_spec(_doc(**overrides))
    assert needle in str(info.value)


def test_feature_problems_are_named() -> None:
    doc = _doc()
    doc["features"] = {"x": {"lower": 2.0, "upper": 1.0}}
    with pytest.raises(JobSpecError, match="feature `x`"):
        parse_job_spec(doc)
    doc["features"] = {"y": {"lower": 0.0, "upper": 1.0}}
    with pytest.raises(JobSpecError, match="used twice"):
        parse_job_spec(doc)
    doc["features"] = {"x": {"lower": 0.0, "upper": 1.0, "scale": 3}}
    with pytest.raises(JobSpecError, match="scale"):
        parse_job_spec(doc)
    doc["features"] = {}
    with pytest.raises(JobSpecError, match="no features"):
        parse_job_spec(doc)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="cannot read"):
        load_job_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[job\nname = 1")
    with pytest.raises(JobSpecError, match="not valid TOML"):
        load_job_spec(bad)


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(JobSpecError):
        job_from_bytes(b"\xff\xff\xff")
