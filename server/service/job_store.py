"""The coordinator service's job store: interface, value types and errors."""

from __future__ import annotations

import abc
import builtins
import enum
import re
from collections.abc import Collection
from dataclasses import dataclass

from vocab.errors import SilobridgeError

__all__ = [
    "JOB_ID_RE",
    "MAX_PAYLOAD_BYTES",
    "MAX_SPEC_BYTES",
    "JobMode",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "JobStore",
    "JobStoreError",
    "StateConflict",
    "StoredEvent",
]

JOB_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,160}$")
"""Every job id the store assigns matches this (ids travel in paths and ledger keys)."""

MAX_SPEC_BYTES = 1 << 20
"""The largest serialized job spec the store accepts (1 MiB)."""

MAX_PAYLOAD_BYTES = 1 << 20
"""The largest event payload the store accepts, in UTF-8 bytes (1 MiB)."""


class JobState(enum.Enum):
    """Where a job is in its life; SUCCEEDED, FAILED and CANCELLED are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for the states a job never leaves."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobMode(enum.Enum):
    """Whether the job releases results or only asks the nodes for a quote."""

    RUN = "run"
    QUOTE = "quote"


@dataclass(frozen=True)
class JobRecord:
    """One job as the store holds it.

    Attributes:
        job_id: Assigned by the store, `f"{name}-{n}"` with `n` a store-wide increasing
            integer, so ids are unique even when names repeat; matches `JOB_ID_RE`.
        kind: The job's kind ("risk", "statistics", "regression"); free text to the store.
        name: The job's name from its spec.
        analyst: The analyst of the caller's credential.
        project: The project the job charges.
        spec: The serialized job spec, opaque to the store.
        mode: Run or quote.
        state: Where the job is.
        created_at: Unix seconds.
        updated_at: Unix seconds of the last state or cancel change.
        attempts: How many times a worker claimed it (0 while first queued).
        failure: Why it failed or was cancelled; "" otherwise.
        cancel_requested: Someone asked for the job to stop.
        last_seq: The highest event seq appended (0: none).
    """

    job_id: str
    kind: str
    name: str
    analyst: str
    project: str
    spec: bytes
    mode: JobMode
    state: JobState
    created_at: float
    updated_at: float
    attempts: int
    failure: str
    cancel_requested: bool
    last_seq: int


@dataclass(frozen=True)
class StoredEvent:
    """One progress event of a job; seqs are 1, 2, 3, ... per job, never reused."""

    job_id: str
    seq: int
    kind: str
    payload: str
    at: float


class JobStoreError(SilobridgeError):
    """The job store cannot be opened or reached, or refused an operation."""


class JobNotFound(JobStoreError):
    """No job has this id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} in the job store", "list jobs to see their ids")


class StateConflict(JobStoreError):
    """A state change does not fit the job's current state: a compare-and-set lost, or the
    job is already in a final state."""

    def __init__(
        self,
        job_id: str,
        *,
        current: JobState,
        requested: JobState,
        expected: JobState | None = None,
    ) -> None:
        self.job_id = job_id
        self.current = current
        self.requested = requested
        self.expected = expected
        if current.final:
            message = (
                f"job {job_id!r} already ended ({current.value}); it cannot become "
                f"{requested.value}"
            )
            hint = "a job in a final state never changes; submit a new job"
        else:
            message = (
                f"job {job_id!r} is {current.value}, not {expected.value if expected else '?'}; "
                f"it was not set to {requested.value}"
            )
            hint = "someone else changed the job first: read it again before deciding"
        super().__init__(message, hint)


