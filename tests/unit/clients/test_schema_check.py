"""Schema check: coercion to declared types and messages that point at the bad rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clients.data.schema_check import validate_frame
from clients.node_config import ColumnSpec
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError


def _spec(name: str, column_type: ColumnType, *, required: bool = True) -> ColumnSpec:
    return ColumnSpec(name, column_type, ColumnClass.OPEN, required)


def _error(frame: pd.DataFrame, *specs: ColumnSpec) -> DataError:
    with pytest.raises(DataError) as info:
        validate_frame(frame, specs, where="CSV file loans.csv")
    assert "loans.csv" in info.value.message
    return info.value


def test_coerces_text_to_each_declared_type() -> None:
    raw = pd.DataFrame(
        {
            "n": ["1", " -2 ", "3.0"],
            "x": ["1.5", "2", "-3e2"],
            "ok": ["True", "no", "1"],
            "name": ["a", "NA", "nan"],
        }
    )
    specs = [
        _spec("n", ColumnType.INT),
        _spec("x", ColumnType.FLOAT),
        _spec("ok", ColumnType.BOOL),
        _spec("name", ColumnType.STRING),
    ]

    frame = validate_frame(raw, specs)

    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "n": "int64",
        "x": "float64",
        "ok": "bool",
        "name": "object",
    }
    assert frame["n"].tolist() == [1, -2, 3]
    assert frame["x"].tolist() == [1.5, 2.0, -300.0]
    assert frame["ok"].tolist() == [True, False, True]
    # In a string column "NA" and "nan" are values, not gaps.
    assert frame["name"].tolist() == ["a", "NA", "nan"]


def test_optional_columns_use_nullable_types() -> None:
    raw = pd.DataFrame(
        {
            "n": ["1", None, ""],
            "x": ["1", "nan", " "],
            "ok": ["yes", None, "0"],
            "s": [None, "b", ""],
        }
    )
    specs = [
        _spec("n", ColumnType.INT, required=False),
        _spec("x", ColumnType.FLOAT, required=False),
        _spec("ok", ColumnType.BOOL, required=False),
        _spec("s", ColumnType.STRING, required=False),
    ]

    frame = validate_frame(raw, specs)

    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].isna().tolist() == [False, True, True]
    assert str(frame["x"].dtype) == "float64"
    assert frame["x"].isna().tolist() == [False, True, True]
    assert str(frame["ok"].dtype) == "boolean"
    assert frame["ok"].isna().tolist() == [False, True, False]
    assert frame["s"].tolist() == [None, "b", None]


def test_keeps_declared_columns_in_spec_order_and_leaves_input_alone() -> None:
    raw = pd.DataFrame({"a": ["1"], "b": ["2"], "c": ["3"]})
    frame = validate_frame(raw, [_spec("c", ColumnType.INT), _spec("a", ColumnType.INT)])
    assert list(frame.columns) == ["c", "a"]
    assert raw["a"].tolist() == ["1"]


def test_typed_input_passes_through() -> None:
    raw = pd.DataFrame(
        {
            "n": np.array([1, 2], dtype="int32"),
            "x": [1, 2],
            "ok": [True, False],
            "m": pd.array([1, None], dtype="Int64"),
            "s": [7, 8],
        }
    )
    specs = [
        _spec("n", ColumnType.INT),
        _spec("x", ColumnType.FLOAT),
        _spec("ok", ColumnType.BOOL),
        _spec("m", ColumnType.INT, required=False),
        _spec("s", ColumnType.STRING),
    ]

    frame = validate_frame(raw, specs)

    assert str(frame["n"].dtype) == "int64"
    assert frame["x"].tolist() == [1.0, 2.0]
    assert frame["ok"].tolist() == [True, False]
    assert str(frame["m"].dtype) == "Int64"
    assert frame["s"].tolist() == ["7", "8"]


def test_mixed_python_values_are_parsed_one_by_one() -> None:
    # Object columns mixing strings and numbers (as SQL drivers may return) take the exact path.
    raw = pd.DataFrame(
        {
            "n": pd.Series(["1", 2, 3.0], dtype=object),
            "x": pd.Series([1, "2.5", None], dtype=object),
            "ok": pd.Series([True, "no", 1], dtype=object),
            "s": pd.Series([1, "a", 2.5], dtype=object),
        }
    )
    specs = [
        _spec("n", ColumnType.INT),
        _spec("x", ColumnType.FLOAT, required=False),
        _spec("ok", ColumnType.BOOL),
        _spec("s", ColumnType.STRING),
    ]

    frame = validate_frame(raw, specs)

    assert frame["n"].tolist() == [1, 2, 3]
    assert frame["x"].tolist()[:2] == [1.0, 2.5]
    assert frame["ok"].tolist() == [True, False, True]
    assert frame["s"].tolist() == ["1", "a", "2.5"]


def test_integral_floats_from_typed_sources_become_ints() -> None:
    frame = validate_frame(pd.DataFrame({"n": [1.0, 2.0]}), [_spec("n", ColumnType.INT)])
    assert frame["n"].tolist() == [1, 2]


def test_no_rows() -> None:
    error = _error(pd.DataFrame({"a": pd.Series([], dtype=object)}), _spec("a", ColumnType.INT))
    assert "no rows" in error.message


def test_missing_column() -> None:
    error = _error(pd.DataFrame({"a": ["1"]}), _spec("b", ColumnType.INT))
    assert "`b`" in error.message


@pytest.mark.parametrize(
    ("column_type", "values", "first_row", "first_value", "count"),
    [
        (ColumnType.INT, ["1", "x", "2", "1.5"], 2, "'x'", 2),
        (ColumnType.INT, ["1", "2", "99999999999999999999"], 3, "'99999999999999999999'", 1),
        (ColumnType.FLOAT, ["1.0", "2,5", "abc"], 2, "'2,5'", 2),
        (ColumnType.BOOL, ["true", "maybe", "2"], 2, "'maybe'", 2),
    ],
)
def test_unparseable_values_name_column_first_row_value_and_count(
    column_type: ColumnType, values: list[str], first_row: int, first_value: str, count: int
) -> None:
    error = _error(pd.DataFrame({"col": values}), _spec("col", column_type))

    assert "`col`" in error.message
    assert f"{count} value(s) are not {column_type.value}" in error.message
    assert f"data row {first_row}" in error.message
    assert first_value in error.message
    assert "type" in error.hint


@pytest.mark.parametrize("column_class", [ColumnClass.CONDITIONAL, ColumnClass.RESTRICTED])
def test_values_of_non_open_columns_are_withheld(column_class: ColumnClass) -> None:
    spec = ColumnSpec("income", ColumnType.FLOAT, column_class)
    error = _error(pd.DataFrame({"income": ["1.0", "85,000"]}), spec)
    assert "`income`" in error.message and "are not float" in error.message
    # No value, no row number, no count: the refusal reaches the coordinator.
    assert "85,000" not in error.message
    assert "row" not in error.message and "1 value" not in error.message
    assert f"({column_class.value})" in error.message


def test_booleans_are_not_numbers() -> None:
    error = _error(pd.DataFrame({"n": [True, False]}), _spec("n", ColumnType.INT))
    assert "2 value(s) are not int" in error.message


def test_long_values_are_shortened() -> None:
    error = _error(pd.DataFrame({"n": ["z" * 500]}), _spec("n", ColumnType.INT))
    assert "z" * 500 not in error.message
    assert "..." in error.message


@pytest.mark.parametrize("gap", [None, "", "  ", "nan", "NaN"])
def test_missing_value_in_required_numeric_column(gap: str | None) -> None:
    error = _error(pd.DataFrame({"x": ["1", "2", gap, gap]}), _spec("x", ColumnType.FLOAT))

    assert "`x`" in error.message
    assert "2 missing value(s)" in error.message
    assert "data row 3" in error.message
    assert "required = false" in error.hint


def test_missing_value_in_typed_required_column() -> None:
    error = _error(pd.DataFrame({"x": [1.0, np.nan]}), _spec("x", ColumnType.FLOAT))
    assert "1 missing value(s)" in error.message
    assert "data row 2" in error.message


def test_missing_value_in_required_string_column() -> None:
    error = _error(pd.DataFrame({"s": ["a", None]}), _spec("s", ColumnType.STRING))
    assert "`s`" in error.message
    assert "missing" in error.message


@pytest.mark.parametrize("values", [["1", "inf"], ["1", "-Infinity"], [1.0, np.inf]])
def test_infinities_are_refused(values: list[object]) -> None:
    error = _error(pd.DataFrame({"x": values}), _spec("x", ColumnType.FLOAT, required=False))
    assert "`x`" in error.message
    assert "infinite" in error.message
    assert "data row 2" in error.message


def test_infinity_in_an_int_column_is_refused() -> None:
    error = _error(pd.DataFrame({"n": ["inf"]}), _spec("n", ColumnType.INT))
    assert "infinite" in error.message


def test_every_failing_column_is_reported_at_once() -> None:
    raw = pd.DataFrame({"a": ["x", "1"], "b": ["1", None], "c": ["1", "2"]})
    error = _error(
        raw, _spec("a", ColumnType.INT), _spec("b", ColumnType.INT), _spec("c", ColumnType.INT)
    )
    assert "`a`" in error.message
    assert "`b`" in error.message
    assert "`c`" not in error.message
    assert "type" in error.hint
    assert "required = false" in error.hint
