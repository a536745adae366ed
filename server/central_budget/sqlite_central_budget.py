"""SQLite-backed central caps: one file in the coordinator's home."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from server.central_budget.central_budget import (
    UNNAMED,
    Cap,
    CapChange,
    CapCheck,
    CapKind,
    CapStanding,
    CentralBudget,
    CentralCheck,
    ChargeStatus,
    JobCharge,
    validate_cap,
)
from vocab.errors import ConfigError, InternalError, JobSpecError
from vocab.sqlite_tx import connect, ensure_schema, read_snapshot, write_locked

__all__ = ["SqliteCentralBudget"]

_SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS caps (
        kind       TEXT NOT NULL CHECK (kind IN ('analyst', 'project')),
        key        TEXT NOT NULL,
        epsilon    REAL NOT NULL CHECK (epsilon >= 0),
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    )""",
    """CREATE TABLE IF NOT EXISTS cap_changes (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        old_epsilon REAL,
        new_epsilon REAL NOT NULL,
        changed_at  TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS charges (
        job_id     TEXT PRIMARY KEY,
        analyst    TEXT NOT NULL,
        project    TEXT NOT NULL,
        requested  REAL NOT NULL CHECK (requested > 0),
        charged    REAL CHECK (charged IS NULL OR charged >= 0),
        status     TEXT NOT NULL CHECK (status IN ('reserved', 'settled')),
        created_at TEXT NOT NULL,
        settled_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS charges_by_analyst ON charges (analyst)",
    "CREATE INDEX IF NOT EXISTS charges_by_project ON charges (project)",
)

_CHARGE_COLUMNS = "job_id, analyst, project, requested, charged, status, created_at, settled_at"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _charge(row: sqlite3.Row) -> JobCharge:
    return JobCharge(
        job_id=str(row["job_id"]),
        analyst=str(row["analyst"]),
        project=str(row["project"]),
        requested=float(row["requested"]),
        charged=None if row["charged"] is None else float(row["charged"]),
        status=ChargeStatus(row["status"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        settled_at=None if row["settled_at"] is None else datetime.fromisoformat(row["settled_at"]),
    )


def _requested(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise JobSpecError(f"job epsilon must be a number, got {epsilon!r}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise JobSpecError(f"job epsilon must be positive and finite, got {epsilon!r}")
    return float(epsilon)


class SqliteCentralBudget(CentralBudget):
    """Central caps in a SQLite file.

    Each call opens its own connection (each ServerApp is its own process and several may
    run at once); `reserve` reads the caps and the charges and inserts the job in one
    `BEGIN IMMEDIATE` transaction, so of two jobs racing for the last of a cap exactly one
    is admitted.

    Args:
        path: The file; it and its parent directories are created if needed.

    Raises:
        ConfigError: If the file is from a newer silobridge.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            with write_locked(conn):
                ensure_schema(
                    conn, _SCHEMA, _SCHEMA_VERSION, what=f"central budget {self._path}",
                    upgrade_hint="upgrade silobridge on the coordinator; never edit the file by "
                    "hand",
                )  # fmt: skip
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def set_cap(self, kind: CapKind, key: str, epsilon: float) -> CapChange:
        value = validate_cap(kind, key, epsilon)
        now = _now()
        with self._connect() as conn, write_locked(conn):
            row = conn.execute(
                "SELECT epsilon FROM caps WHERE kind = ? AND key = ?", (kind.value, key)
            ).fetchone()
            old = None if row is None else float(row["epsilon"])
            conn.execute(
                "INSERT INTO caps (kind, key, epsilon, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET epsilon = excluded.epsilon, "
                "updated_at = excluded.updated_at",
                (kind.value, key, value, now),
            )
            conn.execute(
                "INSERT INTO cap_changes (kind, key, old_epsilon, new_epsilon, changed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind.value, key, old, value, now),
            )
        return CapChange(kind, key, old, value, datetime.fromisoformat(now))

    def caps(self) -> list[Cap]:
        with self._connect() as conn:
            return self._caps(conn)

    def standings(self) -> list[CapStanding]:
        with self._connect() as conn, read_snapshot(conn):
            caps = {(c.kind, c.key): c.epsilon for c in self._caps(conn)}
            charges = self._charges(conn)
        reserved: dict[tuple[CapKind, str], list[float]] = {}
        settled: dict[tuple[CapKind, str], list[float]] = {}
        for charge in charges:
            target = reserved if charge.status is ChargeStatus.RESERVED else settled
            for kind, key in ((CapKind.ANALYST, charge.analyst), (CapKind.PROJECT, charge.project)):
                if key:
                    target.setdefault((kind, key), []).append(charge.counted)
        keys = sorted(set(caps) | set(reserved) | set(settled), key=lambda k: (k[0].value, k[1]))
        return [
            CapStanding(
                kind,
                key,
                caps.get((kind, key)),
                math.fsum(reserved.get((kind, key), [])),
                math.fsum(settled.get((kind, key), [])),
            )
            for kind, key in keys
        ]

    def history(self) -> list[CapChange]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT kind, key, old_epsilon, new_epsilon, changed_at FROM cap_changes "
                "ORDER BY id"
            ).fetchall()
        return [
            CapChange(
                CapKind(row["kind"]),
                str(row["key"]),
                None if row["old_epsilon"] is None else float(row["old_epsilon"]),
                float(row["new_epsilon"]),
                datetime.fromisoformat(str(row["changed_at"])),
            )
            for row in rows
        ]

    def charges(self) -> list[JobCharge]:
        with self._connect() as conn:
            return self._charges(conn)

    def check(self, analyst: str, project: str, epsilon: float) -> CentralCheck:
        requested = _requested(epsilon)
        with self._connect() as conn, read_snapshot(conn):
            return self._check(conn, analyst, project, requested)

    def reserve(self, job_id: str, analyst: str, project: str, epsilon: float) -> CentralCheck:
        if not isinstance(job_id, str) or not job_id:
            raise JobSpecError(f"job id must be a non-empty string, got {job_id!r}")
        requested = _requested(epsilon)
        with self._connect() as conn, write_locked(conn):
            row = conn.execute(
                f"SELECT {_CHARGE_COLUMNS} FROM charges WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is not None:
                held = _charge(row)
                if (held.status, held.analyst, held.project, held.requested) != (
                    ChargeStatus.RESERVED,
                    analyst,
                    project,
                    requested,
                ):
                    raise InternalError(f"job {job_id!r} was admitted twice by the central budget")
                # The same job again after its coordinator died: it keeps the reservation it
                # holds (checked as if it were not yet counted), nothing is added.
                return self._check(conn, analyst, project, requested, exclude=job_id)
            check = self._check(conn, analyst, project, requested)
            refusal = check.refusal()
            if refusal is not None:
                raise refusal
            conn.execute(
                f"INSERT INTO charges ({_CHARGE_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, ?, NULL)",
                (job_id, analyst, project, requested, ChargeStatus.RESERVED.value, _now()),
            )
        return check

    def settle(self, job_id: str, charged: float) -> JobCharge:
        if isinstance(charged, bool) or not isinstance(charged, int | float):
            raise InternalError(f"settle() got {charged!r}, not a number")
        with self._connect() as conn, write_locked(conn):
            row = conn.execute(
                f"SELECT {_CHARGE_COLUMNS} FROM charges WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise InternalError(f"job {job_id!r} is settled but was never admitted")
            charge = _charge(row)
            if charge.status is not ChargeStatus.RESERVED:
                raise InternalError(f"job {job_id!r} is settled twice")
            # NaN (a node reporting nonsense) settles to the reservation, never below it.
            amount = charge.requested if math.isnan(charged) else max(0.0, float(charged))
            now = _now()
            conn.execute(
                "UPDATE charges SET charged = ?, status = ?, settled_at = ? WHERE job_id = ?",
                (amount, ChargeStatus.SETTLED.value, now, job_id),
            )
        return JobCharge(
            charge.job_id,
            charge.analyst,
            charge.project,
            charge.requested,
            amount,
            ChargeStatus.SETTLED,
            charge.created_at,
            datetime.fromisoformat(now),
        )

    def _check(
        self, conn: sqlite3.Connection, analyst: str, project: str, requested: float,
        exclude: str = "",
    ) -> CentralCheck:  # fmt: skip
        checks = []
        for kind, key, column in (
            (CapKind.ANALYST, analyst, "analyst"),
            (CapKind.PROJECT, project, "project"),
        ):
            if not key:
                # Once the central officer caps analysts, a job naming none could slip past
                # every cap: it meets a cap of 0 instead. (A job need not name a project.)
                capped = conn.execute(
                    "SELECT 1 FROM caps WHERE kind = ? LIMIT 1", (kind.value,)
                ).fetchone()
                if kind is CapKind.ANALYST and capped is not None:
                    checks.append(CapCheck(kind, UNNAMED, 0.0, 0.0, requested))
                continue
            row = conn.execute(
                "SELECT epsilon FROM caps WHERE kind = ? AND key = ?", (kind.value, key)
            ).fetchone()
            if row is None:
                continue
            rows = conn.execute(
                f"SELECT {_CHARGE_COLUMNS} FROM charges WHERE {column} = ? AND job_id != ?",
                (key, exclude),
            ).fetchall()
            spent = math.fsum(_charge(r).counted for r in rows)
            checks.append(CapCheck(kind, key, float(row["epsilon"]), spent, requested))
        return CentralCheck(requested, tuple(checks))

    @staticmethod
    def _caps(conn: sqlite3.Connection) -> list[Cap]:
        rows = conn.execute(
            "SELECT kind, key, epsilon, updated_at FROM caps ORDER BY kind, key"
        ).fetchall()
        return [
            Cap(
                CapKind(r["kind"]),
                str(r["key"]),
                float(r["epsilon"]),
                datetime.fromisoformat(str(r["updated_at"])),
            )
            for r in rows
        ]

    @staticmethod
    def _charges(conn: sqlite3.Connection) -> list[JobCharge]:
        rows = conn.execute(
            f"SELECT {_CHARGE_COLUMNS} FROM charges ORDER BY created_at, job_id"
        ).fetchall()
        return [_charge(row) for row in rows]

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with connect(self._path) as conn:
                yield conn
        except sqlite3.OperationalError as err:
            if "unable to open" not in str(err):
                raise
            raise ConfigError(
                f"cannot open the central budget {self._path}: {err}",
                "check the coordinator home folder and its permissions",
            ) from err
