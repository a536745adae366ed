"""SQLite-backed node privacy ledger: one file per node, one set of rows per dataset."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from clients.ledger.ledger import (
    ApprovalCap,
    ApprovalExhausted,
    BudgetChange,
    DuplicateRelease,
    EntryStatus,
    Ledger,
    LedgerEntry,
    Quote,
    Requester,
    Reservation,
    Scope,
    ScopeBudget,
    ScopeKind,
)
from clients.ledger.round_lock import RoundLock
from vocab.accounting import epsilon_spent
from vocab.errors import ConfigError, InternalError, JobSpecError, PolicyRefusal
from vocab.privacy import (
    Budget,
    DpSgdEvent,
    GaussianEvent,
    GaussianThresholdEvent,
    LaplaceEvent,
    PrivacyEvent,
)
from vocab.privacy import event_from_params as _event_from_params
from vocab.sqlite_tx import connect, ensure_schema, read_snapshot, write_locked
from vocab.wire import ScopeQuote

__all__ = ["SqliteLedger"]

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 2

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS periods (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset   TEXT NOT NULL,
        name      TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        UNIQUE (dataset, name)
    )""",
    """CREATE TABLE IF NOT EXISTS scope_budgets (
        dataset    TEXT NOT NULL,
        period     TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('period', 'purpose', 'analyst')),
        key        TEXT NOT NULL,
        epsilon    REAL NOT NULL CHECK (epsilon > 0),
        delta      REAL NOT NULL CHECK (delta >= 0 AND delta < 1),
        set_at     TEXT NOT NULL,
        PRIMARY KEY (dataset, period, kind, key)
    )""",
    """CREATE TABLE IF NOT EXISTS budget_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        old_epsilon REAL,
        old_delta   REAL,
        new_epsilon REAL NOT NULL,
        new_delta   REAL NOT NULL,
        source      TEXT NOT NULL,
        changed_at  TEXT NOT NULL
    )""",
    # The node config's [budget] as last applied: an edit of the file is applied once,
    # and does not undo budgets the officer set since with `silobridge budget set`.
    """CREATE TABLE IF NOT EXISTS config_budget (
        dataset TEXT PRIMARY KEY,
        epsilon REAL NOT NULL,
        delta   REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS releases (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset    TEXT NOT NULL,
        period     TEXT NOT NULL,
        job_id     TEXT NOT NULL,
        round      INTEGER NOT NULL CHECK (round >= 0),
        purpose    TEXT NOT NULL,
        analyst    TEXT NOT NULL,
        project    TEXT NOT NULL,
        mechanism  TEXT NOT NULL,
        params     TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'cancelled')),
        owner      TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS releases_by_job ON releases (dataset, job_id, round)",
    # Second line of defence behind the check in reserve(): one live release per round.
    """CREATE UNIQUE INDEX IF NOT EXISTS releases_one_live_per_round
        ON releases (dataset, job_id, round) WHERE status != 'cancelled'""",
    """CREATE TABLE IF NOT EXISTS replies (
        release_id INTEGER PRIMARY KEY REFERENCES releases (id),
        payload    BLOB NOT NULL
    )""",
    # Which jobs ran under which signed approval (by digest): the live releases of these
    # jobs together stay within the approval's total epsilon.
    """CREATE TABLE IF NOT EXISTS approval_uses (
        dataset    TEXT NOT NULL,
        digest     TEXT NOT NULL,
        job_id     TEXT NOT NULL,
        first_used TEXT NOT NULL,
        PRIMARY KEY (dataset, digest, job_id)
    )""",
)

_RELEASE_COLUMNS = (
    "id, dataset, period, job_id, round, purpose, analyst, project, mechanism, params, "
    "status, owner, fingerprint, created_at, updated_at"
)

_LIVE = (EntryStatus.RESERVED.value, EntryStatus.COMMITTED.value)
_FIRST_PERIOD_FROM_V1 = "initial"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _event(row: sqlite3.Row) -> PrivacyEvent:
    try:
        return _event_from_params(str(row["mechanism"]), json.loads(str(row["params"])))
    except (ConfigError, ValueError) as err:
        raise InternalError(f"ledger row {row['id']} holds an unreadable release: {err}") from err


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        entry_id=int(row["id"]),
        dataset=str(row["dataset"]),
        period=str(row["period"]),
        job_id=str(row["job_id"]),
        round=int(row["round"]),
        requester=Requester(str(row["purpose"]), str(row["analyst"]), str(row["project"])),
        event=_event(row),
        status=EntryStatus(row["status"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        updated_at=datetime.fromisoformat(str(row["updated_at"])),
    )


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ConfigError(
            f"{what} must be a non-empty string of at most 200 characters, got {value!r}",
            f"give the {what}",
        )
    return value


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Moves a schema-1 ledger (one budget per dataset, DP-SGD only) into schema 2.

    Every release keeps its parameters and status; they land in a period named "initial"
    whose total is the old budget, and old budget changes become period-total changes.
    """
    now = _now()
    for row in conn.execute("SELECT dataset, epsilon, delta, updated_at FROM budgets"):
        ds = row["dataset"]
        conn.execute(
            "INSERT INTO periods (dataset, name, opened_at) VALUES (?, ?, ?)",
            (ds, _FIRST_PERIOD_FROM_V1, row["updated_at"]),
        )
        conn.execute(
            "INSERT INTO scope_budgets VALUES (?, ?, 'period', ?, ?, ?, ?)",
            (ds, _FIRST_PERIOD_FROM_V1, _FIRST_PERIOD_FROM_V1, row["epsilon"], row["delta"], now),
        )
        conn.execute(
            "INSERT INTO config_budget VALUES (?, ?, ?)", (ds, row["epsilon"], row["delta"])
        )
    for row in conn.execute("SELECT * FROM budget_changes ORDER BY id"):
        conn.execute(
            "INSERT INTO budget_log (dataset, kind, key, old_epsilon, old_delta, new_epsilon, "
            "new_delta, source, changed_at) VALUES (?, 'period', ?, ?, ?, ?, ?, 'config', ?)",
            (row["dataset"], _FIRST_PERIOD_FROM_V1, row["old_epsilon"], row["old_delta"],
             row["new_epsilon"], row["new_delta"], row["changed_at"]),
        )  # fmt: skip
    for row in conn.execute("SELECT * FROM entries ORDER BY id"):
        params = DpSgdEvent(
            float(row["noise_multiplier"]), float(row["sample_rate"]), int(row["steps"])
        ).params()
        conn.execute(
            f"INSERT INTO releases ({_RELEASE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, '', '', '', 'subsampled_gaussian', ?, ?, '', '', ?, ?)",
            (row["id"], row["dataset"], _FIRST_PERIOD_FROM_V1, row["job_id"], row["round"],
             json.dumps(params), row["status"], row["created_at"], row["updated_at"]),
        )  # fmt: skip
    for table in ("entries", "budget_changes", "budgets"):
        conn.execute(f"DROP TABLE {table}")


