"""SQLite-backed node privacy ledger: one file per node, one set of rows per dataset."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from clients.ledger import (
    BudgetChange,
    DuplicateRelease,
    EntryStatus,
    Ledger,
    LedgerEntry,
    Quote,
    Reservation,
)
from vocab.accounting import epsilon_spent
from vocab.errors import BudgetExceeded, ConfigError, InternalError, JobSpecError
from vocab.privacy import Budget, DpSgdEvent

__all__ = ["SqliteLedger"]

_SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS budgets (
        dataset    TEXT PRIMARY KEY,
        epsilon    REAL NOT NULL CHECK (epsilon > 0),
        delta      REAL NOT NULL CHECK (delta >= 0 AND delta < 1),
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS budget_changes (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset     TEXT NOT NULL,
        old_epsilon REAL NOT NULL,
        old_delta   REAL NOT NULL,
        new_epsilon REAL NOT NULL,
        new_delta   REAL NOT NULL,
        changed_at  TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS entries (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset          TEXT NOT NULL,
        job_id           TEXT NOT NULL,
        round            INTEGER NOT NULL CHECK (round >= 0),
        noise_multiplier REAL NOT NULL CHECK (noise_multiplier > 0),
        sample_rate      REAL NOT NULL CHECK (sample_rate > 0 AND sample_rate <= 1),
        steps            INTEGER NOT NULL CHECK (steps >= 1),
        status           TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'cancelled')),
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entries_by_job ON entries (dataset, job_id, round)",
    # Second line of defence behind the check in reserve(): one live release per round.
    """CREATE UNIQUE INDEX IF NOT EXISTS entries_one_live_release
        ON entries (dataset, job_id, round) WHERE status != 'cancelled'""",
)

_ENTRY_COLUMNS = (
    "id, dataset, job_id, round, noise_multiplier, sample_rate, steps, status, "
    "created_at, updated_at"
)

_LIVE = (EntryStatus.RESERVED.value, EntryStatus.COMMITTED.value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        entry_id=int(row["id"]),
        dataset=str(row["dataset"]),
        job_id=str(row["job_id"]),
        round=int(row["round"]),
        noise_multiplier=float(row["noise_multiplier"]),
        sample_rate=float(row["sample_rate"]),
        steps=int(row["steps"]),
        status=EntryStatus(row["status"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        updated_at=datetime.fromisoformat(str(row["updated_at"])),
    )


def _event(row: sqlite3.Row) -> DpSgdEvent:
    return DpSgdEvent(
        noise_multiplier=float(row["noise_multiplier"]),
        sample_rate=float(row["sample_rate"]),
        steps=int(row["steps"]),
    )


class SqliteLedger(Ledger):
    """A dataset's privacy ledger in a SQLite file shared by all datasets of a node.

    Each call opens its own connection (the ClientApp is a short-lived process and several
    may run at once); a reservation's check and insert happen in one `BEGIN IMMEDIATE`
    transaction, so of two processes racing for the last budget exactly one wins.

    Args:
        path: The node's ledger file; it and its parent directories are created if needed.
        dataset: The dataset this ledger charges.
        budget: The dataset's budget from the node config. When the file holds a different
            one, it is replaced and the change recorded in `budget_changes`.

    Raises:
        ConfigError: If `dataset` is empty.
    """

    def __init__(self, path: Path, dataset: str, budget: Budget) -> None:
        if not isinstance(dataset, str) or not dataset.strip():
            raise ConfigError(
                f"dataset name must be a non-empty string, got {dataset!r}",
                "name the dataset in the node config",
            )
        self._path = Path(path)
        self._dataset = dataset
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # WAL lets readers proceed while a reservation holds the write lock; the mode is
            # stored in the file, so after the first open this changes nothing.
            conn.execute("PRAGMA journal_mode=WAL")
            with self._write(conn):
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > _SCHEMA_VERSION:
                    raise ConfigError(
                        f"ledger {self._path} has schema version {version}, this silobridge "
                        f"knows up to {_SCHEMA_VERSION}",
                        "upgrade silobridge on this node; never edit the ledger by hand",
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                self._record_budget(conn, budget)

    @property
    def dataset(self) -> str:
        return self._dataset

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._path

    def budget(self) -> Budget:
        with self._connect() as conn:
            return self._load_budget(conn)

    def spent(self) -> float:
        with self._connect() as conn, self._read(conn):
            budget = self._load_budget(conn)
            return epsilon_spent(self._live_events(conn), budget.delta)

    def quote(self, events: Sequence[DpSgdEvent]) -> Quote:
        with self._connect() as conn, self._read(conn):
            budget = self._load_budget(conn)
            history = self._live_events(conn)
        return self._quote(budget, history, list(events))

    def reserve(self, job_id: str, round: int, event: DpSgdEvent) -> Reservation:
        if not isinstance(job_id, str) or not job_id:
            raise JobSpecError(f"job id must be a non-empty string, got {job_id!r}")
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise JobSpecError(f"round must be a non-negative integer, got {round!r}")
        if not isinstance(event, DpSgdEvent):
            raise InternalError(f"reserve() got {type(event).__name__}, not a DpSgdEvent")
        with self._connect() as conn, self._write(conn):
            # A retried round is refused as a duplicate even when budget remains, and is
            # reported as such rather than as a budget refusal when none does.
            duplicate = conn.execute(
                "SELECT 1 FROM entries WHERE dataset = ? AND job_id = ? AND round = ? "
                "AND status IN (?, ?)",
                (self._dataset, job_id, round, *_LIVE),
            ).fetchone()
            if duplicate is not None:
                raise DuplicateRelease(dataset=self._dataset, job_id=job_id, round=round)
            budget = self._load_budget(conn)
            quote = self._quote(budget, self._live_events(conn), [event])
            if not quote.fits:
                raise BudgetExceeded(
                    requested=quote.requested,
                    spent=quote.spent,
                    remaining=quote.remaining,
                    budget=budget.epsilon,
                    scope=f"job {job_id!r} round {round}",
                )
            now = _now()
            cursor = conn.execute(
                "INSERT INTO entries (dataset, job_id, round, noise_multiplier, sample_rate, "
                "steps, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._dataset,
                    job_id,
                    round,
                    event.noise_multiplier,
                    event.sample_rate,
                    event.steps,
                    EntryStatus.RESERVED.value,
                    now,
                    now,
                ),
            )
            entry_id = cursor.lastrowid
        if entry_id is None:
            raise InternalError("SQLite returned no row id for a ledger insert")
        return Reservation(entry_id=entry_id, job_id=job_id, round=round, event=event)

    def commit(self, reservation: Reservation) -> None:
        self._resolve(reservation, EntryStatus.COMMITTED)

    def cancel(self, reservation: Reservation) -> None:
        self._resolve(reservation, EntryStatus.CANCELLED)

    def history(self) -> list[LedgerEntry]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE dataset = ? ORDER BY id",
                (self._dataset,),
            ).fetchall()
        return [_entry(row) for row in rows]

    def job_epsilon(self, job_id: str) -> float:
        with self._connect() as conn, self._read(conn):
            budget = self._load_budget(conn)
            rows = conn.execute(
                "SELECT noise_multiplier, sample_rate, steps FROM entries "
                "WHERE dataset = ? AND job_id = ? AND status IN (?, ?) ORDER BY id",
                (self._dataset, job_id, *_LIVE),
            ).fetchall()
        return epsilon_spent([_event(row) for row in rows], budget.delta)

    def budget_changes(self) -> list[BudgetChange]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT dataset, old_epsilon, old_delta, new_epsilon, new_delta, changed_at "
                "FROM budget_changes WHERE dataset = ? ORDER BY id",
                (self._dataset,),
            ).fetchall()
        return [
            BudgetChange(
                dataset=str(row["dataset"]),
                old=Budget(epsilon=float(row["old_epsilon"]), delta=float(row["old_delta"])),
                new=Budget(epsilon=float(row["new_epsilon"]), delta=float(row["new_delta"])),
                changed_at=datetime.fromisoformat(str(row["changed_at"])),
            )
            for row in rows
        ]

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: no implicit transactions, each one is opened explicitly.
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so the budget check and the insert that
        # depends on it cannot interleave with another writer's.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    @contextmanager
    def _read(conn: sqlite3.Connection) -> Iterator[None]:
        # One snapshot for the budget and the entries read together.
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _record_budget(self, conn: sqlite3.Connection, budget: Budget) -> None:
        row = conn.execute(
            "SELECT epsilon, delta FROM budgets WHERE dataset = ?", (self._dataset,)
        ).fetchone()
        now = _now()
        if row is None:
            conn.execute(
                "INSERT INTO budgets (dataset, epsilon, delta, updated_at) VALUES (?, ?, ?, ?)",
                (self._dataset, budget.epsilon, budget.delta, now),
            )
            return
        old = Budget(epsilon=float(row["epsilon"]), delta=float(row["delta"]))
        if old == budget:
            return
        conn.execute(
            "UPDATE budgets SET epsilon = ?, delta = ?, updated_at = ? WHERE dataset = ?",
            (budget.epsilon, budget.delta, now, self._dataset),
        )
        conn.execute(
            "INSERT INTO budget_changes (dataset, old_epsilon, old_delta, new_epsilon, "
            "new_delta, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (self._dataset, old.epsilon, old.delta, budget.epsilon, budget.delta, now),
        )

    def _load_budget(self, conn: sqlite3.Connection) -> Budget:
        row = conn.execute(
            "SELECT epsilon, delta FROM budgets WHERE dataset = ?", (self._dataset,)
        ).fetchone()
        if row is None:
            raise InternalError(f"ledger {self._path} has no budget for {self._dataset!r}")
        return Budget(epsilon=float(row["epsilon"]), delta=float(row["delta"]))

    def _live_events(self, conn: sqlite3.Connection) -> list[DpSgdEvent]:
        rows = conn.execute(
            "SELECT noise_multiplier, sample_rate, steps FROM entries "
            "WHERE dataset = ? AND status IN (?, ?) ORDER BY id",
            (self._dataset, *_LIVE),
        ).fetchall()
        return [_event(row) for row in rows]

    @staticmethod
    def _quote(budget: Budget, history: list[DpSgdEvent], events: list[DpSgdEvent]) -> Quote:
        spent = epsilon_spent(history, budget.delta)
        spent_after = epsilon_spent(history + events, budget.delta)
        return Quote(
            requested=epsilon_spent(events, budget.delta),
            spent=spent,
            spent_after=spent_after,
            remaining=max(0.0, budget.epsilon - spent),
            budget=budget,
            fits=spent_after <= budget.epsilon,
        )

    def _resolve(self, reservation: Reservation, status: EntryStatus) -> None:
        with self._connect() as conn, self._write(conn):
            updated = conn.execute(
                "UPDATE entries SET status = ?, updated_at = ? WHERE id = ? AND dataset = ? "
                "AND job_id = ? AND round = ? AND noise_multiplier = ? AND sample_rate = ? "
                "AND steps = ? AND status = ?",
                (
                    status.value,
                    _now(),
                    reservation.entry_id,
                    self._dataset,
                    reservation.job_id,
                    reservation.round,
                    reservation.event.noise_multiplier,
                    reservation.event.sample_rate,
                    reservation.event.steps,
                    EntryStatus.RESERVED.value,
                ),
            ).rowcount
            if updated == 1:
                return
            row = conn.execute(
                "SELECT status FROM entries WHERE id = ? AND dataset = ?",
                (reservation.entry_id, self._dataset),
            ).fetchone()
        found = "no such entry" if row is None else f"entry is {row['status']}"
        raise InternalError(
            f"cannot mark reservation {reservation.entry_id} (job {reservation.job_id!r} "
            f"round {reservation.round}) {status.value} on dataset {self._dataset!r}: "
            f"{found}, or it does not match the reservation"
        )
