"""Target conditions (`positive` as a value, a list or a comparison) and feature groups
(one `[features]` table for many columns)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from vocab.column_groups import MAX_GROUP_COLUMNS, expand_columns
from vocab.errors import JobSpecError
from vocab.features import encode_features, encode_target
from vocab.jobspec import parse_job_spec
from vocab.serde import job_from_bytes, job_to_bytes
from vocab.target import TargetCondition


def _spec(positive: Any, features: dict[str, Any] | None = None) -> Any:
    return parse_job_spec(
        {
            "job": {"name": "j", "target": "y", "positive": positive},
            "features": features or {"x": {"lower": 0.0, "upper": 1.0}},
        }
    )


@pytest.mark.parametrize(
    ("positive", "values", "expected"),
    [
        ("Bad", ["bad", " BAD ", "good", None], [1, 1, 0, 0]),
        (["1", "2"], [1, 2, 3, "2"], [1, 1, 0, 1]),
        ("> 0", [0, 1, 2.5, -1], [0, 1, 1, 0]),
        (">= 0.5", ["0.5", "0.4", "x", None], [1, 0, 0, 0]),
        ("!= 3", [3, 4, None, "n/a"], [0, 1, 0, 0]),
        ("<2", [1, 2, 3, 1.99], [1, 0, 0, 1]),
    ],
)
def test_a_condition_picks_the_positive_rows(
    positive: Any, values: list[Any], expected: list[int]
) -> None:
    spec = _spec(positive)
    frame = pd.DataFrame({"x": [0.5] * len(values), "y": pd.Series(values, dtype=object)})
    assert encode_target(frame, spec).tolist() == expected
    # The condition travels to the nodes as one canonical text and reads back the same.
    again = job_from_bytes(job_to_bytes(spec))
    assert again.positive == spec.positive
    assert encode_target(frame, again).tolist() == expected


def test_canonical_texts_and_the_model_cards_words() -> None:
    assert _spec("Bad").positive == "Bad"
    assert _spec(">0").positive == "> 0"
    assert _spec(["a", "b", "a"]).positive == 'in ["a", "b"]'
    assert TargetCondition.parse("> 0").describe("claims") == "claims > 0"
    assert TargetCondition.parse('in ["a", "b"]').describe("y") == "y is 'a' or 'b'"


@pytest.mark.parametrize(
    ("positive", "needle"),
    [
        ("> abc", "not a number"),
        (">50K", 'list it: positive = [">50K"]'),
        ("", "empty"),
        ([], "1 to 1000 non-empty strings"),
        ([1, 2], "quote numeric levels"),
        (3, "text or a list"),
        ("> nan", "not a number"),
    ],
)
def test_a_bad_condition_names_the_key_and_the_fix(positive: Any, needle: str) -> None:
    with pytest.raises(JobSpecError, match="positive") as err:
        _spec(positive)
    assert needle in str(err.value)


def test_a_group_declares_many_columns_with_shared_bounds() -> None:
    spec = _spec(
        "1",
        {
            "age": {"lower": 0.0, "upper": 100.0},
            "occupation_{clerk,driver,nurse}": {"lower": 0.0, "upper": 1.0},
            "region_{01..03}_{a,b}": {"categories": ["0", "1"]},
        },
    )
    assert [f.column for f in spec.features] == [
        "age", "occupation_clerk", "occupation_driver", "occupation_nurse",
        "region_01_a", "region_01_b", "region_02_a", "region_02_b", "region_03_a",
        "region_03_b",
    ]  # fmt: skip
    assert {(f.lower, f.upper) for f in spec.features[1:4]} == {(0.0, 1.0)}
    assert all(f.categories == ("0", "1") for f in spec.features[4:])
    frame = pd.DataFrame({f.column: [0] for f in spec.features} | {"y": [1]})
    assert encode_features(frame, spec).shape == (1, spec.n_inputs)


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("occupation_*", "wildcards are not expanded"),
        ("x_{a}", "two or more names"),
        ("x_{a,}", "two or more names"),
        ("x_{3..1}", "count up"),
        (f"x_{{1..{MAX_GROUP_COLUMNS + 1}}}", "count up"),
        ("x_{a,b", "unbalanced"),
        ("x_{1..80}_{1..80}", "more than"),
    ],
)
def test_a_bad_group_names_the_table_and_the_fix(pattern: str, needle: str) -> None:
    with pytest.raises(JobSpecError, match="features") as err:
        expand_columns(pattern)
    assert needle in str(err.value)


def test_a_column_declared_twice_is_refused() -> None:
    with pytest.raises(JobSpecError, match="declared twice"):
        _spec("1", {"x_{a,b}": {"lower": 0.0, "upper": 1.0}, "x_a": {"lower": 0.0, "upper": 2.0}})
