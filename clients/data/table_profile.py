"""What `silobridge node init` needs to know of a department's own table: each column's
type (the type the node's schema check will accept), whether it has missing values, and
whether it could be a person id. Runs on the node's host, on the node's data; nothing of
it leaves the host except what the officer later declares."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from vocab.columns import ColumnType

__all__ = ["ColumnProfile", "profile_columns"]

_TRUE_FALSE = frozenset({"true", "false", "yes", "no"})
_ID_NAME = re.compile(r"(^|[^a-z])(id|pid|uid|person|patient|ssn|nin|nhs|tin|member)([^a-z]|$)")
_MIN_ROWS_FOR_UNIQUE_ID = 20
"""Fewer rows than this say nothing about whether all-distinct values are ids."""


@dataclass(frozen=True)
class ColumnProfile:
    """One column as `node init` declares it."""

    name: str
    type: ColumnType
    has_missing: bool
    person_id_candidate: bool


def _text_type(text: pd.Series) -> ColumnType:
    """The type of values read as text (CSV): the narrowest the node's parsers accept."""
    if text.empty:
        return ColumnType.STRING
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        finite = numbers.abs() != float("inf")
        if finite.all() and (numbers % 1 == 0).all():
            return ColumnType.INT
        return ColumnType.FLOAT if finite.all() else ColumnType.STRING
    if text.str.lower().isin(_TRUE_FALSE).all():
        return ColumnType.BOOL
    return ColumnType.STRING


def _column(name: str, values: pd.Series) -> ColumnProfile:
    missing = values.isna()
    if ptypes.is_object_dtype(values) or ptypes.is_string_dtype(values):
        text = values[~missing].astype(str).str.strip()
        blank = text == ""
        missing = missing | blank.reindex(values.index, fill_value=False)
        present = text[~blank]
        column_type = _text_type(present)
    else:
        present = values[~missing]
        if ptypes.is_bool_dtype(values):
            column_type = ColumnType.BOOL
        elif ptypes.is_integer_dtype(values):
            column_type = ColumnType.INT
        elif ptypes.is_float_dtype(values):
            # Whole numbers with gaps come back as floats: the node reads "3.0" as an int.
            column_type = _text_type(present) if len(present) else ColumnType.FLOAT
        else:  # dates and other kinds: the node reads them as text
            column_type = ColumnType.STRING
    unique_values = (
        len(values) >= _MIN_ROWS_FOR_UNIQUE_ID
        and not missing.any()
        and column_type in (ColumnType.INT, ColumnType.STRING)
        and present.nunique() == len(values)
    )
    named_like_id = bool(_ID_NAME.search(name.lower()))
    return ColumnProfile(
        name=name,
        type=column_type,
        has_missing=bool(missing.any()),
        person_id_candidate=unique_values or (named_like_id and not missing.any()),
    )


def profile_columns(frame: pd.DataFrame) -> list[ColumnProfile]:
    """Every column of `frame`, in order."""
    return [_column(str(name), frame[name]) for name in frame.columns]
