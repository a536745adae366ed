"""Feature groups: one `[features."<pattern>"]` table for many columns with shared bounds.

A pattern names its columns with braces, as a shell would: `occupation_{clerk,driver,nurse}`
lists them, `region_{1..12}` counts (`{01..12}` keeps the zero padding), and several braces
multiply. The spec is expanded where it is written, so every node gets the same columns in
the same order. A `*` is refused: matching it needs each department's column names, which
differ by node and are not the analyst's to read (list them from `silobridge job schema`
once it exists, or name them with braces).
"""

from __future__ import annotations

import re

from vocab.errors import JobSpecError

__all__ = ["MAX_GROUP_COLUMNS", "expand_columns"]

MAX_GROUP_COLUMNS = 5000
"""Columns one pattern may stand for."""

_BRACES = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _alternatives(pattern: str, inner: str) -> list[str]:
    counted = _RANGE.match(inner)
    if counted is None:
        parts = [p.strip() for p in inner.split(",")]
        if len(parts) < 2 or not all(parts):
            raise JobSpecError(
                f"[features.{pattern!r}]: `{{{inner}}}` must list two or more names, or count "
                "a range",
                "e.g. occupation_{clerk,driver} or region_{1..12}",
            )
        return parts
    low_text, high_text = counted.groups()
    low, high = int(low_text), int(high_text)
    if high < low or high - low >= MAX_GROUP_COLUMNS:
        raise JobSpecError(
            f"[features.{pattern!r}]: the range `{{{inner}}}` must count up, by at most "
            f"{MAX_GROUP_COLUMNS} columns",
            "e.g. region_{1..12}",
        )
    width = len(low_text) if low_text.startswith("0") and len(low_text) > 1 else 0
    return [str(i).zfill(width) for i in range(low, high + 1)]


def expand_columns(pattern: str) -> list[str]:
    """The column names `pattern` stands for, in order (itself when it has no braces).

    Raises:
        JobSpecError: for a `*`, an unbalanced or empty brace, or too many columns.
    """
    if "*" in pattern or "?" in pattern:
        raise JobSpecError(
            f"[features.{pattern!r}]: wildcards are not expanded: each department has its "
            "own columns, and a spec must name the same ones for all of them",
            "name the columns with braces, e.g. occupation_{clerk,driver,nurse} or region_{1..12}",
        )
    match = _BRACES.search(pattern)
    if match is None:
        if "{" in pattern or "}" in pattern:
            raise JobSpecError(
                f"[features.{pattern!r}]: unbalanced braces",
                "write a group as prefix_{a,b,c} or prefix_{1..12}",
            )
        return [pattern]
    names: list[str] = []
    for part in _alternatives(pattern, match.group(1)):
        names.extend(expand_columns(pattern[: match.start()] + part + pattern[match.end() :]))
        if len(names) > MAX_GROUP_COLUMNS:
            raise JobSpecError(
                f"[features.{pattern!r}] stands for more than {MAX_GROUP_COLUMNS} columns",
                "split the group",
            )
    return names
