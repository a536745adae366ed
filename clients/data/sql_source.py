"""SQL data source: SQLAlchemy SELECTs only the named columns of one table or view."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.data.data_source import DataSource, check_requested_columns
from vocab.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import URL, ColumnClause, Engine

__all__ = ["SqlSource"]

_FIX_URL = "check `url` under [data] in the node config"

log = logging.getLogger(__name__)


class SqlSource(DataSource):
    """A table (or view) behind a SQLAlchemy URL; SQLite works with no extra driver.

    Rows come back in the order the database returns them; plain SQL promises none, so
    configs that rely on row order (no `person_id`) should prefer files or SQLite tables.
    """

    def __init__(self, url: str, table: str) -> None:
        self._url = url
        self._table = table

    @property
    def description(self) -> str:
        return f"SQL table `{self._table}` at {_redacted(self._url)}"

    def available_columns(self) -> list[str]:
        import sqlalchemy as sa

        with self._engine() as engine:
            try:
                inspector = sa.inspect(engine)
                tables = inspector.get_table_names() + inspector.get_view_names()
                if self._table not in tables:
                    # The database's other tables are for the operator, not the coordinator.
                    log.warning(
                        "%s does not exist; the database has: %s",
                        self.description, ", ".join(sorted(tables)) or "(no tables)",
                    )  # fmt: skip
                    raise DataError(
                        f"{self.description} does not exist; the node's log lists the tables",
                        "fix `table` under [data] in the node config",
                    )
                return [str(column["name"]) for column in inspector.get_columns(self._table)]
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(f"cannot inspect {self.description}: {exc}", _FIX_URL) from None

    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        import pandas as pd
        import sqlalchemy as sa

        wanted = check_requested_columns(columns, self.available_columns(), self.description)
        selected: list[ColumnClause[Any]] = [sa.column(name) for name in wanted]
        with self._engine() as engine:
            try:
                with engine.connect() as connection:
                    # sa.column / sa.table quote each identifier as the dialect requires.
                    rows = connection.execute(
                        sa.select(*selected).select_from(sa.table(self._table))
                    ).all()
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(f"cannot read {self.description}: {exc}", _FIX_URL) from None
        return pd.DataFrame([tuple(row) for row in rows], columns=wanted)

    @contextmanager
    def _engine(self) -> Iterator[Engine]:
        import sqlalchemy as sa

        try:
            url = sa.make_url(self._url)
            self._check_sqlite_file(url)
            engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise DataError(f"cannot open {self.description}: {exc}", _FIX_URL) from None
        try:
            yield engine
        finally:
            engine.dispose()

    def _check_sqlite_file(self, url: URL) -> None:
        # SQLite would silently create a missing file and then report "no such table".
        database = url.database
        if not url.drivername.startswith("sqlite") or not database:
            return
        if database == ":memory:" or database.startswith("file:"):
            return
        if not Path(database).is_file():
            raise DataError(f"SQLite database file {database} does not exist", _FIX_URL)


def _redacted(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unparseable URL)"
