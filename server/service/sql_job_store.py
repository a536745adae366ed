"""The job store on SQLAlchemy Core: SQLite (one file, the default) or PostgreSQL."""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from server.service.job_store import (
    JOB_ID_RE,
    MAX_PAYLOAD_BYTES,
    MAX_SPEC_BYTES,
    JobMode,
    JobNotFound,
    JobRecord,
    JobState,
    JobStore,
    JobStoreError,
    StateConflict,
    StoredEvent,
)
from vocab.errors import InternalError

__all__ = ["SqlJobStore", "open_job_store"]

_MAX_LIMIT = 1000
_BUSY_TIMEOUT_MS = 30_000
_CONNECT_TIMEOUT_S = 10
_URL_HINT = (
    "give a file path, sqlite:///ABSOLUTE/PATH or "
    "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
)

_metadata = MetaData()

_states = ", ".join(f"'{s.value}'" for s in JobState)
_modes = ", ".join(f"'{m.value}'" for m in JobMode)

_jobs = Table(
    "jobs",
    _metadata,
    # Creation order, and the n of job ids: increasing store-wide, never reused.
    Column("seqno", Integer, primary_key=True, autoincrement=True),
    # NULL only inside create()'s transaction, between the insert that draws seqno and the
    # update that names the job after it.
    Column("job_id", String(160), unique=True, nullable=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("analyst", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("spec", LargeBinary, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failure", Text, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("last_seq", Integer, nullable=False),
    CheckConstraint(f"state IN ({_states})", name="jobs_state_known"),
    CheckConstraint(f"mode IN ({_modes})", name="jobs_mode_known"),
    Index("jobs_by_state", "state", "seqno"),
    Index("jobs_by_analyst", "analyst", "created_at"),
    # An analyst's newest jobs (`list(analyst=...)` orders by seqno).
    Index("jobs_by_analyst_seqno", "analyst", "seqno"),
    sqlite_autoincrement=True,
)

_events = Table(
    "job_events",
    _metadata,
    Column("job_id", String(160), ForeignKey("jobs.job_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("at", Double, nullable=False),
)

_checkpoints = Table(
    "job_checkpoints",
    _metadata,
    Column("job_id", String(160), ForeignKey("jobs.job_id"), primary_key=True),
    Column("round", Integer, nullable=False),
    Column("blob", LargeBinary, nullable=False),
)


def _redact(url: str) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable as a URL, but it may still hold user:password@.
        return re.sub(r"(//[^/@]*?:)[^/@]*(@)", r"\1***\2", url)


def _record(row: Row[Any]) -> JobRecord:
    return JobRecord(
        job_id=str(row.job_id),
        kind=str(row.kind),
        name=str(row.name),
        analyst=str(row.analyst),
        project=str(row.project),
        spec=bytes(row.spec),
        mode=JobMode(row.mode),
        state=JobState(row.state),
        created_at=float(row.created_at),
        updated_at=float(row.updated_at),
        attempts=int(row.attempts),
        failure=str(row.failure),
        cancel_requested=bool(row.cancel_requested),
        last_seq=int(row.last_seq),
    )


def _event(row: Row[Any]) -> StoredEvent:
    return StoredEvent(
        job_id=str(row.job_id),
        seq=int(row.seq),
        kind=str(row.kind),
        payload=str(row.payload),
        at=float(row.at),
    )


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit must be in 1..{_MAX_LIMIT}, got {limit}")


def _sqlite_connection_setup(dbapi_connection: Any, _connection_record: Any) -> None:
    # Transactions are begun explicitly (`_tx`): the driver's implicit BEGIN would come
    # after a transaction's first read and could not take the write lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers go on while one writer writes; the busy timeout makes a writer
        # wait for the lock instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class SqlJobStore(JobStore):
    """The job store in a SQL database through SQLAlchemy Core.

    SQLite write transactions take the file's write lock up front (`BEGIN IMMEDIATE`), so
    each read-check-write is serialized; on PostgreSQL the rows a write depends on are
    locked with `SELECT ... FOR UPDATE` (SKIP LOCKED when claiming, so claimers do not
    queue behind each other).
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        """Opens the database and creates the tables that are missing.

        Args:
            url: A SQLAlchemy URL: `sqlite:///PATH` or `postgresql+psycopg://...`.
            clock: Unix seconds now; tests pass their own.

        Raises:
            JobStoreError: The URL is malformed, names an unknown or missing driver, or
                the database cannot be reached or opened.
        """
        self._clock = clock
        self._shown_url = _redact(url)
        self._engine = self._create_engine(url)
        try:
            with self._engine.begin() as conn:
                _metadata.create_all(conn)
                # create_all adds no index to a table that exists: a store made by an older
                # version gets the ones it lacks here.
                for index in _jobs.indexes:
                    index.create(conn, checkfirst=True)
        except DBAPIError as err:
            self._engine.dispose()
            raise self._unavailable(err, opening=True) from None

    def _create_engine(self, url: str) -> Engine:
        shown = self._shown_url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise JobStoreError(f"{shown!r} is not a database URL", _URL_HINT) from None
        self._password = parsed.password
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._sqlite and parsed.database in (None, "", ":memory:"):
            raise JobStoreError(
                f"{shown!r} is an in-memory SQLite database: every job would be lost when "
                "the service stops",
                "give the job store a file path",
            )
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        except NoSuchModuleError:
            raise JobStoreError(
                f"{shown!r} names a database or driver this silobridge does not know",
                _URL_HINT,
            ) from None
        except ImportError as err:
            raise JobStoreError(
                f"the database driver for {shown!r} is not installed ({err.name or err})",
                "install silobridge's 'postgres' extra (psycopg 3) and write the URL as "
                "postgresql+psycopg://...",
            ) from None
        if self._sqlite:
            event.listen(engine, "connect", _sqlite_connection_setup)
        return engine

    def _unavailable(self, err: DBAPIError, *, opening: bool) -> JobStoreError:
        # The driver's first line says why; the rest (and SQLAlchemy's text) is noise here.
        lines = str(err.orig).strip().splitlines()
        reason = lines[0] if lines else type(err.orig).__name__
        if self._password:
            reason = reason.replace(str(self._password), "***")
        if opening:
            hint = (
                "check that the file's folder exists and the service may write to it"
                if self._sqlite
                else "check that the server is running and reachable from here, the user, "
                "password and database name, and that the user may create tables"
            )
            return JobStoreError(
                f"cannot open the job store at {self._shown_url!r}: {reason}", hint
            )
        return JobStoreError(
            f"the job store at {self._shown_url!r} failed: {reason}",
            "check that the database is reachable, then retry",
        )

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction; a database outage surfaces as JobStoreError."""
        try:
            with self._engine.connect() as conn, conn.begin():
                if self._sqlite:
                    # Readers see one snapshot; writers hold the write lock from the start.
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
        except OperationalError as err:
            raise self._unavailable(err, opening=False) from None

    def _now(self) -> float:
        return float(self._clock())

    @staticmethod
    def _locked_job(conn: Connection, job_id: str, *, skip_locked: bool = False) -> JobRecord:
        row = conn.execute(
            select(_jobs).where(_jobs.c.job_id == job_id).with_for_update(skip_locked=skip_locked)
        ).one_or_none()
        if row is None:
            raise JobNotFound(job_id)
        return _record(row)

    def create(
        self, *, kind: str, name: str, analyst: str, project: str, spec: bytes, mode: JobMode
    ) -> JobRecord:
        """See `JobStore.create`."""
        if not JOB_ID_RE.fullmatch(name):
            raise ValueError(f"job name {name!r} must be 1..160 letters, digits, '.', '_' or '-'")
        if len(spec) > MAX_SPEC_BYTES:
            raise ValueError(f"job spec of {len(spec)} bytes is above {MAX_SPEC_BYTES} bytes")
        now = self._now()
        with self._tx(write=True) as conn:
            seqno = conn.execute(
                insert(_jobs).values(
                    job_id=None, kind=kind, name=name, analyst=analyst, project=project,
                    spec=bytes(spec), mode=mode.value, state=JobState.QUEUED.value,
                    created_at=now, updated_at=now, attempts=0, failure="",
                    cancel_requested=False, last_seq=0,
                ).returning(_jobs.c.seqno)
            ).scalar_one()  # fmt: skip
            job_id = f"{name}-{seqno}"
            if not JOB_ID_RE.fullmatch(job_id):
                # Rolls the insert back: the name leaves no room for the number.
                raise ValueError(f"job name {name!r} is too long for a job id of 160 characters")
            conn.execute(update(_jobs).where(_jobs.c.seqno == seqno).values(job_id=job_id))
            return self._locked_job(conn, job_id)

    def get(self, job_id: str) -> JobRecord:
        """See `JobStore.get`."""
        with self._tx(write=False) as conn:
            row = conn.execute(select(_jobs).where(_jobs.c.job_id == job_id)).one_or_none()
        if row is None:
            raise JobNotFound(job_id)
        return _record(row)

    def list(
        self,
        *,
        analyst: str | None = None,
        states: Collection[JobState] | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> builtins.list[JobRecord]:
        """See `JobStore.list`."""
        _check_limit(limit)
        if states is not None and not states:
            return []
        query = select(_jobs).order_by(_jobs.c.seqno.desc()).limit(limit)
        if analyst is not None:
            query = query.where(_jobs.c.analyst == analyst)
        if states is not None:
            query = query.where(_jobs.c.state.in_([s.value for s in states]))
        with self._tx(write=False) as conn:
            if before_id is not None:
                before = conn.execute(
                    select(_jobs.c.seqno).where(_jobs.c.job_id == before_id)
                ).scalar_one_or_none()
                if before is None:
                    raise JobNotFound(before_id)
                query = query.where(_jobs.c.seqno < before)
            return [_record(row) for row in conn.execute(query)]

    def claim_next(self) -> JobRecord | None:
        """See `JobStore.claim_next`."""
        while True:
            with self._tx(write=True) as conn:
                job_id = conn.execute(
                    select(_jobs.c.job_id)
                    .where(_jobs.c.state == JobState.QUEUED.value)
                    .where(_jobs.c.cancel_requested.is_(False))
                    .order_by(_jobs.c.seqno)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).scalar_one_or_none()
                if job_id is None:
                    return None
                claimed = conn.execute(
                    update(_jobs)
                    .where(_jobs.c.job_id == job_id)
                    .where(_jobs.c.state == JobState.QUEUED.value)
                    .values(
                        state=JobState.RUNNING.value,
                        attempts=_jobs.c.attempts + 1,
                        updated_at=self._now(),
                    )
                )
                # Compare-and-set: 0 rows means another claimer won this job; try the next.
                if claimed.rowcount == 1:
                    return self._locked_job(conn, job_id)

    def set_state(
        self,
        job_id: str,
        state: JobState,
        *,
        expected: JobState | None = None,
        failure: str = "",
    ) -> JobRecord:
        """See `JobStore.set_state`."""
        if failure and state not in (JobState.FAILED, JobState.CANCELLED):
            raise ValueError(f"a failure reason fits only failed or cancelled, not {state.value}")
        with self._tx(write=True) as conn:
            current = self._locked_job(conn, job_id)
            if current.state.final or (expected is not None and current.state is not expected):
                raise StateConflict(
                    job_id, current=current.state, requested=state, expected=expected
                )
            changed = conn.execute(
                update(_jobs)
                .where(_jobs.c.job_id == job_id)
                .where(_jobs.c.state == current.state.value)
                .values(state=state.value, failure=failure, updated_at=self._now())
            )
            if changed.rowcount != 1:
                raise InternalError(f"job {job_id!r} changed under its row lock")
            return self._locked_job(conn, job_id)

    def requeue_running(self) -> builtins.list[str]:
        """See `JobStore.requeue_running`."""
        now = self._now()
        running = _jobs.c.state == JobState.RUNNING.value
        with self._tx(write=True) as conn:
            requeued = [
                str(job_id)
                for job_id in conn.execute(
                    select(_jobs.c.job_id)
                    .where(running, _jobs.c.cancel_requested.is_(False))
                    .order_by(_jobs.c.seqno)
                    .with_for_update()
                ).scalars()
            ]
            conn.execute(
                update(_jobs)
                .where(running, _jobs.c.cancel_requested.is_(True))
                .values(
                    state=JobState.CANCELLED.value,
                    failure="cancelled while the service was down",
                    updated_at=now,
                )
            )
            if requeued:
                conn.execute(
                    update(_jobs)
                    .where(_jobs.c.job_id.in_(requeued))
                    .values(state=JobState.QUEUED.value, updated_at=now)
                )
        return requeued

    def request_cancel(self, job_id: str) -> JobRecord:
        """See `JobStore.request_cancel`."""
        with self._tx(write=True) as conn:
            current = self._locked_job(conn, job_id)
            if current.state.final:
                return current
            state = JobState.CANCELLED if current.state is JobState.QUEUED else current.state
            conn.execute(
                update(_jobs)
                .where(_jobs.c.job_id == job_id)
                .values(state=state.value, cancel_requested=True, updated_at=self._now())
            )
            return self._locked_job(conn, job_id)

    def append_event(self, job_id: str, kind: str, payload: str) -> StoredEvent:
        """See `JobStore.append_event`."""
        size = len(payload.encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"event payload of {size} bytes is above {MAX_PAYLOAD_BYTES} bytes")
        at = self._now()
        with self._tx(write=True) as conn:
            # The increment takes the job's row lock first: concurrent appenders queue here
            # and each reads the seq the previous one committed.
            seq = conn.execute(
                update(_jobs)
                .where(_jobs.c.job_id == job_id)
                .values(last_seq=_jobs.c.last_seq + 1)
                .returning(_jobs.c.last_seq)
            ).scalar_one_or_none()
            if seq is None:
                raise JobNotFound(job_id)
            stored = StoredEvent(job_id=job_id, seq=int(seq), kind=kind, payload=payload, at=at)
            conn.execute(
                insert(_events).values(
                    job_id=job_id, seq=stored.seq, kind=kind, payload=payload, at=at
                )
            )
        return stored

    def events(
        self, job_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[StoredEvent]:
        """See `JobStore.events`."""
        _check_limit(limit)
        if after_seq < 0:
            raise ValueError(f"after_seq must be 0 or more, got {after_seq}")
        with self._tx(write=False) as conn:
            rows = conn.execute(
                select(_events)
                .where(_events.c.job_id == job_id, _events.c.seq > after_seq)
                .order_by(_events.c.seq)
                .limit(limit)
            ).all()
            if not rows:
                known = conn.execute(select(_jobs.c.seqno).where(_jobs.c.job_id == job_id))
                if known.first() is None:
                    raise JobNotFound(job_id)
        return [_event(row) for row in rows]

    def save_checkpoint(self, job_id: str, round: int, blob: bytes) -> None:
        """See `JobStore.save_checkpoint`."""
        if round < 0:
            raise ValueError(f"checkpoint round must be 0 or more, got {round}")
        with self._tx(write=True) as conn:
            # The job's row lock serializes savers of one job, so insert-or-update is safe.
            self._locked_job(conn, job_id)
            stored = conn.execute(
                select(_checkpoints.c.round).where(_checkpoints.c.job_id == job_id)
            ).scalar_one_or_none()
            if stored is None:
                conn.execute(insert(_checkpoints).values(job_id=job_id, round=round, blob=blob))
            elif round >= stored:
                conn.execute(
                    update(_checkpoints)
                    .where(_checkpoints.c.job_id == job_id)
                    .values(round=round, blob=blob)
                )
            else:
                raise ValueError(
                    f"job {job_id!r} has a checkpoint after round {stored}; round {round} is older"
                )

    def latest_checkpoint(self, job_id: str) -> tuple[int, bytes] | None:
        """See `JobStore.latest_checkpoint`."""
        with self._tx(write=False) as conn:
            row = conn.execute(
                select(_checkpoints.c.round, _checkpoints.c.blob).where(
                    _checkpoints.c.job_id == job_id
                )
            ).one_or_none()
            if row is None:
                if conn.execute(select(_jobs.c.seqno).where(_jobs.c.job_id == job_id)).first():
                    return None
                raise JobNotFound(job_id)
        return int(row.round), bytes(row.blob)

    def count_created_since(self, analyst: str, since: float) -> int:
        """See `JobStore.count_created_since`."""
        with self._tx(write=False) as conn:
            count = conn.execute(
                select(func.count())
                .select_from(_jobs)
                .where(_jobs.c.analyst == analyst, _jobs.c.created_at >= since)
            ).scalar_one()
        return int(count)

    def close(self) -> None:
        """See `JobStore.close`."""
        self._engine.dispose()


def open_job_store(url_or_path: str) -> JobStore:
    """The job store at a SQLAlchemy URL, or in a SQLite file at a bare filesystem path
    (its folders are created).

    Raises:
        JobStoreError: See `SqlJobStore`.
    """
    if "://" in url_or_path:
        return SqlJobStore(url_or_path)
    path = Path(url_or_path).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise JobStoreError(
            f"cannot create the job store's folder {str(path.parent)!r}: {err.strerror}",
            "choose a job store path in a folder the service may write",
        ) from None
    return SqlJobStore(URL.create("sqlite", database=str(path)).render_as_string())
