"""Schema check: coerce a node's raw frame to its declared column types, or say what to fix."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clients.node_config import ColumnSpec
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError

__all__ = ["validate_frame"]

_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SHOWN_CHARS = 40
_NUMERIC = (ColumnType.INT, ColumnType.FLOAT)

_FIX_VALUE = "fix those values in the data, or correct the column's `type` in the node config"
_FIX_MISSING = "fill in the missing values, or declare the column `required = false`"
_FIX_INFINITE = "replace the infinite values with finite numbers (or leave them empty)"


class _InfiniteError(ValueError):
    """A numeric value parsed to +/- infinity."""


@dataclass(frozen=True)
class _Problem:
    text: str
    hint: str
    public: str  # what a refusal may say: the column and what is wrong, no rows or values


def _parse_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an int")
    if isinstance(value, int | np.integer):
        number = int(value)
    elif isinstance(value, float | np.floating):
        number = _integral(float(value))
    else:
        text = str(value).strip()
        # Whole floats ("3.0") are accepted: exporters write ints that way next to blanks.
        number = int(text) if _INT_RE.fullmatch(text) else _integral(float(text))
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError("out of the 64-bit integer range")
    return number


def _integral(number: float) -> int:
    if math.isinf(number):
        raise _InfiniteError
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _parse_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a float")
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    else:
        number = float(str(value).strip())
    if math.isinf(number):
        raise _InfiniteError
    return number


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")


def _parse_string(value: object) -> str:
    return value if isinstance(value, str) else str(value)


_PARSERS: dict[ColumnType, Callable[[object], object]] = {
    ColumnType.INT: _parse_int,
    ColumnType.FLOAT: _parse_float,
    ColumnType.BOOL: _parse_bool,
    ColumnType.STRING: _parse_string,
}


def _is_absent(value: object, column_type: ColumnType) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    # Text "nan" is how exporters write a missing number; in a string column it is a value.
    return not text or (column_type in _NUMERIC and text.lower() == "nan")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _rows_problem(
    spec: ColumnSpec, rows: list[int], what: str, hint: str, raw: np.ndarray
) -> _Problem:
    # Refusals travel to the coordinator: they say what is wrong with which column, never
    # how many rows, which ones, or what value; the node's log has those for open columns.
    public = f"column `{spec.name}` ({spec.column_class.value}): values {what}"
    if spec.column_class is not ColumnClass.OPEN:
        return _Problem(public, hint, public)
    first = rows[0]
    return _Problem(
        f"column `{spec.name}`: {len(rows)} value(s) {what} "
        f"(first: data row {first + 1}, value {_shown(raw[first])})",
        hint,
        public,
    )


def _missing_problem(spec: ColumnSpec, missing: np.ndarray) -> _Problem:
    public = (
        f"column `{spec.name}` ({spec.column_class.value}): missing values in a required column"
    )
    if spec.column_class is not ColumnClass.OPEN:
        return _Problem(public, _FIX_MISSING, public)
    rows = np.flatnonzero(missing)
    return _Problem(
        f"column `{spec.name}`: {len(rows)} missing value(s) in a required column "
        f"(first: data row {rows[0] + 1})",
        _FIX_MISSING,
        public,
    )


def _typed(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Converts parsed Python values (None where missing) to the column's declared dtype."""
    if spec.type is ColumnType.INT:
        return values.astype("int64" if spec.required else "Int64")
    if spec.type is ColumnType.FLOAT:
        return values.astype("float64")
    if spec.type is ColumnType.BOOL:
        return values.astype("bool" if spec.required else "boolean")
    return values.astype(object)


def _typed_path(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list[_Problem]] | None:
    """Vectorised conversion when the source already holds the declared type."""
    dtype = series.dtype
    column_type = spec.type
    if column_type is ColumnType.FLOAT:
        native = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    elif column_type is ColumnType.INT:
        native = pd.api.types.is_signed_integer_dtype(dtype)
    else:
        native = column_type is ColumnType.BOOL and pd.api.types.is_bool_dtype(dtype)
    if not native:
        return None
    problems = []
    missing = series.isna().to_numpy(dtype=bool)
    if column_type is ColumnType.FLOAT:
        floats = series.astype("float64")
        infinite = np.isinf(floats.to_numpy())
        if infinite.any():
            rows = [int(i) for i in np.flatnonzero(infinite)]
            raw = series.to_numpy(dtype=object)
            problems.append(_rows_problem(spec, rows, "are infinite", _FIX_INFINITE, raw))
    if spec.required and missing.any():
        problems.append(_missing_problem(spec, missing))
    if problems:
        return series, problems
    if column_type is ColumnType.FLOAT:
        return floats, []
    return _typed(series.astype(object).where(~missing, None), spec), []


