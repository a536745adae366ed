"""CSV data source: reads only the named columns, as strings, and rejects malformed rows."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.data.data_source import DataSource, check_requested_columns
from vocab.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CsvSource"]

_FIX_PATH = "check `path` under [data] in the node config"

log = logging.getLogger(__name__)


@dataclass
class _BadRows:
    """Collects rows whose field count differs from the header's."""

    count: int = 0
    first: tuple[int | None, int, int] | None = None  # (row number, expected, actual)

    def __call__(self, row: Any) -> str:
        self.count += 1
        if self.first is None:
            self.first = (row.number, row.expected_columns, row.actual_columns)
        return "skip"


class CsvSource(DataSource):
    """A UTF-8 CSV file with a header row; an empty field is a missing value.

    Read with pyarrow rather than pandas: pandas' C parser with `usecols` silently accepts
    rows that carry extra fields, so a shifted row would go unnoticed. pyarrow reports every
    row whose field count differs from the header, with its number, while still converting
    only the named columns. Messages never quote row text: it could hold restricted values.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def description(self) -> str:
        return f"CSV file {self._path}"

    def available_columns(self) -> list[str]:
        self._check_file()
        try:
            with self._path.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), None)
        except UnicodeDecodeError:
            raise DataError(
                f"{self.description}: header is not UTF-8 text", "save the file as UTF-8"
            ) from None
        except (OSError, csv.Error) as exc:
            raise DataError(f"cannot read {self.description}: {exc}", _FIX_PATH) from None
        if not header:
            raise DataError(
                f"{self.description} is empty (no header row)",
                "write the column names on the first line, then one row per record",
            )
        return header

    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        wanted = check_requested_columns(columns, self.available_columns(), self.description)
        bad_rows = _BadRows()
        try:
            table = pa_csv.read_csv(
                self._path,
                # Single-threaded so that bad rows come with their row number.
                read_options=pa_csv.ReadOptions(use_threads=False),
                parse_options=pa_csv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=bad_rows
                ),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=wanted,
                    column_types={name: pa.string() for name in wanted},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except (OSError, pa.ArrowException) as exc:
            # The parser's text may quote a row: it stays in the node's own log.
            log.warning("cannot parse %s: %s", self.description, exc)
            raise DataError(
                f"cannot parse {self.description}; the node's log names the row",
                "fix the file at that row (fields must be UTF-8; quote values with commas)",
            ) from None
        if bad_rows.first is not None:
            number, expected, actual = bad_rows.first
            # pyarrow counts the header as row 1; messages everywhere count data rows.
            where = f"data row {number - 1}" if number is not None else "a row"
            # Which rows, and how many, are facts about the data: for the operator only.
            log.warning(
                "%s is malformed: %d row(s) have the wrong number of fields; first: %s has "
                "%d fields, the header %d", self.description, bad_rows.count, where, actual,
                expected,
            )  # fmt: skip
            raise DataError(
                f"{self.description} is malformed: rows have the wrong number of fields; the "
                "node's log names them",
                "fix those rows: every row needs one field per header column "
                '(quote values that contain commas, e.g. "Smith, J")',
            )
        frame: pd.DataFrame = table.to_pandas()
        return frame[wanted]

    def _check_file(self) -> None:
        if not self._path.is_file():
            problem = "is a folder, not a file" if self._path.is_dir() else "does not exist"
            raise DataError(f"{self.description} {problem}", _FIX_PATH)
