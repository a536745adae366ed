"""Data source interface: read only the named columns of a node's data, and its factory."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from clients.node_config import DataSourceSpec, SourceKind
from vocab.errors import DataError, InternalError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataSource", "check_requested_columns", "open_source"]

_T = TypeVar("_T")


class DataSource(abc.ABC):
    """A department's table. Implementations never load a column nobody asked for."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Names the source for messages, e.g. "CSV file /data/loans.csv"."""

    @abc.abstractmethod
    def available_columns(self) -> list[str]:
        """Returns the source's column names in source order.

        Raises:
            DataError: The source is missing or unreadable.
        """

    @abc.abstractmethod
    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        """Reads the named columns, in the order given, rows in source order.

        Values arrive as the source holds them (strings for CSV); `schema_check` converts.

        Args:
            columns: Column names; duplicates are read once.

        Raises:
            DataError: The source is missing, unreadable or malformed, or lacks a column.
        """


def check_requested_columns(
    requested: Sequence[str], available: Sequence[str], description: str
) -> list[str]:
    """Returns `requested` without duplicates, after checking the source has each one.

    Raises:
        DataError: Nothing was requested, or some column is not in the source.
    """
    wanted = list(dict.fromkeys(requested))
    if not wanted:
        raise InternalError(f"read of {description} asked for no columns")
    have = set(available)
    missing = [name for name in wanted if name not in have]
    if missing:
        # Only names the job asked for: the source's other columns are not for the
        # coordinator to learn.
        listed = ", ".join(f"`{m}`" for m in missing)
        raise DataError(
            f"{description} has no column {listed}",
            "rename the column in the data, or fix its name under [columns] in the node config",
            public=f"the node's data has no column {listed}",
        )
    return wanted


def open_source(spec: DataSourceSpec) -> DataSource:
    """Returns the data source a node config describes; nothing is read yet.

    Implementations are imported here, not at module load, so a node pays for pyarrow or
    SQLAlchemy only when its config uses them.
    """
    if spec.kind is SourceKind.CSV:
        from clients.data.csv_source import CsvSource

        return CsvSource(_required(spec.path, spec))
    if spec.kind is SourceKind.PARQUET:
        from clients.data.parquet_source import ParquetSource

        return ParquetSource(_required(spec.path, spec))
    if spec.kind is SourceKind.SQL:
        from clients.data.sql_source import SqlSource

        return SqlSource(_required(spec.url, spec), _required(spec.table, spec))
    raise InternalError(f"no data source for {spec.kind}")


def _required(value: _T | None, spec: DataSourceSpec) -> _T:
    if value is None:
        raise InternalError(f"data source spec {spec} lacks a field its kind needs")
    return value