def _text_path(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list[_Problem]] | None:
    """Vectorised conversion of clean text; None sends the column to the exact value loop.

    Only the common case is handled here: every present value parses. Anything odd (a bad
    value, an infinity, "3.0" in an int column) falls back to the loop, which is the
    authority on what parses and writes the messages.
    """
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return None
    stripped = series.str.strip()
    absent = (stripped.isna() | stripped.eq("")).to_numpy(dtype=bool, copy=True)
    if spec.type in _NUMERIC:
        absent |= stripped.str.lower().eq("nan").to_numpy(dtype=bool)
    present = stripped[~absent]
    values: pd.Series
    if spec.type is ColumnType.INT:
        # At most 18 digits always fits in int64.
        if not present.str.fullmatch(r"[+-]?\d{1,18}").all():
            return None
        values = pd.Series(pd.array([None] * len(series), dtype="Int64"), index=series.index)
        values[~absent] = present.astype("int64").to_numpy()
    elif spec.type is ColumnType.FLOAT:
        numbers = pd.to_numeric(present, errors="coerce").astype("float64")
        if not np.isfinite(numbers.to_numpy()).all():
            return None
        values = pd.Series(np.nan, index=series.index, dtype="float64")
        values[~absent] = numbers.to_numpy()
    elif spec.type is ColumnType.BOOL:
        lowered = present.str.lower()
        if not lowered.isin(_TRUE | _FALSE).all():
            return None
        values = pd.Series(pd.array([None] * len(series), dtype="boolean"), index=series.index)
        values[~absent] = lowered.isin(_TRUE).to_numpy()
    else:
        values = series.astype(object).where(~absent, None)
    if spec.required and absent.any():
        return series, [_missing_problem(spec, absent)]
    return _typed(values, spec), []


def _convert(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list[_Problem]]:
    fast = _typed_path(series, spec)
    if fast is None:
        fast = _text_path(series, spec)
    if fast is not None:
        return fast
    parse = _PARSERS[spec.type]
    raw = series.to_numpy(dtype=object)
    missing = series.isna().to_numpy(dtype=bool, copy=True)
    parsed: list[object] = [None] * len(raw)
    bad: list[int] = []
    infinite: list[int] = []
    for row, value in enumerate(raw):
        if missing[row]:
            continue
        if _is_absent(value, spec.type):
            missing[row] = True
            continue
        try:
            parsed[row] = parse(value)
        except _InfiniteError:
            infinite.append(row)
        except (ValueError, TypeError, OverflowError):
            bad.append(row)
    problems = []
    if bad:
        what = f"are not {spec.type.value}" + (
            " (use true/false, 1/0 or yes/no)" if spec.type is ColumnType.BOOL else ""
        )
        problems.append(_rows_problem(spec, bad, what, _FIX_VALUE, raw))
    if infinite:
        problems.append(_rows_problem(spec, infinite, "are infinite", _FIX_INFINITE, raw))
    if spec.required and missing.any():
        problems.append(_missing_problem(spec, missing))
    if problems:
        return series, problems
    return _typed(pd.Series(parsed, index=series.index, dtype=object), spec), []


def validate_frame(
    frame: pd.DataFrame, columns: Sequence[ColumnSpec], *, where: str = "the data"
) -> pd.DataFrame:
    """Returns a new frame holding `columns`, each coerced to its declared type.

    Types: INT becomes int64 (nullable Int64 when not required), FLOAT float64 (NaN where
    missing), BOOL bool (nullable boolean when not required; accepts true/false, 1/0,
    yes/no in any case), STRING object (None where missing). Empty or blank text is a
    missing value; so is the text "nan" in a numeric column. Rows are numbered from 1 in
    source order in messages (a CSV header is not counted). Other columns of `frame` are
    left out.

    Args:
        frame: Raw values as a data source read them.
        columns: The declared specs to check, in the order the result should have.
        where: Names the data in messages, e.g. "CSV file /data/loans.csv".

    Raises:
        DataError: The frame has no rows or lacks a column, or some column has values
            that do not parse, infinite numbers, or missing values in a required column.
            Every failing column is listed, with its first bad row and the count.
    """
    if len(frame) == 0:
        raise DataError(
            f"{where} has no rows", "add data rows, or point the node config at the right data"
        )
    absent = [spec.name for spec in columns if spec.name not in frame.columns]
    if absent:
        listed = ", ".join(f"`{name}`" for name in absent)
        raise DataError(
            f"{where} lacks column(s) {listed}",
            "add the columns to the data, or fix their names under [columns]",
            public=f"the node's data lacks the job's column(s) {listed}",
        )
    problems: list[_Problem] = []
    converted: dict[str, pd.Series] = {}
    for spec in columns:
        series, column_problems = _convert(frame[spec.name], spec)
        problems += column_problems
        converted[spec.name] = series
    if problems:
        hints = list(dict.fromkeys(problem.hint for problem in problems))
        raise DataError(
            f"{where} does not match the node schema: "
            + "; ".join(problem.text for problem in problems),
            "; ".join(hints),
            public="the node's data does not match its schema: "
            + "; ".join(problem.public for problem in problems),
        )
    return pd.DataFrame(converted, index=frame.index)