class JobStore(abc.ABC):
    """Jobs, their events and checkpoints; every method is safe to call from many threads,
    and every state change is atomic (the store is the only source of truth about jobs)."""

    @abc.abstractmethod
    def create(
        self, *, kind: str, name: str, analyst: str, project: str, spec: bytes, mode: JobMode
    ) -> JobRecord:
        """Stores a new QUEUED job and assigns its id.

        Raises:
            ValueError: `name` is not made of letters, digits, '.', '_', '-' or makes an id
                longer than 160 characters, or `spec` is larger than 1 MiB.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> JobRecord:
        """The job.

        Raises:
            JobNotFound: No job has this id.
        """

    @abc.abstractmethod
    def list(
        self,
        *,
        analyst: str | None = None,
        states: Collection[JobState] | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs newest first (by creation order), optionally of one analyst and in some states.

        Args:
            analyst: Only this analyst's jobs.
            states: Only jobs in one of these states (empty: none).
            limit: At most this many, 1..1000.
            before_id: Only jobs created before this one (the last id of the previous page).

        Raises:
            ValueError: `limit` is outside 1..1000.
            JobNotFound: `before_id` names no job.
        """

    @abc.abstractmethod
    def claim_next(self) -> JobRecord | None:
        """Atomically moves the oldest QUEUED job without a cancel request to RUNNING and
        counts the attempt; of concurrent claimers, each job goes to exactly one.

        Returns:
            The claimed job, or None when nothing is queued.
        """

    @abc.abstractmethod
    def set_state(
        self,
        job_id: str,
        state: JobState,
        *,
        expected: JobState | None = None,
        failure: str = "",
    ) -> JobRecord:
        """Moves a job to `state`, only from `expected` when that is given.

        Args:
            job_id: The job.
            state: The new state.
            expected: Compare-and-set: the state the job must be in now.
            failure: Why, for FAILED or CANCELLED.

        Raises:
            JobNotFound: No job has this id.
            StateConflict: The job is not in `expected`, or is in a final state.
            ValueError: `failure` given for a state other than FAILED or CANCELLED.
        """

    @abc.abstractmethod
    def requeue_running(self) -> builtins.list[str]:
        """Crash recovery at service start: every RUNNING job goes back to QUEUED (attempts
        kept); a RUNNING job whose cancel was requested becomes CANCELLED instead, since a
        queued job with a cancel request would never run nor end.

        Returns:
            The ids of the requeued jobs, oldest first.
        """

    @abc.abstractmethod
    def request_cancel(self, job_id: str) -> JobRecord:
        """Asks a job to stop: a QUEUED job becomes CANCELLED at once, a RUNNING one is
        flagged for its worker; a job in a final state is returned unchanged.

        Raises:
            JobNotFound: No job has this id.
        """

    @abc.abstractmethod
    def append_event(self, job_id: str, kind: str, payload: str) -> StoredEvent:
        """Appends an event with the job's next seq; concurrent appenders never produce a
        duplicate or a missing seq.

        Raises:
            JobNotFound: No job has this id.
            ValueError: `payload` is larger than 1 MiB.
        """

    @abc.abstractmethod
    def events(
        self, job_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[StoredEvent]:
        """The job's events with seq above `after_seq`, ascending, at most `limit` (1..1000).

        Raises:
            JobNotFound: No job has this id.
            ValueError: `limit` is outside 1..1000 or `after_seq` is negative.
        """

    @abc.abstractmethod
    def save_checkpoint(self, job_id: str, round: int, blob: bytes) -> None:
        """Keeps `blob` as the job's checkpoint after `round`, replacing any earlier one.

        Raises:
            JobNotFound: No job has this id.
            ValueError: `round` is negative or below the stored checkpoint's round.
        """

    @abc.abstractmethod
    def latest_checkpoint(self, job_id: str) -> tuple[int, bytes] | None:
        """The job's checkpoint as (round, blob), or None when it has none.

        Raises:
            JobNotFound: No job has this id.
        """

    @abc.abstractmethod
    def count_created_since(self, analyst: str, since: float) -> int:
        """How many jobs `analyst` created at or after unix time `since` (for rate limits)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases the store's connections."""
