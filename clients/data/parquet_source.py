"""Parquet data source: pyarrow reads only the named columns' column chunks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from clients.data.data_source import DataSource, check_requested_columns
from vocab.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ParquetSource"]

_FIX_PATH = "check `path` under [data] in the node config"
_FIX_FILE = "check that the file is Parquet (not CSV renamed) and was written completely"


class ParquetSource(DataSource):
    """A single Parquet file."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def description(self) -> str:
        return f"Parquet file {self._path}"

    def available_columns(self) -> list[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._check_file()
        try:
            names: list[str] = pq.read_schema(self._path).names
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read {self.description}: {exc}", _FIX_FILE) from None
        return names

    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = check_requested_columns(columns, self.available_columns(), self.description)
        try:
            table = pq.read_table(self._path, columns=wanted)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read {self.description}: {exc}", _FIX_FILE) from None
        frame: pd.DataFrame = table.to_pandas()
        return frame[wanted]

    def _check_file(self) -> None:
        if not self._path.is_file():
            problem = "is a folder, not a file" if self._path.is_dir() else "does not exist"
            raise DataError(f"{self.description} {problem}", _FIX_PATH)
