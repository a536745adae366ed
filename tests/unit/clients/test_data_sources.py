"""Data sources: one contract run against CSV, Parquet and SQLite, then each one's failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clients.data.csv_source import CsvSource
from clients.data.data_source import DataSource, open_source
from clients.data.parquet_source import ParquetSource
from clients.data.sql_source import SqlSource
from clients.node_config import DataSourceSpec, SourceKind
from vocab.errors import DataError

# Column names a naive reader would trip over: a space, an SQL keyword, a quote.
ROWS = {
    "age": [34, 51, 27],
    "my col": ["a", "b", "c"],
    "select": [1.5, 2.5, 3.5],
    'quo"te': ["x", "y", "z"],
    "ssn": ["111-11-1111", "222-22-2222", "333-33-3333"],
}


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False)


def _write_sqlite(path: Path, frame: pd.DataFrame, table: str = "people") -> None:
    with sqlite3.connect(path) as connection:
        columns = ", ".join('"' + name.replace('"', '""') + '"' for name in frame.columns)
        marks = ", ".join("?" for _ in frame.columns)
        connection.execute(f'CREATE TABLE "{table}" ({columns})')
        connection.executemany(
            f'INSERT INTO "{table}" VALUES ({marks})', frame.itertuples(index=False)
        )
    connection.close()


class _DataSourceContract:
    """What every DataSource must do; subclasses say how to store ROWS."""

    def make_source(self, folder: Path, frame: pd.DataFrame) -> DataSource:
        raise NotImplementedError

    @pytest.fixture
    def source(self, tmp_path: Path) -> DataSource:
        return self.make_source(tmp_path, pd.DataFrame(ROWS))

    def test_lists_columns_in_source_order(self, source: DataSource) -> None:
        assert source.available_columns() == list(ROWS)

    def test_reads_only_the_named_columns_in_the_given_order(self, source: DataSource) -> None:
        frame = source.read(["select", "age", "my col"])

        assert list(frame.columns) == ["select", "age", "my col"]
        assert len(frame) == 3
        assert [str(v) for v in frame["my col"]] == ["a", "b", "c"]
        assert [float(v) for v in frame["select"]] == [1.5, 2.5, 3.5]
        assert [int(v) for v in frame["age"]] == [34, 51, 27]

    def test_reads_an_awkward_name(self, source: DataSource) -> None:
        assert [str(v) for v in source.read(['quo"te'])['quo"te']] == ["x", "y", "z"]

    def test_duplicate_request_is_read_once(self, source: DataSource) -> None:
        assert list(source.read(["age", "age"]).columns) == ["age"]

    def test_missing_column_is_named_but_no_other_column_is(self, source: DataSource) -> None:
        with pytest.raises(DataError) as info:
            source.read(["age", "income"])
        assert "`income`" in info.value.message
        # The refusal reaches the coordinator: columns the job did not name stay unnamed.
        assert "my col" not in info.value.message
        assert source.description in info.value.message

    def test_description_names_the_location(self, source: DataSource, tmp_path: Path) -> None:
        assert str(tmp_path) in source.description


class TestCsvSource(_DataSourceContract):
    def make_source(self, folder: Path, frame: pd.DataFrame) -> DataSource:
        path = folder / "people.csv"
        _write_csv(path, frame)
        return open_source(DataSourceSpec(SourceKind.CSV, path, None, None))

    def test_factory_builds_a_csv_source(self, source: DataSource) -> None:
        assert isinstance(source, CsvSource)

    def test_values_are_strings_and_empty_fields_missing(self, tmp_path: Path) -> None:
        path = tmp_path / "t.csv"
        path.write_text('a,b\n1,NA\n,"x, y"\n', encoding="utf-8")

        frame = CsvSource(path).read(["a", "b"])

        assert frame["a"].tolist()[0] == "1"
        assert pd.isna(frame["a"].tolist()[1])
        assert frame["b"].tolist() == ["NA", "x, y"]

    def test_quoted_newline_and_byte_order_mark(self, tmp_path: Path) -> None:
        path = tmp_path / "t.csv"
        path.write_bytes('\ufeffa,b\n1,"two\nlines"\n3,4\n'.encode())

        source = CsvSource(path)

        assert source.available_columns() == ["a", "b"]
        assert source.read(["b"])["b"].tolist() == ["two\nlines", "4"]

    @pytest.mark.parametrize(
        ("body", "row", "fields"),
        [("1,2,3\n4,5,6,7\n8,9,10\n", 2, 4), ("1,2,3\n4,5,6\n7,8\n", 3, 2)],
    )
    def test_malformed_row_is_named_in_the_nodes_log_only(
        self, tmp_path: Path, body: str, row: int, fields: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "bad.csv"
        path.write_text("a,b,secret\n" + body, encoding="utf-8")

        with pytest.raises(DataError) as info:
            CsvSource(path).read(["a"])

        # The refusal travels to the coordinator: no row number, count or value.
        message = info.value.message
        assert str(path) in message and "malformed" in message
        assert "row " not in message and "6,7" not in message and "7,8" not in message
        # The operator finds the row in the node's own log.
        assert f"data row {row} has {fields} fields" in caplog.text

    def test_unterminated_quote_is_malformed(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.csv"
        path.write_text('a,b\n1,2\n"3,4\n', encoding="utf-8")
        with pytest.raises(DataError, match="malformed") as info:
            CsvSource(path).read(["a"])
        assert str(path) in info.value.message

    def test_invalid_utf8_in_a_read_column(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.csv"
        path.write_bytes(b"a,b\n1,\xff\n")
        with pytest.raises(DataError) as info:
            CsvSource(path).read(["b"])
        assert str(path) in info.value.message
        assert "UTF-8" in info.value.hint

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.csv"
        with pytest.raises(DataError, match="does not exist") as info:
            CsvSource(path).read(["a"])
        assert str(path) in info.value.message
        assert "[data]" in info.value.hint

    def test_folder_instead_of_file(self, tmp_path: Path) -> None:
        with pytest.raises(DataError, match="is a folder"):
            CsvSource(tmp_path).available_columns()

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.csv"
        path.write_text("", encoding="utf-8")
        with pytest.raises(DataError, match="no header row") as info:
            CsvSource(path).read(["a"])
        assert str(path) in info.value.message

    def test_header_only_file_reads_zero_rows(self, tmp_path: Path) -> None:
        path = tmp_path / "header.csv"
        path.write_text("a,b\n", encoding="utf-8")
        assert len(CsvSource(path).read(["a"])) == 0


class TestParquetSource(_DataSourceContract):
    def make_source(self, folder: Path, frame: pd.DataFrame) -> DataSource:
        path = folder / "people.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        return open_source(DataSourceSpec(SourceKind.PARQUET, path, None, None))

    def test_factory_builds_a_parquet_source(self, source: DataSource) -> None:
        assert isinstance(source, ParquetSource)

    def test_keeps_the_stored_types(self, source: DataSource) -> None:
        frame = source.read(["age", "select"])
        assert str(frame["age"].dtype) == "int64"
        assert str(frame["select"].dtype) == "float64"

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.parquet"
        with pytest.raises(DataError, match="does not exist") as info:
            ParquetSource(path).read(["a"])
        assert str(path) in info.value.message

    def test_file_that_is_not_parquet(self, tmp_path: Path) -> None:
        path = tmp_path / "fake.parquet"
        path.write_text("a,b\n1,2\n", encoding="utf-8")
        with pytest.raises(DataError, match="cannot read") as info:
            ParquetSource(path).available_columns()
        assert str(path) in info.value.message
        assert "Parquet" in info.value.hint


class TestSqlSource(_DataSourceContract):
    def make_source(self, folder: Path, frame: pd.DataFrame) -> DataSource:
        path = folder / "people.db"
        _write_sqlite(path, frame)
        return open_source(DataSourceSpec(SourceKind.SQL, None, f"sqlite:///{path}", "people"))

    def test_factory_builds_a_sql_source(self, source: DataSource) -> None:
        assert isinstance(source, SqlSource)

    def test_reads_a_view(self, tmp_path: Path) -> None:
        path = tmp_path / "v.db"
        _write_sqlite(path, pd.DataFrame(ROWS))
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE VIEW adults AS SELECT age FROM people WHERE age > 30")
        connection.close()

        frame = SqlSource(f"sqlite:///{path}", "adults").read(["age"])

        assert frame["age"].tolist() == [34, 51]

    def test_missing_table_lists_the_tables_in_the_nodes_log_only(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "t.db"
        _write_sqlite(path, pd.DataFrame(ROWS), table="loans")
        with pytest.raises(DataError) as info:
            SqlSource(f"sqlite:///{path}", "lones").read(["age"])
        assert "`lones`" in info.value.message
        assert "loans" not in info.value.message
        assert "the database has: loans" in caplog.text
        assert "`table`" in info.value.hint

    def test_missing_database_file_is_not_created(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.db"
        with pytest.raises(DataError, match="does not exist") as info:
            SqlSource(f"sqlite:///{path}", "people").read(["age"])
        assert str(path) in info.value.message
        assert not path.exists()

    def test_unparseable_url(self) -> None:
        with pytest.raises(DataError, match="cannot open"):
            SqlSource("no-such-dialect://x/y", "people").available_columns()

    def test_password_is_hidden_in_messages(self) -> None:
        source = SqlSource("postgresql://bob:hunter2@db.example/loans", "people")
        assert "hunter2" not in source.description
