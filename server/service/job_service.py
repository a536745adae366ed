"""What the API does, without protobuf: submit, read and cancel jobs, nodes, caps, audit.

The servicer turns requests into calls here and results into replies. Roles are checked
once, by the interceptor; here the caller matters for what is theirs: an analyst's job is
charged to the analyst the credential names and to one of the projects the service grants
them (never what the spec declares), and an analyst reads and cancels only their own jobs.
An officer reads every job. Another analyst's job is reported as not found, so its id
says nothing.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from server.central_budget.central_budget import CapKind, CapStanding
from server.home.coordinator_home import CoordinatorHome
from server.interruptions import JobInterrupted
from server.schema_round import SchemaAnswer
from server.service.errors import Conflict, NotFound, RateLimited, Unavailable
from server.service.identity import Caller, PermissionDenied, Role
from server.service.job_store import (
    JobMode,
    JobNotFound,
    JobRecord,
    JobState,
    JobStore,
    StoredEvent,
)
from server.service.service_config import ServiceConfig
from vocab.audit_chain import AuditEntry, verify_chain
from vocab.audit_log import read_entries
from vocab.bundle import RESULT_FILE
from vocab.errors import JobSpecError, RefusalCode
from vocab.serde import job_from_bytes, job_to_bytes

__all__ = ["AuditCheck", "JobService", "NodeView"]

CHUNK = 64 * 1024
"""Bytes per result chunk."""

_HOUR_S = 3600.0


@dataclass(frozen=True)
class NodeView:
    """A registered department as operators see it."""

    department: str
    key_fingerprint: str
    status: str
    last_seen: float
    approved_apps: tuple[str, ...] = ()
    refused_apps: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditCheck:
    """The coordinator log's verification against the coordinator's own key."""

    ok: bool
    entries: int
    head: str
    problem: str


class JobService:
    """The domain behind the API.

    Args:
        store: The job store.
        config: The service's configuration (grants, rate limit).
        home: The coordinator home (caps, audit log, node registry).
        results: The jobs' bundle folders (`<results>/<job id>/`).
        wake: Called after a job is queued or cancelled (the scheduler looks at once).
        clock: Unix time, injectable for tests.
        describe: Asks the connected nodes for their declared columns (`job schema`).
    """

    def __init__(
        self, store: JobStore, config: ServiceConfig, home: CoordinatorHome, results: Path,
        wake: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time,
        describe: Callable[[str, str], list[SchemaAnswer]] | None = None,
    ) -> None:  # fmt: skip
        self._store = store
        self._config = config
        self._home = home
        self._results = results
        self._wake = wake
        self._clock = clock
        self._describe = describe
        self._asked: dict[str, list[float]] = {}
        self._asked_lock = threading.Lock()

    # --- jobs ---------------------------------------------------------------------------

    def projects(self, caller: Caller) -> tuple[str, ...]:
        return self._config.projects_of(caller.name) if caller.role is Role.ANALYST else ()

    def submit(self, caller: Caller, spec_bytes: bytes, project: str, mode: JobMode) -> JobRecord:
        """Queue a job charged to the caller and one of their projects.

        Raises:
            JobSpecError: The spec is not a valid job spec.
            PermissionDenied: The caller has no project, or not the one named.
            RateLimited: The caller submitted `submits_per_hour` jobs in the last hour.
        """
        spec = job_from_bytes(spec_bytes)
        granted = self.projects(caller)
        if not granted:
            raise PermissionDenied(
                f"{caller.label()} has no project to charge",
                "the operator grants projects in the service config's [analysts] table",
            )
        if not project:
            if len(granted) > 1:
                raise JobSpecError(
                    f"{caller.label()} may charge several projects: {', '.join(granted)}",
                    "name one with --project",
                )
            project = granted[0]
        if project not in granted:
            raise PermissionDenied(
                f"{caller.label()} may not charge project {project!r}",
                f"charge one of: {', '.join(granted)}",
            )
        since = self._clock() - _HOUR_S
        if self._store.count_created_since(caller.name, since) >= self._config.submits_per_hour:
            raise RateLimited(
                f"{caller.label()} submitted {self._config.submits_per_hour} jobs in the "
                "last hour, the service's limit",
                "wait, or ask the operator to raise submits_per_hour",
            )
        # The credential's analyst and the granted project, whatever the spec declared.
        charged = dataclasses.replace(spec, analyst=caller.name, project=project)
        record = self._store.create(
            kind=charged.kind, name=charged.name, analyst=caller.name, project=project,
            spec=job_to_bytes(charged), mode=mode,
        )  # fmt: skip
        self._wake()
        return record

    def get(self, caller: Caller, job_id: str) -> JobRecord:
        """The job, if the caller may see it.

        Raises:
            NotFound: No such job, or another analyst's.
        """
        try:
            record = self._store.get(job_id)
        except JobNotFound:
            record = None
        if record is None or (caller.role is Role.ANALYST and record.analyst != caller.name):
            raise NotFound(f"no job {job_id!r} of yours", "list your jobs with `job list`")
        return record

    def list_jobs(
        self, caller: Caller, *, states: Collection[JobState] = (), limit: int = 100,
        before_id: str = "", analyst: str = "",
    ) -> list[JobRecord]:  # fmt: skip
        """Jobs newest first: an analyst's own; an officer's choice of analyst or all."""
        if not 1 <= limit <= 1000:
            raise JobSpecError(f"limit must be in 1..1000, got {limit}")
        if caller.role is Role.ANALYST:
            if analyst and analyst != caller.name:
                raise PermissionDenied(f"{caller.label()} may list only their own jobs")
            analyst = caller.name
        if before_id:
            self.get(caller, before_id)
        return self._store.list(
            analyst=analyst or None, states=states or None, limit=limit,
            before_id=before_id or None,
        )  # fmt: skip

    def cancel(self, caller: Caller, job_id: str) -> JobRecord:
        """Ask for the job to stop: a queued job never runs; a running one stops at the
        runner's next chance (what was released stays charged)."""
        self.get(caller, job_id)
        record = self._store.request_cancel(job_id)
        self._wake()
        return record

    def events(
        self, caller: Caller, job_id: str, after_seq: int, limit: int = 500
    ) -> tuple[JobRecord, list[StoredEvent]]:
        """The job (as now) and its events after `after_seq`."""
        record = self.get(caller, job_id)
        return record, self._store.events(job_id, after_seq=after_seq, limit=limit)

    def result_files(self, caller: Caller, job_id: str) -> list[Path]:
        """The bundle's files of an ended job, result.json first.

        Raises:
            Conflict: The job has not ended, or wrote no bundle.
        """
        record = self.get(caller, job_id)
        if not record.state.final:
            raise Conflict(
                f"job {job_id} is {record.state.value}: no result yet",
                "watch it until it ends (`job watch`)",
            )
        folder = self._results / job_id
        files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
        if not files:
            raise Conflict(f"job {job_id} ended {record.state.value} without a result bundle")
        return sorted(files, key=lambda p: (p.name != RESULT_FILE, p.name))

    # --- nodes, caps, audit -----------------------------------------------------------------

    def describe_columns(self, caller: Caller, dataset: str) -> list[SchemaAnswer]:
        """Every connected department's declared open and conditional columns.

        Each call sends one message to every node, so it counts against the caller's
        hourly limit like a submission.

        Raises:
            RateLimited: The caller asked `submits_per_hour` times in the last hour.
            Unavailable: The federation cannot be reached now.
        """
        now = self._clock()
        with self._asked_lock:
            recent = [t for t in self._asked.get(caller.name, []) if t > now - _HOUR_S]
            if len(recent) >= self._config.submits_per_hour:
                raise RateLimited(
                    f"{caller.label()} asked for the schema {len(recent)} times in the last "
                    "hour, the service's limit",
                    "wait, or ask the operator to raise submits_per_hour",
                )
            self._asked[caller.name] = [*recent, now]
        if self._describe is None:
            raise Unavailable("this service has no federation to ask")
        try:
            return self._describe(caller.label(), dataset)
        except JobInterrupted as err:
            raise Unavailable(f"the federation cannot be reached: {err}", "try again") from None

    def nodes(self) -> list[NodeView]:
        """Registered departments with their key fingerprints, when a reply of theirs was
        last logged, and the app bundles their node answered in or refused as unapproved
        (newest first; the job's bundle is in its `job_received` entry)."""
        seen: dict[str, float] = {}
        app_of: dict[str, str] = {}
        approved: dict[str, dict[str, None]] = {}
        refused: dict[str, dict[str, None]] = {}
        for entry in self._entries():
            data = entry.data
            if entry.kind == "job_received" and isinstance(data.get("app"), str):
                app_of[str(data.get("job_id"))] = data["app"]
            department = data.get("department")
            if entry.kind != "node_reply" or not isinstance(department, str):
                continue
            seen[department] = _unix(entry.ts)
            app = app_of.get(str(data.get("job_id")))
            if app is None or data.get("status") == "no_answer":
                continue
            # Newest last here, so a bundle moves to the end each time it is seen again.
            into = refused if data.get("code") == RefusalCode.APP_NOT_APPROVED.value else approved
            into.setdefault(department, {}).pop(app, None)
            into[department][app] = None
        views = []
        registry = self._home.nodes
        for department in registry.departments():
            identity = registry.identity_of(department)
            views.append(
                NodeView(
                    department=department,
                    key_fingerprint=identity.key_id if identity is not None else "",
                    status="seen" if department in seen else "registered",
                    last_seen=seen.get(department, 0.0),
                    approved_apps=tuple(reversed(approved.get(department, {}))),
                    refused_apps=tuple(reversed(refused.get(department, {}))),
                )
            )
        return views

    def caps(self) -> list[CapStanding]:
        return self._home.budget().standings()

    def set_cap(self, kind: CapKind, key: str, epsilon: float) -> list[CapStanding]:
        """Set a cap (audited by the coordinator home) and return the standings."""
        self._home.set_cap(kind, key, epsilon)
        return self.caps()

    def _entries(self) -> list[AuditEntry]:
        path = self._home.audit_path
        return read_entries(path) if path.is_file() else []

    def audit(self, after_seq: int = 0, limit: int = 0) -> Iterator[AuditEntry]:
        """The coordinator log's entries after `after_seq` (all, or the first `limit`)."""
        sent = 0
        for entry in self._entries():
            if entry.seq <= after_seq:
                continue
            if limit and sent >= limit:
                return
            sent += 1
            yield entry

    def verify_audit(self) -> AuditCheck:
        """Verify the coordinator log against the coordinator's own public key."""
        entries = self._entries()
        result = verify_chain(entries, self._home.identity().public)
        head = entries[-1].hash if entries else ""
        problem = "" if result.ok else f"entry {result.first_bad}: {result.reason}"
        return AuditCheck(result.ok, len(entries), head, problem)


def _unix(ts: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return 0.0