class SqliteLedger(Ledger):
    """A dataset's privacy ledger in a SQLite file shared by all datasets of a node.

    Each call opens its own connection (the ClientApp is a short-lived process and several
    may run at once); a reservation's checks and insert happen in one `BEGIN IMMEDIATE`
    transaction, so of two processes racing for the last budget exactly one wins.

    Args:
        path: The node's ledger file; it and its parent directories are created if needed.
        dataset: The dataset this ledger charges.
        budget: The node config's [budget]. It becomes the first period's total on a new
            dataset; later, a changed value is applied to the current period's total (and
            recorded); an unchanged one leaves budgets set with `set_budget` alone.
        first_period: The name of the first period, when the dataset is new.

    Raises:
        ConfigError: If `dataset` is empty or the file is from a newer silobridge.
    """

    def __init__(
        self, path: Path, dataset: str, budget: Budget, first_period: str | None = None
    ) -> None:
        if not isinstance(dataset, str) or not dataset.strip():
            raise ConfigError(
                f"dataset name must be a non-empty string, got {dataset!r}",
                "name the dataset in the node config",
            )
        self._path = Path(path)
        self._dataset = dataset
        self._locks = RoundLock(self._path)
        self._held: dict[int, tuple[int, Path]] = {}  # entry id -> (lock fd, lock file)
        self.config_change: BudgetChange | None = None
        """The change the node config's [budget] made on opening, for the audit log."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # WAL lets readers proceed while a reservation holds the write lock; the mode is
            # stored in the file, so after the first open this changes nothing.
            conn.execute("PRAGMA journal_mode=WAL")
            with write_locked(conn):
                version = ensure_schema(
                    conn, _SCHEMA, _SCHEMA_VERSION, what=f"ledger {self._path}",
                    upgrade_hint="upgrade silobridge on this node; never edit the ledger by hand",
                )  # fmt: skip
                if version == 1:
                    _migrate_v1(conn)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                changed = self._apply_config_budget(conn, budget, first_period)
        if changed:
            self.config_change = self.budget_changes()[-1]

    @property
    def dataset(self) -> str:
        return self._dataset

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._path

    def period(self) -> str:
        with self._connect() as conn:
            return self._period(conn)

    def budget(self) -> Budget:
        with self._connect() as conn, read_snapshot(conn):
            period = self._period(conn)
            return self._budgets(conn, period)[Scope(ScopeKind.PERIOD, period)]

    def budgets(self) -> list[ScopeBudget]:
        with self._connect() as conn, read_snapshot(conn):
            period = self._period(conn)
            rows = conn.execute(
                "SELECT kind, key, epsilon, delta, set_at FROM scope_budgets "
                "WHERE dataset = ? AND period = ? ORDER BY kind != 'period', kind, key",
                (self._dataset, period),
            ).fetchall()
        return [
            ScopeBudget(
                Scope(ScopeKind(row["kind"]), str(row["key"])),
                Budget(float(row["epsilon"]), float(row["delta"])),
                datetime.fromisoformat(str(row["set_at"])),
            )
            for row in rows
        ]

    def spent(self, scope: Scope | None = None) -> float:
        with self._connect() as conn, read_snapshot(conn):
            period = self._period(conn)
            target = scope or Scope(ScopeKind.PERIOD, period)
            budgets = self._budgets(conn, period)
            delta = budgets.get(target, budgets[Scope(ScopeKind.PERIOD, period)]).delta
            return epsilon_spent(self._live_events(conn, period, target), delta)

    def lifetime_spent(self) -> float:
        with self._connect() as conn, read_snapshot(conn):
            period = self._period(conn)
            delta = self._budgets(conn, period)[Scope(ScopeKind.PERIOD, period)].delta
            rows = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? "
                "AND status IN (?, ?) ORDER BY id",
                (self._dataset, *_LIVE),
            ).fetchall()
        return epsilon_spent([_event(row) for row in rows], delta)

    def quote(self, events: Sequence[PrivacyEvent], requester: Requester | None = None) -> Quote:
        with self._connect() as conn, read_snapshot(conn):
            return self._quote(conn, list(events), requester or Requester())

    def reserve(
        self,
        job_id: str,
        round: int,
        event: PrivacyEvent,
        requester: Requester | None = None,
        fingerprint: str = "",
        job_budget: Budget | None = None,
        approvals: Sequence[ApprovalCap] = (),
    ) -> Reservation:
        if not isinstance(job_id, str) or not job_id:
            raise JobSpecError(f"job id must be a non-empty string, got {job_id!r}")
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise JobSpecError(f"round must be a non-negative integer, got {round!r}")
        if not isinstance(
            event, DpSgdEvent | GaussianEvent | LaplaceEvent | GaussianThresholdEvent
        ):
            raise InternalError(f"reserve() got {type(event).__name__}, not a privacy event")
        who = requester or Requester()
        # Held until commit or cancel, or until this process dies: whoever takes it next
        # knows no live process is answering the round.
        fd = self._locks.acquire(self._dataset, job_id, round)
        if fd is None:
            raise DuplicateRelease(
                dataset=self._dataset, job_id=job_id, round=round,
                why="another attempt is answering it now",
            )  # fmt: skip
        try:
            reservation = self._reserve_locked(
                job_id, round, event, who, fingerprint, job_budget, approvals
            )
        except BaseException:
            self._locks.release(fd)
            raise
        self._held[reservation.entry_id] = (fd, self._locks.path(self._dataset, job_id, round))
        return reservation

    def _reserve_locked(
        self,
        job_id: str,
        round: int,
        event: PrivacyEvent,
        who: Requester,
        fingerprint: str,
        job_budget: Budget | None,
        approvals: Sequence[ApprovalCap],
    ) -> Reservation:
        with self._connect() as conn, write_locked(conn):
            live = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? AND job_id = ? "
                "AND round = ? AND status IN (?, ?)",
                (self._dataset, job_id, round, *_LIVE),
            ).fetchone()
            if live is not None:
                # Checked before the budget: a retry is reported as what it is.
                return self._resume(conn, live, event, fingerprint)
            self._check_job(conn, job_id, event, fingerprint, job_budget)
            self._check_approvals(conn, job_id, [event], approvals, record=True)
            quote = self._quote(conn, [event], who)
            if not quote.fits:
                raise quote.refusal(f"job {job_id!r} round {round}")
            now = _now()
            cursor = conn.execute(
                f"INSERT INTO releases ({_RELEASE_COLUMNS}) "
                "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._dataset, self._period(conn), job_id, round, who.purpose, who.analyst,
                 who.project, event.mechanism.value, json.dumps(event.params()),
                 EntryStatus.RESERVED.value, f"pid {os.getpid()}", fingerprint, now, now),
            )  # fmt: skip
            entry_id = cursor.lastrowid
        if entry_id is None:
            raise InternalError("SQLite returned no row id for a ledger insert")
        return Reservation(entry_id=entry_id, job_id=job_id, round=round, event=event)

    def commit(self, reservation: Reservation, reply: bytes | None = None) -> None:
        self._resolve(reservation, EntryStatus.COMMITTED, reply)

    def cancel(self, reservation: Reservation) -> None:
        self._resolve(reservation, EntryStatus.CANCELLED, None)

    def stored_reply(self, job_id: str, round: int, fingerprint: str = "") -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT payload, fingerprint FROM replies "
                "JOIN releases ON releases.id = replies.release_id "
                "WHERE dataset = ? AND job_id = ? AND round = ? AND status = ?",
                (self._dataset, job_id, round, EntryStatus.COMMITTED.value),
            ).fetchone()
        if row is None:
            return None
        if str(row["fingerprint"]) != fingerprint:
            raise DuplicateRelease(
                dataset=self._dataset, job_id=job_id, round=round,
                why="the retry carries a different job spec",
            )  # fmt: skip
        return bytes(row["payload"])

    def check_approvals(
        self, job_id: str, events: Sequence[PrivacyEvent], approvals: Sequence[ApprovalCap]
    ) -> None:
        with self._connect() as conn, read_snapshot(conn):
            self._check_approvals(conn, job_id, list(events), approvals, record=False)

    def approval_spent(self, digest: str) -> float:
        with self._connect() as conn, read_snapshot(conn):
            return epsilon_spent(self._approval_events(conn, digest, ""), self._delta(conn))

    def has_reservation(self, job_id: str, round: int) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM releases WHERE dataset = ? AND job_id = ? AND round = ? "
                "AND status = ?",
                (self._dataset, job_id, round, EntryStatus.RESERVED.value),
            ).fetchone()
        return row is not None

    def job_events(self, job_id: str) -> list[PrivacyEvent]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases "
                "WHERE dataset = ? AND job_id = ? AND status IN (?, ?) ORDER BY id",
                (self._dataset, job_id, *_LIVE),
            ).fetchall()
        return [_event(row) for row in rows]

    def history(self) -> list[LedgerEntry]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? ORDER BY id",
                (self._dataset,),
            ).fetchall()
        return [_entry(row) for row in rows]

    def entry(self, entry_id: int) -> LedgerEntry | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? AND id = ?",
                (self._dataset, entry_id),
            ).fetchone()
        return None if row is None else _entry(row)

    def job_epsilon(self, job_id: str) -> float:
        with self._connect() as conn, read_snapshot(conn):
            period = self._period(conn)
            delta = self._budgets(conn, period)[Scope(ScopeKind.PERIOD, period)].delta
            rows = conn.execute(
                f"SELECT {_RELEASE_COLUMNS} FROM releases "
                "WHERE dataset = ? AND job_id = ? AND status IN (?, ?) ORDER BY id",
                (self._dataset, job_id, *_LIVE),
            ).fetchall()
        return epsilon_spent([_event(row) for row in rows], delta)

    def budget_changes(self) -> list[BudgetChange]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM budget_log WHERE dataset = ? ORDER BY id", (self._dataset,)
            ).fetchall()
        return [
            BudgetChange(
                dataset=str(row["dataset"]),
                scope=Scope(ScopeKind(row["kind"]), str(row["key"])),
                old=None
                if row["old_epsilon"] is None
                else Budget(float(row["old_epsilon"]), float(row["old_delta"])),
                new=Budget(float(row["new_epsilon"]), float(row["new_delta"])),
                source=str(row["source"]),
                changed_at=datetime.fromisoformat(str(row["changed_at"])),
            )
            for row in rows
        ]

    def set_budget(self, scope: Scope, budget: Budget, source: str = "officer") -> None:
        if not isinstance(budget, Budget):
            raise InternalError(f"set_budget() got {type(budget).__name__}, not a Budget")
        _check_name(f"{scope.kind.value} name", scope.key)
        with self._connect() as conn, write_locked(conn):
            period = self._period(conn)
            if scope.kind is ScopeKind.PERIOD and scope.key != period:
                raise ConfigError(
                    f"period {scope.key!r} is not the current period ({period!r})",
                    "set the current period's total, or open a new period",
                )
            self._set(conn, period, scope, budget, source)

    def open_period(self, name: str, total: Budget) -> None:
        _check_name("period name", name)
        with self._connect() as conn, write_locked(conn):
            self._open_period(conn, name, total, "officer")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self._path)

    def _period(self, conn: sqlite3.Connection) -> str:
        row = conn.execute(
            "SELECT name FROM periods WHERE dataset = ? ORDER BY id DESC LIMIT 1",
            (self._dataset,),
        ).fetchone()
        if row is None:
            raise InternalError(f"ledger {self._path} has no period for {self._dataset!r}")
        return str(row["name"])

    def _budgets(self, conn: sqlite3.Connection, period: str) -> dict[Scope, Budget]:
        rows = conn.execute(
            "SELECT kind, key, epsilon, delta FROM scope_budgets WHERE dataset = ? AND period = ?",
            (self._dataset, period),
        ).fetchall()
        budgets = {
            Scope(ScopeKind(row["kind"]), str(row["key"])): Budget(
                float(row["epsilon"]), float(row["delta"])
            )
            for row in rows
        }
        if Scope(ScopeKind.PERIOD, period) not in budgets:
            raise InternalError(f"ledger {self._path}: period {period!r} has no total budget")
        return budgets

    def _set(
        self, conn: sqlite3.Connection, period: str, scope: Scope, budget: Budget, source: str
    ) -> None:
        old = self._budgets_or_empty(conn, period).get(scope)
        if old == budget:
            return
        now = _now()
        conn.execute(
            "INSERT OR REPLACE INTO scope_budgets VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._dataset, period, scope.kind.value, scope.key, budget.epsilon, budget.delta,
             now),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO budget_log (dataset, kind, key, old_epsilon, old_delta, new_epsilon, "
            "new_delta, source, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._dataset, scope.kind.value, scope.key,
             None if old is None else old.epsilon, None if old is None else old.delta,
             budget.epsilon, budget.delta, source, now),
        )  # fmt: skip

    def _budgets_or_empty(self, conn: sqlite3.Connection, period: str) -> dict[Scope, Budget]:
        try:
            return self._budgets(conn, period)
        except InternalError:
            return {}

    def _open_period(self, conn: sqlite3.Connection, name: str, total: Budget, source: str) -> None:
        exists = conn.execute(
            "SELECT 1 FROM periods WHERE dataset = ? AND name = ?", (self._dataset, name)
        ).fetchone()
        if exists is not None:
            raise ConfigError(
                f"dataset {self._dataset!r} already had a period named {name!r}",
                "periods only move forward: give the new period a new name, e.g. the year",
            )
        previous = self._budgets_or_empty(conn, self._period(conn)) if source == "officer" else {}
        conn.execute(
            "INSERT INTO periods (dataset, name, opened_at) VALUES (?, ?, ?)",
            (self._dataset, name, _now()),
        )
        self._set(conn, name, Scope(ScopeKind.PERIOD, name), total, source)
        # Purpose sub-budgets and analyst caps carry over; the officer changes them with
        # set_budget like any other.
        for scope, budget in previous.items():
            if scope.kind is not ScopeKind.PERIOD:
                self._set(conn, name, scope, budget, f"carried into {name}")

    def _apply_config_budget(
        self, conn: sqlite3.Connection, budget: Budget, first_period: str | None
    ) -> bool:
        """Applies the config's [budget] if it changed since last applied; says if it did."""
        seen = conn.execute(
            "SELECT epsilon, delta FROM config_budget WHERE dataset = ?", (self._dataset,)
        ).fetchone()
        if seen is not None and Budget(float(seen["epsilon"]), float(seen["delta"])) == budget:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO config_budget VALUES (?, ?, ?)",
            (self._dataset, budget.epsilon, budget.delta),
        )
        has_period = conn.execute(
            "SELECT 1 FROM periods WHERE dataset = ?", (self._dataset,)
        ).fetchone()
        if has_period is None:
            name = first_period or str(datetime.now(UTC).year)
            self._open_period(conn, _check_name("period name", name), budget, "config")
            return True
        period = self._period(conn)
        old = self._budgets(conn, period).get(Scope(ScopeKind.PERIOD, period))
        self._set(conn, period, Scope(ScopeKind.PERIOD, period), budget, "config")
        return old != budget

    def _live_events(
        self, conn: sqlite3.Connection, period: str, scope: Scope
    ) -> list[PrivacyEvent]:
        where = {ScopeKind.PERIOD: "", ScopeKind.PURPOSE: " AND purpose = ?",
                 ScopeKind.ANALYST: " AND analyst = ?"}[scope.kind]  # fmt: skip
        args: tuple[str, ...] = () if scope.kind is ScopeKind.PERIOD else (scope.key,)
        rows = conn.execute(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? AND period = ? "
            f"AND status IN (?, ?){where} ORDER BY id",
            (self._dataset, period, *_LIVE, *args),
        ).fetchall()
        return [_event(row) for row in rows]

    def _quote(self, conn: sqlite3.Connection, events: list[PrivacyEvent], who: Requester) -> Quote:
        period = self._period(conn)
        budgets = self._budgets(conn, period)
        total = Scope(ScopeKind.PERIOD, period)
        if not who.analyst and any(s.kind is ScopeKind.ANALYST for s in budgets):
            raise PolicyRefusal(
                f"dataset {self._dataset!r} caps each analyst's budget, and the job names "
                "no analyst",
                "set `analyst` in the job spec's [job] table",
            )
        applicable = [total]
        for scope in (Scope(ScopeKind.PURPOSE, who.purpose), Scope(ScopeKind.ANALYST, who.analyst)):
            if scope.key and scope in budgets:
                applicable.append(scope)
        quotes = []
        for scope in applicable:
            budget = budgets[scope]
            history = self._live_events(conn, period, scope)
            after = epsilon_spent(history + events, budget.delta)
            quotes.append(
                ScopeQuote(
                    scope=scope.label,
                    epsilon=budget.epsilon,
                    delta=budget.delta,
                    spent=epsilon_spent(history, budget.delta),
                    spent_after=after,
                    fits=after <= budget.epsilon,
                    requested=epsilon_spent(events, budget.delta),
                )
            )
        return Quote(requested=epsilon_spent(events, budgets[total].delta), scopes=tuple(quotes))

    def _check_job(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        event: PrivacyEvent,
        fingerprint: str,
        job_budget: Budget | None,
    ) -> None:
        rows = conn.execute(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? AND job_id = ? "
            "AND status IN (?, ?) ORDER BY id",
            (self._dataset, job_id, *_LIVE),
        ).fetchall()
        if fingerprint and any(str(r["fingerprint"]) not in ("", fingerprint) for r in rows):
            raise PolicyRefusal(
                f"job {job_id!r} was released on dataset {self._dataset!r} under another job "
                "spec; a job id names one spec",
                "submit the changed spec as a new job",
            )
        if job_budget is not None:
            total = epsilon_spent([*(_event(r) for r in rows), event], job_budget.delta)
            if total > job_budget.epsilon:
                raise PolicyRefusal(
                    f"another release of job {job_id!r} would bring it to epsilon {total:.4f} "
                    f"at delta {job_budget.delta:g}, above the job's own epsilon "
                    f"{job_budget.epsilon:g}",
                    "the job has used its epsilon; start a new job",
                )

    def _delta(self, conn: sqlite3.Connection) -> float:
        period = self._period(conn)
        return self._budgets(conn, period)[Scope(ScopeKind.PERIOD, period)].delta

    def _approval_events(
        self, conn: sqlite3.Connection, digest: str, job_id: str
    ) -> list[PrivacyEvent]:
        """Live releases, in every period, of the jobs that used the approval or are `job_id`."""
        rows = conn.execute(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE dataset = ? AND status IN (?, ?) "
            "AND (job_id = ? OR job_id IN (SELECT job_id FROM approval_uses "
            "WHERE dataset = ? AND digest = ?)) ORDER BY id",
            (self._dataset, *_LIVE, job_id, self._dataset, digest),
        ).fetchall()
        return [_event(row) for row in rows]

    def _check_approvals(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        events: list[PrivacyEvent],
        approvals: Sequence[ApprovalCap],
        *,
        record: bool,
    ) -> None:
        delta = self._delta(conn)
        for cap in approvals:
            after = epsilon_spent(self._approval_events(conn, cap.digest, job_id) + events, delta)
            if after > cap.epsilon:
                log.warning(
                    "job %s refused: approval %s would reach epsilon %.4f of its %g",
                    job_id, cap.digest, after, cap.epsilon,
                )  # fmt: skip
                raise ApprovalExhausted(
                    job_id=job_id, digest=cap.digest, epsilon=cap.epsilon, spent_after=after
                )
            if record:
                conn.execute(
                    "INSERT OR IGNORE INTO approval_uses VALUES (?, ?, ?, ?)",
                    (self._dataset, cap.digest, job_id, _now()),
                )

    def _resume(
        self, conn: sqlite3.Connection, live: sqlite3.Row, event: PrivacyEvent, fingerprint: str
    ) -> Reservation:
        entry = _entry(live)
        if entry.status is EntryStatus.COMMITTED:
            raise DuplicateRelease(
                dataset=self._dataset, job_id=entry.job_id, round=entry.round, why="committed"
            )
        if entry.event != event or str(live["fingerprint"]) != fingerprint:
            raise DuplicateRelease(
                dataset=self._dataset, job_id=entry.job_id, round=entry.round,
                why="a crashed attempt reserved it for another job spec or other parameters; "
                "that reservation stays charged",
            )  # fmt: skip
        # The caller holds the round's lock, so the reserving process is gone; it commits
        # before it replies, so it released nothing: carry on under its charge.
        conn.execute(
            "UPDATE releases SET owner = ?, updated_at = ? WHERE id = ?",
            (f"pid {os.getpid()}", _now(), entry.entry_id),
        )
        return Reservation(entry.entry_id, entry.job_id, entry.round, entry.event, resumed=True)

    def _resolve(self, reservation: Reservation, status: EntryStatus, reply: bytes | None) -> None:
        resolved = False
        with self._connect() as conn, write_locked(conn):
            updated = conn.execute(
                "UPDATE releases SET status = ?, updated_at = ? WHERE id = ? AND dataset = ? "
                "AND job_id = ? AND round = ? AND mechanism = ? AND params = ? AND status = ?",
                (status.value, _now(), reservation.entry_id, self._dataset, reservation.job_id,
                 reservation.round, reservation.event.mechanism.value,
                 json.dumps(reservation.event.params()), EntryStatus.RESERVED.value),
            ).rowcount  # fmt: skip
            if updated == 1:
                if reply is not None:
                    conn.execute(
                        "INSERT INTO replies (release_id, payload) VALUES (?, ?)",
                        (reservation.entry_id, reply),
                    )
                resolved = True
            row = conn.execute(
                "SELECT status FROM releases WHERE id = ? AND dataset = ?",
                (reservation.entry_id, self._dataset),
            ).fetchone()
        if resolved:
            held = self._held.pop(reservation.entry_id, None)
            if held is not None:
                # A committed round is final in the ledger, so its lock file can go; a
                # cancelled round may be reserved again and keeps its file.
                fd, path = held
                self._locks.release(fd, forget=path if status is EntryStatus.COMMITTED else None)
            return
        found = "no such entry" if row is None else f"entry is {row['status']}"
        raise InternalError(
            f"cannot mark reservation {reservation.entry_id} (job {reservation.job_id!r} "
            f"round {reservation.round}) {status.value} on dataset {self._dataset!r}: "
            f"{found}, or it does not match the reservation"
        )
