"""The `silobridge.v1.Coordinator` servicer: requests in, `JobService` calls, replies out.

Thin on purpose: the interceptor has authenticated and authorized the call and maps
every error raised here to a status code; this module only converts between protobuf and
the domain (the one place besides `vocab.serde` that touches `_pb2` on the server side).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from protos.silobridge.v1 import coordinator_pb2 as pb
from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
from server.central_budget.central_budget import CapKind, CapStanding
from server.service.event_hub import EventHub
from server.service.identity import Caller, Role, caller_from_auth_context
from server.service.job_service import CHUNK, JobService
from server.service.job_store import JobMode, JobRecord, JobState
from vocab.errors import JobSpecError

__all__ = ["CoordinatorServicer", "job_info"]

_STATE_TO_PB = {
    JobState.QUEUED: pb.JOB_STATE_QUEUED,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: pb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
_ROLE_TO_PB = {
    Role.ANALYST: pb.CALLER_ROLE_ANALYST,
    Role.OFFICER: pb.CALLER_ROLE_OFFICER,
    Role.OPERATOR: pb.CALLER_ROLE_OPERATOR,
}
_CAP_TO_PB = {CapKind.ANALYST: pb.CAP_KIND_ANALYST, CapKind.PROJECT: pb.CAP_KIND_PROJECT}
_CAP_FROM_PB = {v: k for k, v in _CAP_TO_PB.items()}

WATCH_POLL_S = 1.0
"""How often an open watch stream looks at the store when nothing woke it (events another
process appended)."""


def job_info(record: JobRecord) -> pb.JobInfo:
    """A job record as the API shows it."""
    return pb.JobInfo(
        job_id=record.job_id, kind=record.kind, name=record.name, analyst=record.analyst,
        project=record.project,
        mode=pb.JOB_MODE_QUOTE if record.mode is JobMode.QUOTE else pb.JOB_MODE_RUN,
        state=_STATE_TO_PB[record.state], created_at=record.created_at,
        updated_at=record.updated_at, attempts=record.attempts, failure=record.failure,
        cancel_requested=record.cancel_requested, last_seq=record.last_seq,
    )  # fmt: skip


def _standings(standings: list[CapStanding]) -> pb.CapsResponse:
    return pb.CapsResponse(
        standings=[
            pb.CapStandingInfo(
                kind=_CAP_TO_PB[s.kind],
                key=s.key,
                capped=s.cap is not None,
                cap=s.cap if s.cap is not None else 0.0,
                reserved=s.reserved,
                settled=s.settled,
                remaining=s.remaining if s.remaining is not None else 0.0,
            )
            for s in standings
        ]
    )


def _caller(context: grpc.ServicerContext) -> Caller:
    # The interceptor authenticated this very call; reading it again keeps no state between.
    return caller_from_auth_context(context.auth_context())


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    """Serves the API from a `JobService`.

    Args:
        jobs: The domain.
        stopping: Set when the service shuts down: open watch streams end (the client
            reconnects to the next instance and resumes from its last seq).
        hub: Wakes an open watch stream when its job gets an event.
    """

    def __init__(
        self, jobs: JobService, stopping: threading.Event | None = None,
        hub: EventHub | None = None,
    ) -> None:  # fmt: skip
        self._jobs = jobs
        self._stopping = stopping or threading.Event()
        self._hub = hub or EventHub()

    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> Any:
        caller = _caller(context)
        return pb.WhoAmIResponse(
            name=caller.name, role=_ROLE_TO_PB[caller.role], projects=self._jobs.projects(caller)
        )

    def _submit(self, request: Any, context: grpc.ServicerContext, mode: JobMode) -> Any:
        if not request.HasField("spec"):
            raise JobSpecError("the request carries no job spec", "send the spec to run")
        record = self._jobs.submit(
            _caller(context), request.spec.SerializeToString(), request.project, mode
        )
        return job_info(record)

    def SubmitJob(self, request: pb.SubmitJobRequest, context: grpc.ServicerContext) -> Any:
        return self._submit(request, context, JobMode.RUN)

    def QuoteJob(self, request: pb.SubmitJobRequest, context: grpc.ServicerContext) -> Any:
        return self._submit(request, context, JobMode.QUOTE)

    def GetJob(self, request: pb.JobRef, context: grpc.ServicerContext) -> Any:
        return job_info(self._jobs.get(_caller(context), request.job_id))

    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> Any:
        states = []
        for value in request.states:
            if value not in _STATE_FROM_PB:
                raise JobSpecError(f"unknown job state {value} in the request")
            states.append(_STATE_FROM_PB[value])
        limit = request.limit or 100
        records = self._jobs.list_jobs(
            _caller(context), states=states, limit=limit, before_id=request.before_id,
            analyst=request.analyst,
        )  # fmt: skip
        more = len(records) == limit
        return pb.ListJobsResponse(
            jobs=[job_info(r) for r in records],
            next_before_id=records[-1].job_id if records and more else "",
        )

    def CancelJob(self, request: pb.JobRef, context: grpc.ServicerContext) -> Any:
        return job_info(self._jobs.cancel(_caller(context), request.job_id))

    def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JobEvent]:
        caller = _caller(context)
        job_id, after = request.job_id, request.after_seq
        self._jobs.get(caller, job_id)  # the caller's to see: checked once
        looked = 0.0
        while True:
            kept = self._hub.after(job_id, after)
            stale = time.monotonic() - looked > WATCH_POLL_S
            if kept is None or (not kept[0] and stale):
                record, events = self._jobs.events(caller, job_id, after)
                ended, looked = record.state.final and after >= record.last_seq, time.monotonic()
            else:
                events, ended = kept
            for event in events:
                yield pb.JobEvent(
                    job_id=event.job_id, seq=event.seq, kind=event.kind, json=event.payload,
                    at=event.at,
                )  # fmt: skip
                after = event.seq
            if events:
                continue
            if ended:  # its last event was sent
                return
            self._hub.wait(WATCH_POLL_S)
            if not context.is_active() or self._stopping.is_set():
                return

    def FetchResult(self, request: pb.JobRef, context: grpc.ServicerContext) -> Any:
        for path in self._jobs.result_files(_caller(context), request.job_id):
            offset = 0
            with path.open("rb") as fh:
                while True:
                    data = fh.read(CHUNK)
                    last = len(data) < CHUNK
                    if data or offset == 0:
                        yield pb.ResultChunk(file=path.name, offset=offset, data=data, last=last)
                    offset += len(data)
                    if last:
                        break

    def DescribeColumns(
        self, request: pb.DescribeColumnsRequest, context: grpc.ServicerContext
    ) -> Any:
        answers = self._jobs.describe_columns(_caller(context), request.dataset[:64])
        return pb.DescribeColumnsResponse(
            departments=[
                pb.DepartmentColumns(
                    department=a.department,
                    dataset=a.schema.dataset if a.schema else "",
                    status=a.status,
                    code=a.code,
                    reason=a.reason,
                    columns=[
                        pb.DeclaredColumn(name=c.name, type=c.type, column_class=c.column_class)
                        for c in (a.schema.columns if a.schema else ())
                    ],
                )
                for a in answers
            ]
        )

    def ListNodes(self, request: pb.ListNodesRequest, context: grpc.ServicerContext) -> Any:
        return pb.ListNodesResponse(
            nodes=[
                pb.NodeInfo(
                    department=n.department,
                    key_fingerprint=n.key_fingerprint,
                    status=n.status,
                    last_seen=n.last_seen,
                    approved_apps=n.approved_apps,
                    refused_apps=n.refused_apps,
                )
                for n in self._jobs.nodes()
            ]
        )

    def GetCaps(self, request: pb.GetCapsRequest, context: grpc.ServicerContext) -> Any:
        return _standings(self._jobs.caps())

    def SetCap(self, request: pb.SetCapRequest, context: grpc.ServicerContext) -> Any:
        kind = _CAP_FROM_PB.get(request.kind)
        if kind is None:
            raise JobSpecError("a cap needs a kind: analyst or project")
        return _standings(self._jobs.set_cap(kind, request.key, request.epsilon))

    def ReadAudit(self, request: pb.ReadAuditRequest, context: grpc.ServicerContext) -> Any:
        for entry in self._jobs.audit(request.after_seq, request.limit):
            yield pb.AuditRecord(seq=entry.seq, json=entry.to_json())

    def VerifyAudit(self, request: pb.VerifyAuditRequest, context: grpc.ServicerContext) -> Any:
        check = self._jobs.verify_audit()
        return pb.VerifyAuditResponse(
            ok=check.ok, entries=check.entries, head=check.head, problem=check.problem
        )
