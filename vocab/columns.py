"""Column vocabulary: the data-sharing law's three classes and the value types nodes declare."""

from __future__ import annotations

import enum


class ColumnClass(enum.Enum):
    """How the data-sharing law classifies a column."""

    OPEN = "open"  # may be a feature, target or group-by
    CONDITIONAL = "conditional"  # only with an approval naming the job
    RESTRICTED = "restricted"  # never used, never read into a training frame


class ColumnType(enum.Enum):
    """Value type a node declares for a column; data is checked against it."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
