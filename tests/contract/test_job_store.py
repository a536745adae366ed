"""The job store's contract, run against SQLite (a temporary file) and a real PostgreSQL."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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
)
from server.service.sql_job_store import SqlJobStore, open_job_store
from tests.contract.conftest import PostgresServer

OpenStore = Callable[..., JobStore]


class FakeClock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _create(
    store: JobStore,
    name: str = "job",
    *,
    analyst: str = "ana",
    project: str = "p1",
    spec: bytes = b"spec",
    mode: JobMode = JobMode.RUN,
) -> JobRecord:
    return store.create(
        kind="statistics", name=name, analyst=analyst, project=project, spec=spec, mode=mode
    )


def _run_threads(count: int, work: Callable[[int], None]) -> None:
    """Runs `work(i)` in `count` threads released together; re-raises the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(i)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        raise errors[0]


class JobStoreContract:
    """What every job store backend must do; subclasses provide `url`."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def open_store(self, url: str) -> Iterator[OpenStore]:
        opened: list[JobStore] = []

        def open_(clock: Callable[[], float] | None = None) -> JobStore:
            store = SqlJobStore(url, clock) if clock else SqlJobStore(url)
            opened.append(store)
            return store

        yield open_
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: OpenStore) -> JobStore:
        return open_store()

    # --- create, get, list ---

    def test_create_stores_a_queued_job(self, open_store: OpenStore) -> None:
        store = open_store(FakeClock(1234.5))
        made = _create(
            store, "census", analyst="ana", project="p9", spec=b"\x00\xff", mode=JobMode.QUOTE
        )
        assert made.job_id.startswith("census-")
        assert JOB_ID_RE.fullmatch(made.job_id)
        assert (made.kind, made.name, made.analyst, made.project) == (
            "statistics", "census", "ana", "p9",
        )  # fmt: skip
        assert made.spec == b"\x00\xff"
        assert made.mode is JobMode.QUOTE
        assert made.state is JobState.QUEUED
        assert made.created_at == made.updated_at == 1234.5
        assert (made.attempts, made.failure, made.cancel_requested, made.last_seq) == (
            0, "", False, 0,
        )  # fmt: skip
        assert store.get(made.job_id) == made

    def test_ids_are_unique_and_increase_when_names_repeat(self, store: JobStore) -> None:
        ids = [_create(store, "same").job_id for _ in range(3)]
        assert len(set(ids)) == 3
        numbers = [int(i.rsplit("-", 1)[1]) for i in ids]
        assert numbers == sorted(numbers)
        other = _create(store, "other")
        assert int(other.job_id.rsplit("-", 1)[1]) > numbers[-1]

    @pytest.mark.parametrize("name", ["", "has space", "slash/no", "ünïcode", "x" * 160])
    def test_a_name_that_makes_no_valid_id_is_refused(self, store: JobStore, name: str) -> None:
        with pytest.raises(ValueError, match="job name"):
            _create(store, name)
        assert store.list() == []

    def test_get_unknown_raises_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound) as caught:
            store.get("nope-1")
        assert caught.value.job_id == "nope-1"
        assert isinstance(caught.value, JobStoreError)
        assert caught.value.hint

    def test_list_is_newest_first_and_pages_with_before_id(self, store: JobStore) -> None:
        ids = [_create(store, f"j{i}").job_id for i in range(7)]
        newest_first = list(reversed(ids))
        assert [r.job_id for r in store.list()] == newest_first
        pages: list[str] = []
        before: str | None = None
        while True:
            page = store.list(limit=3, before_id=before)
            if not page:
                break
            pages += [r.job_id for r in page]
            before = page[-1].job_id
        assert pages == newest_first
        assert [r.job_id for r in store.list(before_id=ids[0])] == []

    def test_list_filters_by_analyst_and_states(self, store: JobStore) -> None:
        a1 = _create(store, "a1", analyst="ana")
        b1 = _create(store, "b1", analyst="bob")
        a2 = _create(store, "a2", analyst="ana")
        claimed = store.claim_next()
        assert claimed is not None and claimed.job_id == a1.job_id
        assert [r.job_id for r in store.list(analyst="ana")] == [a2.job_id, a1.job_id]
        assert [r.job_id for r in store.list(states=[JobState.RUNNING])] == [a1.job_id]
        queued = store.list(states={JobState.QUEUED})
        assert [r.job_id for r in queued] == [a2.job_id, b1.job_id]
        both = store.list(analyst="ana", states=(JobState.QUEUED,))
        assert [r.job_id for r in both] == [a2.job_id]
        assert store.list(states=[]) == []
        assert store.list(analyst="nobody") == []

    @pytest.mark.parametrize("limit", [0, -1, 1001])
    def test_list_limit_outside_1_to_1000_is_refused(self, store: JobStore, limit: int) -> None:
        with pytest.raises(ValueError, match="limit"):
            store.list(limit=limit)

    def test_list_before_an_unknown_id_raises_job_not_found(self, store: JobStore) -> None:
        _create(store)
        with pytest.raises(JobNotFound):
            store.list(before_id="ghost-99")

    # --- claiming ---

    def test_claim_next_takes_the_oldest_queued_job(self, open_store: OpenStore) -> None:
        clock = FakeClock(10.0)
        store = open_store(clock)
        first, second = _create(store, "first"), _create(store, "second")
        clock.now = 20.0
        claimed = store.claim_next()
        assert claimed is not None
        assert claimed.job_id == first.job_id
        assert (claimed.state, claimed.attempts, claimed.updated_at) == (JobState.RUNNING, 1, 20.0)
        assert store.get(first.job_id) == claimed
        again = store.claim_next()
        assert again is not None and again.job_id == second.job_id
        assert store.claim_next() is None

    def test_claim_next_skips_cancelled_jobs(self, store: JobStore) -> None:
        cancelled, kept = _create(store, "gone"), _create(store, "kept")
        store.request_cancel(cancelled.job_id)
        claimed = store.claim_next()
        assert claimed is not None and claimed.job_id == kept.job_id
        assert store.claim_next() is None

    def test_concurrent_claimers_each_get_a_different_job(self, open_store: OpenStore) -> None:
        stores = [open_store(), open_store()]
        made = {_create(stores[0], f"j{i}").job_id for i in range(40)}
        claims: list[list[str]] = [[] for _ in range(4)]

        def claim_all(i: int) -> None:
            # Two store instances: claimers share neither an engine nor a connection pool.
            store = stores[i % 2]
            while (job := store.claim_next()) is not None:
                claims[i].append(job.job_id)

        _run_threads(4, claim_all)
        every = [job_id for claimed in claims for job_id in claimed]
        assert sorted(every) == sorted(made)
        assert all(stores[0].get(j).attempts == 1 for j in made)

    # --- state changes ---

    def test_set_state_compare_and_set(self, open_store: OpenStore) -> None:
        clock = FakeClock(5.0)
        store = open_store(clock)
        job = _create(store)
        with pytest.raises(StateConflict) as caught:
            store.set_state(job.job_id, JobState.SUCCEEDED, expected=JobState.RUNNING)
        assert caught.value.current is JobState.QUEUED
        assert store.get(job.job_id) == job
        assert store.claim_next() is not None
        clock.now = 9.0
        done = store.set_state(job.job_id, JobState.SUCCEEDED, expected=JobState.RUNNING)
        assert (done.state, done.updated_at, done.failure) == (JobState.SUCCEEDED, 9.0, "")

    def test_set_state_without_expected_moves_any_live_job(self, store: JobStore) -> None:
        job = _create(store)
        failed = store.set_state(job.job_id, JobState.FAILED, failure="nodes refused")
        assert (failed.state, failed.failure) == (JobState.FAILED, "nodes refused")

    @pytest.mark.parametrize("final", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED])
    def test_a_final_state_is_never_left(self, store: JobStore, final: JobState) -> None:
        job = _create(store)
        ended = store.set_state(job.job_id, final)
        for state in JobState:
            with pytest.raises(StateConflict, match="already ended"):
                store.set_state(job.job_id, state)
        with pytest.raises(StateConflict):
            store.set_state(job.job_id, JobState.QUEUED, expected=final)
        assert store.get(job.job_id) == ended

    def test_final_states(self) -> None:
        assert {s for s in JobState if s.final} == {
            JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
        }  # fmt: skip

    def test_a_failure_reason_only_fits_failed_or_cancelled(self, store: JobStore) -> None:
        job = _create(store)
        with pytest.raises(ValueError, match="failure"):
            store.set_state(job.job_id, JobState.RUNNING, failure="why")
        assert store.get(job.job_id) == job

    def test_set_state_of_unknown_job_raises_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound):
            store.set_state("ghost-1", JobState.RUNNING)

    def test_requeue_running_puts_running_jobs_back(self, store: JobStore) -> None:
        done, r1, r2, queued = (_create(store, n) for n in ("done", "r1", "r2", "queued"))
        for _ in range(3):
            assert store.claim_next() is not None
        store.set_state(done.job_id, JobState.SUCCEEDED, expected=JobState.RUNNING)
        assert store.requeue_running() == [r1.job_id, r2.job_id]
        for job_id in (r1.job_id, r2.job_id):
            record = store.get(job_id)
            assert (record.state, record.attempts) == (JobState.QUEUED, 1)
        assert store.get(done.job_id).state is JobState.SUCCEEDED
        assert store.get(queued.job_id).attempts == 0
        again = store.claim_next()
        assert again is not None and (again.job_id, again.attempts) == (r1.job_id, 2)
        assert store.requeue_running() == [r1.job_id]

    def test_requeue_running_ends_jobs_whose_cancel_was_requested(self, store: JobStore) -> None:
        job = _create(store)
        assert store.claim_next() is not None
        store.request_cancel(job.job_id)
        assert store.requeue_running() == []
        record = store.get(job.job_id)
        assert (record.state, record.cancel_requested) == (JobState.CANCELLED, True)
        assert record.failure

    # --- cancelling ---

    def test_cancelling_a_queued_job_ends_it(self, store: JobStore) -> None:
        job = _create(store)
        cancelled = store.request_cancel(job.job_id)
        assert (cancelled.state, cancelled.cancel_requested) == (JobState.CANCELLED, True)
        assert store.get(job.job_id) == cancelled
        assert store.claim_next() is None

    def test_cancelling_a_running_job_flags_it(self, store: JobStore) -> None:
        job = _create(store)
        assert store.claim_next() is not None
        flagged = store.request_cancel(job.job_id)
        assert (flagged.state, flagged.cancel_requested) == (JobState.RUNNING, True)
        ended = store.set_state(
            job.job_id, JobState.CANCELLED, expected=JobState.RUNNING, failure="by the analyst"
        )
        assert (ended.state, ended.failure) == (JobState.CANCELLED, "by the analyst")

    def test_cancelling_a_final_job_changes_nothing(self, store: JobStore) -> None:
        job = _create(store)
        done = store.set_state(job.job_id, JobState.SUCCEEDED)
        assert store.request_cancel(job.job_id) == done
        assert store.get(job.job_id) == done

    def test_cancelling_an_unknown_job_raises_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound):
            store.request_cancel("ghost-1")

    # --- events ---

    def test_events_get_dense_seqs_and_page_after_seq(self, open_store: OpenStore) -> None:
        clock = FakeClock(50.0)
        store = open_store(clock)
        job, other = _create(store, "a"), _create(store, "b")
        appended = [store.append_event(job.job_id, f"k{i}", f'{{"i": {i}}}') for i in range(5)]
        store.append_event(other.job_id, "x", "{}")
        assert [e.seq for e in appended] == [1, 2, 3, 4, 5]
        assert store.get(job.job_id).last_seq == 5
        assert store.get(other.job_id).last_seq == 1
        assert store.events(job.job_id) == appended
        assert store.events(job.job_id, after_seq=2, limit=2) == appended[2:4]
        assert store.events(job.job_id, after_seq=5) == []
        assert (appended[0].kind, appended[0].payload, appended[0].at) == ("k0", '{"i": 0}', 50.0)
        assert store.events(other.job_id)[0].job_id == other.job_id

    def test_events_of_an_unknown_job_raise_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound):
            store.append_event("ghost-1", "k", "{}")
        with pytest.raises(JobNotFound):
            store.events("ghost-1")
        assert store.events(_create(store).job_id) == []

    @pytest.mark.parametrize(("after_seq", "limit"), [(-1, 10), (0, 0), (0, 1001)])
    def test_events_paging_bounds(self, store: JobStore, after_seq: int, limit: int) -> None:
        job = _create(store)
        with pytest.raises(ValueError):
            store.events(job.job_id, after_seq=after_seq, limit=limit)

    def test_concurrent_appenders_never_duplicate_or_skip_a_seq(
        self, open_store: OpenStore
    ) -> None:
        stores = [open_store(), open_store()]
        job = _create(stores[0])

        def append(i: int) -> None:
            for n in range(50):
                stores[i % 2].append_event(job.job_id, "tick", f'{{"thread": {i}, "n": {n}}}')

        _run_threads(4, append)
        events = stores[0].events(job.job_id)
        assert [e.seq for e in events] == list(range(1, 201))
        assert stores[0].get(job.job_id).last_seq == 200
        # Each thread's own events stay in the order it appended them.
        for i in range(4):
            mine = [e.payload for e in events if f'"thread": {i},' in e.payload]
            assert mine == [f'{{"thread": {i}, "n": {n}}}' for n in range(50)]

    # --- checkpoints ---

    def test_a_checkpoint_replaces_the_earlier_one(self, store: JobStore) -> None:
        job = _create(store)
        assert store.latest_checkpoint(job.job_id) is None
        store.save_checkpoint(job.job_id, 1, b"one")
        store.save_checkpoint(job.job_id, 2, b"two")
        assert store.latest_checkpoint(job.job_id) == (2, b"two")
        store.save_checkpoint(job.job_id, 2, b"two again")
        assert store.latest_checkpoint(job.job_id) == (2, b"two again")
        with pytest.raises(ValueError, match="older"):
            store.save_checkpoint(job.job_id, 1, b"stale")
        with pytest.raises(ValueError):
            store.save_checkpoint(job.job_id, -1, b"")
        assert store.latest_checkpoint(job.job_id) == (2, b"two again")

    def test_checkpoints_of_an_unknown_job_raise_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound):
            store.save_checkpoint("ghost-1", 1, b"x")
        with pytest.raises(JobNotFound):
            store.latest_checkpoint("ghost-1")

    # --- rate limits, sizes, persistence ---

    def test_count_created_since(self, open_store: OpenStore) -> None:
        clock = FakeClock(100.0)
        store = open_store(clock)
        for now, analyst in ((100.0, "ana"), (200.0, "ana"), (250.0, "bob"), (300.0, "ana")):
            clock.now = now
            _create(store, analyst=analyst)
        assert store.count_created_since("ana", 0.0) == 3
        assert store.count_created_since("ana", 200.0) == 2
        assert store.count_created_since("ana", 300.5) == 0
        assert store.count_created_since("bob", 0.0) == 1
        assert store.count_created_since("eve", 0.0) == 0

    def test_size_limits(self, store: JobStore) -> None:
        largest = _create(store, spec=b"s" * MAX_SPEC_BYTES)
        assert store.get(largest.job_id).spec == b"s" * MAX_SPEC_BYTES
        with pytest.raises(ValueError, match="spec"):
            _create(store, spec=b"s" * (MAX_SPEC_BYTES + 1))
        store.append_event(largest.job_id, "big", "p" * MAX_PAYLOAD_BYTES)
        # The limit counts UTF-8 bytes, not characters.
        with pytest.raises(ValueError, match="payload"):
            store.append_event(largest.job_id, "big", "é" * (MAX_PAYLOAD_BYTES // 2 + 1))
        assert store.get(largest.job_id).last_seq == 1

    def test_everything_survives_closing_and_reopening(
        self, open_store: OpenStore, url: str
    ) -> None:
        store = open_store()
        job = _create(store, "kept")
        assert store.claim_next() is not None
        store.append_event(job.job_id, "round_start", '{"round": 1}')
        store.save_checkpoint(job.job_id, 1, b"weights")
        before = store.get(job.job_id)
        store.close()
        reopened = open_store()
        assert reopened.get(job.job_id) == before
        assert [e.seq for e in reopened.events(job.job_id)] == [1]
        assert reopened.latest_checkpoint(job.job_id) == (1, b"weights")
        later = _create(reopened, "kept")
        assert int(later.job_id.rsplit("-", 1)[1]) > int(job.job_id.rsplit("-", 1)[1])


class TestSqliteJobStore(JobStoreContract):
    """The contract on a SQLite file."""

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'jobs.db'}"


class TestPostgresJobStore(JobStoreContract):
    """The contract on a real PostgreSQL server (see conftest.py)."""

    @pytest.fixture
    def url(self, postgres_server: PostgresServer) -> str:
        # A fresh schema per test: quicker than a database per test, and as isolated.
        with postgres_server.connect() as conn:
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return postgres_server.url()


# --- opening ---


def test_open_job_store_takes_a_bare_path_and_creates_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "jobs.db"
    store = open_job_store(str(path))
    try:
        job = _create(store)
    finally:
        store.close()
    assert path.is_file()
    reopened = open_job_store(f"sqlite:///{path}")
    try:
        assert reopened.get(job.job_id).name == "job"
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "url",
    [
        "nosuchdb://ana:s3cr3t-pw@db.example:5432/jobs",
        "postgresql+nosuchdriver://ana:s3cr3t-pw@127.0.0.1/jobs",
        "postgresql://ana:s3cr3t-pw@127.0.0.1/jobs",
        "not a url://ana:s3cr3t-pw@host",
        "sqlite://",
    ],
)
def test_a_bad_url_says_what_to_fix_without_the_password(url: str) -> None:
    with pytest.raises(JobStoreError) as caught:
        SqlJobStore(url)
    _assert_clean(caught.value)


def test_an_unreachable_server_says_what_to_fix_without_the_password() -> None:
    with _closed_port() as port:
        url = f"postgresql+psycopg://ana:s3cr3t-pw@127.0.0.1:{port}/jobs"
        with pytest.raises(JobStoreError, match="cannot open the job store") as caught:
            SqlJobStore(url)
    assert f"127.0.0.1:{port}" in caught.value.message
    _assert_clean(caught.value)


def test_a_missing_sqlite_folder_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(JobStoreError, match="cannot open the job store") as caught:
        SqlJobStore(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")
    _assert_clean(caught.value)


def _assert_clean(err: JobStoreError) -> None:
    """A user-facing error: a hint, no password and no database exception chained."""
    assert err.hint
    assert "s3cr3t" not in str(err)
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__


@contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, for as long as the block runs."""
    # Bound but not listening: a connection is refused at once.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_a_store_made_before_an_index_existed_gets_it_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.db"
    SqlJobStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX jobs_by_analyst_seqno")
    SqlJobStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "jobs_by_analyst_seqno" in names
