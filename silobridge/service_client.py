"""A typed client of the coordinator service's API (`silobridge.v1.Coordinator`).

Callers authenticate with mutual TLS: the client certificate and key `silobridge certs
issue` made for them, and the deployment CA's certificate to verify the service. Where to
find the service and these files comes from a small TOML file:

    [client]
    address = "coordinator.example:9443"
    cert = "analyst-r.ahmed.crt"   # relative paths are read from the file's folder
    key = "analyst-r.ahmed.key"
    ca = "ca.pem"

Every `grpc.RpcError` leaves this module as a `ServiceError` subclass that names the call,
the status and the service's own detail, and says what to do. Protobuf stops here: the
methods return small frozen dataclasses (or the vocabulary's own types).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from protos.silobridge.v1 import coordinator_pb2 as pb
from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
from protos.silobridge.v1 import job_pb2
from vocab.audit_chain import AuditEntry
from vocab.bundle import RESULT_FILE
from vocab.errors import ConfigError, SilobridgeError
from vocab.progress import EVENT_PREFIX, ProgressEvent, decode_event
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope

__all__ = [
    "AuditVerification",
    "CapKind",
    "CapStandingView",
    "ClientConfig",
    "DepartmentColumns",
    "Identity",
    "JobPage",
    "JobState",
    "JobView",
    "NodeView",
    "ServiceClient",
    "ServiceConflict",
    "ServiceError",
    "ServiceInvalidArgument",
    "ServiceNotFound",
    "ServicePermissionDenied",
    "ServiceProtocolError",
    "ServiceRateLimited",
    "ServiceUnauthenticated",
    "ServiceUnavailable",
    "WatchEvent",
    "load_client_config",
    "merge_client_config",
]

CALL_TIMEOUT_S = 30.0
"""Deadline of a unary call (a watch or a download has none: they last as long as needed)."""

WATCH_RECONNECTS = 8
"""How many times in a row a watch reconnects after losing the service before giving up."""

WATCH_BACKOFF_S = 0.5
"""The first wait before a watch reconnects; each further attempt waits twice as long..."""

WATCH_BACKOFF_MAX_S = 8.0
"""...up to this (8 attempts: about 40 s in all, enough for the service to restart)."""

_ADDRESS_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
_CONFIG_KEYS = ("address", "cert", "key", "ca")


# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfig:
    """Where the service is and the files that authenticate the caller to it.

    Attributes:
        address: The service's HOST:PORT.
        cert: The caller's client certificate (PEM), made by `silobridge certs issue`.
        key: Its private key (PEM).
        ca: The deployment CA's certificate (PEM): the service's certificate must chain to it.
    """

    address: str
    cert: Path
    key: Path
    ca: Path

    def __post_init__(self) -> None:
        check_address(self.address)


def check_address(address: str) -> str:
    """`address` if it is HOST:PORT with a port in 1..65535.

    Raises:
        ConfigError: It is not.
    """
    match = _ADDRESS_RE.fullmatch(address)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ConfigError(
            f"the service address {address!r} is not HOST:PORT",
            "e.g. coordinator.example:9443 or 127.0.0.1:9443",
        )
    return address


def _read_client_table(path: Path) -> dict[str, str | Path]:
    """The `[client]` table of `path`: the address as text, the files as resolved paths."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"client config {path} not found",
            "write it ([client] address, cert, key, ca), or pass --service, --cert, --key and --ca",
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read client config {path}: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"client config {path} is not valid TOML: {err}") from None
    table = doc.get("client")
    if not isinstance(table, dict):
        raise ConfigError(
            f"client config {path} has no [client] table",
            '[client] with address = "HOST:PORT", cert = ..., key = ..., ca = ...',
        )
    unknown = sorted(set(table) - set(_CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"client config {path}: unknown key(s) in [client]: {', '.join(unknown)}",
            f"[client] takes {', '.join(_CONFIG_KEYS)}",
        )
    values: dict[str, str | Path] = {}
    for name, value in table.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"client config {path}: [client] {name} must be a non-empty string")
        if name == "address":
            values[name] = value
        else:
            # Relative to the config's folder, so the file works from any working directory.
            values[name] = path.parent / Path(value).expanduser()
    return values


def merge_client_config(
    path: Path | None, *, address: str | None = None, cert: Path | None = None,
    key: Path | None = None, ca: Path | None = None,
) -> ClientConfig:  # fmt: skip
    """The config file's `[client]` table (if `path`), each given value overriding it.

    Raises:
        ConfigError: The file is missing or invalid, or a value is given nowhere.
    """
    values = _read_client_table(path) if path is not None else {}
    given = {"address": address, "cert": cert, "key": key, "ca": ca}
    values.update({k: v for k, v in given.items() if v is not None})
    missing = [k for k in _CONFIG_KEYS if k not in values]
    if missing:
        where = f"client config {path}" if path is not None else "the flags"
        flags = {"address": "--service", "cert": "--cert", "key": "--key", "ca": "--ca"}
        raise ConfigError(
            f"{where} give(s) no {', '.join(missing)} for the coordinator service",
            f"add them to [client] of a client config, or pass "
            f"{', '.join(flags[m] for m in missing)}",
        )
    return ClientConfig(
        address=str(values["address"]),
        cert=Path(values["cert"]),
        key=Path(values["key"]),
        ca=Path(values["ca"]),
    )


def load_client_config(path: Path) -> ClientConfig:
    """Read `[client] address, cert, key, ca` from a TOML file (paths relative to its folder).

    Raises:
        ConfigError: The file is missing, not TOML, or lacks a value.
    """
    return merge_client_config(path)


# --- what the API returns ------------------------------------------------------------------


class JobState(enum.Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    """A state this client does not know (a newer service's)."""

    @property
    def final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class CapKind(enum.Enum):
    """Whose jobs a central cap bounds."""

    ANALYST = "analyst"
    PROJECT = "project"


_STATE_FROM_PB = {
    pb.JOB_STATE_QUEUED: JobState.QUEUED,
    pb.JOB_STATE_RUNNING: JobState.RUNNING,
    pb.JOB_STATE_SUCCEEDED: JobState.SUCCEEDED,
    pb.JOB_STATE_FAILED: JobState.FAILED,
    pb.JOB_STATE_CANCELLED: JobState.CANCELLED,
}
_STATE_TO_PB = {v: k for k, v in _STATE_FROM_PB.items()}
_ROLE_FROM_PB = {
    pb.CALLER_ROLE_ANALYST: "analyst",
    pb.CALLER_ROLE_OFFICER: "officer",
    pb.CALLER_ROLE_OPERATOR: "operator",
}
_CAP_TO_PB = {CapKind.ANALYST: pb.CAP_KIND_ANALYST, CapKind.PROJECT: pb.CAP_KIND_PROJECT}
_CAP_FROM_PB = {v: k for k, v in _CAP_TO_PB.items()}


@dataclass(frozen=True)
class Identity:
    """Who the service takes the caller for."""

    name: str
    role: str
    projects: tuple[str, ...]


@dataclass(frozen=True)
class JobView:
    """A job as the service shows it (times are unix seconds)."""

    job_id: str
    kind: str
    name: str
    analyst: str
    project: str
    mode: str  # "run" or "quote"
    state: JobState
    created_at: float
    updated_at: float
    attempts: int
    failure: str
    cancel_requested: bool
    last_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "kind": self.kind, "name": self.name,
            "analyst": self.analyst, "project": self.project, "mode": self.mode,
            "state": self.state.value, "created_at": self.created_at,
            "updated_at": self.updated_at, "attempts": self.attempts,
            "failure": self.failure, "cancel_requested": self.cancel_requested,
            "last_seq": self.last_seq,
        }  # fmt: skip


@dataclass(frozen=True)
class JobPage:
    """Jobs newest first; `next_before_id` pages on ("" when there are no more)."""

    jobs: tuple[JobView, ...]
    next_before_id: str


@dataclass(frozen=True)
class DepartmentColumns:
    """One department's answer to `job schema`: (name, type, class) of each open and
    conditional column, or the status and reason it gave none."""

    department: str
    dataset: str
    status: str
    code: str
    reason: str
    columns: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class NodeView:
    """A registered department as the service sees it."""

    department: str
    key_fingerprint: str
    status: str
    last_seen: float
    approved_apps: tuple[str, ...] = ()
    refused_apps: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapStandingView:
    """A central cap and what is spent against it (`cap`/`remaining` None: no cap set)."""

    kind: CapKind
    key: str
    cap: float | None
    reserved: float
    settled: float
    remaining: float | None

    @property
    def spent(self) -> float:
        return self.reserved + self.settled

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "key": self.key, "cap": self.cap,
            "reserved": self.reserved, "settled": self.settled, "spent": self.spent,
            "remaining": self.remaining,
        }  # fmt: skip


@dataclass(frozen=True)
class AuditVerification:
    """The service's check of its own audit log against its own key."""

    ok: bool
    entries: int
    head: str
    problem: str


class WatchEvent(NamedTuple):
    """One event of a watched job: `event` is None for a kind this client does not know."""

    seq: int
    event: ProgressEvent | None
    kind: str


def _job_view(info: Any) -> JobView:
    return JobView(
        job_id=info.job_id, kind=info.kind, name=info.name, analyst=info.analyst,
        project=info.project, mode="quote" if info.mode == pb.JOB_MODE_QUOTE else "run",
        state=_STATE_FROM_PB.get(info.state, JobState.UNKNOWN), created_at=info.created_at,
        updated_at=info.updated_at, attempts=info.attempts, failure=info.failure,
        cancel_requested=info.cancel_requested, last_seq=info.last_seq,
    )  # fmt: skip


def _standings(reply: Any) -> list[CapStandingView]:
    views = []
    for s in reply.standings:
        kind = _CAP_FROM_PB.get(s.kind)
        if kind is None:
            continue  # a kind of cap this client does not know
        views.append(
            CapStandingView(
                kind=kind,
                key=s.key,
                cap=s.cap if s.capped else None,
                reserved=s.reserved,
                settled=s.settled,
                remaining=s.remaining if s.capped else None,
            )
        )
    return views


# --- errors ----------------------------------------------------------------------------


class ServiceError(SilobridgeError):
    """A call to the coordinator service failed; `status` is the gRPC status's name."""

    status: str = ""


class ServiceUnavailable(ServiceError):
    """The service could not be reached, or the TLS handshake failed."""


class ServicePermissionDenied(ServiceError):
    """The caller's role (or project grant) does not allow the call."""


class ServiceUnauthenticated(ServiceError):
    """The service did not accept the caller's certificate."""


class ServiceNotFound(ServiceError):
    """No such job, or not the caller's to see."""


class ServiceInvalidArgument(ServiceError):
    """The request (a job spec, a cap) is invalid."""


class ServiceRateLimited(ServiceError):
    """Too many submissions, or a budget that would be exceeded."""


class ServiceConflict(ServiceError):
    """The call does not fit the job's state (e.g. the result of a running job)."""


class ServiceProtocolError(ServiceError):
    """The service sent something this client refuses (e.g. a result file name with a path)."""


_ERRORS: dict[grpc.StatusCode, tuple[type[ServiceError], str]] = {
    grpc.StatusCode.PERMISSION_DENIED: (
        ServicePermissionDenied,
        "your role may not do this: ask the deployment's operator for a credential of the "
        "role it needs (see `silobridge whoami`)",
    ),
    grpc.StatusCode.UNAUTHENTICATED: (
        ServiceUnauthenticated,
        "the service did not accept your certificate: use the client certificate "
        "`silobridge certs issue` made for you",
    ),
    grpc.StatusCode.NOT_FOUND: (
        ServiceNotFound,
        "not found, or not yours to see: list your jobs with `silobridge job list`",
    ),
    grpc.StatusCode.INVALID_ARGUMENT: (
        ServiceInvalidArgument,
        "the service rejected the request as invalid: fix what it names and try again",
    ),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        ServiceRateLimited,
        "a limit was reached (submissions per hour or a budget): wait, or ask the operator "
        "or the privacy officer",
    ),
    grpc.StatusCode.FAILED_PRECONDITION: (
        ServiceConflict,
        "the job is not in a state that allows this: check it with `silobridge job status`",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        ServiceUnavailable,
        "the service did not answer in time: try again, or ask its operator",
    ),
}


def _details(err: grpc.RpcError) -> str:
    details = err.details() if hasattr(err, "details") else None
    return str(details or "no details").strip()


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    return err.code() if hasattr(err, "code") else None


def service_error(err: grpc.RpcError, call: str, address: str) -> ServiceError:
    """The `ServiceError` for a failed call, naming the status, the detail and a fix."""
    code = _code(err)
    name = code.name if code is not None else "UNKNOWN"
    if code is grpc.StatusCode.UNAVAILABLE:
        mapped: ServiceError = ServiceUnavailable(
            f"cannot reach the coordinator service at {address} ({call}: UNAVAILABLE: "
            f"{_details(err)})",
            f"is the service at {address} running, and are your certificate and the CA "
            "right? A certificate issued by another CA also shows as UNAVAILABLE",
        )
    else:
        kind, hint = _ERRORS.get(code, (ServiceError, ""))
        mapped = kind(
            f"the coordinator service refused {call}: {name}: {_details(err)}",
            hint or "if this persists, ask the service's operator (its log has the details)",
        )
    mapped.status = name
    return mapped


# --- the client ----------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read {what} {path}: {err.strerror}",
            "point the client config (or --cert, --key, --ca) at the files "
            "`silobridge certs issue` wrote",
        ) from None


def _check_file_name(name: str) -> str:
    if (
        not name
        or "/" in name
        or "\\" in name
        or "\0" in name
        or ".." in name
        or name.startswith(".")
    ):
        raise ServiceProtocolError(
            f"the service sent a result file named {name!r}; refusing to write it",
            "a result file name is a plain name; tell the service's operator",
        )
    return name


@dataclass
class _Download:
    """A result file being received into a temporary file beside its final name."""

    name: str
    tmp: Path
    fh: Any
    size: int = 0
    done: bool = False
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.fh.close()
            self.closed = True


class ServiceClient:
    """The coordinator service's API over one mutual-TLS channel.

    Args:
        config: The service's address and the caller's TLS files.
        timeout_s: Deadline of each unary call.
        reconnects: How many times in a row `watch` reconnects after losing the service.
        backoff_s: `watch`'s first wait before reconnecting (doubled each time, up to
            `WATCH_BACKOFF_MAX_S`).
        sleep: Waits between reconnects (injectable for tests).

    Raises:
        ConfigError: A TLS file cannot be read.
    """

    def __init__(
        self, config: ClientConfig, *, timeout_s: float = CALL_TIMEOUT_S,
        reconnects: int = WATCH_RECONNECTS, backoff_s: float = WATCH_BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self.config = config
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(config.ca, "the CA certificate"),
            private_key=_read(config.key, "your client key"),
            certificate_chain=_read(config.cert, "your client certificate"),
        )
        self._channel = grpc.secure_channel(config.address, creds)
        self._stub = pb_grpc.CoordinatorStub(self._channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout_s
        self._reconnects = reconnects
        self._backoff = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, err: grpc.RpcError, call: str) -> ServiceError:
        return service_error(err, call, self.config.address)

    def _unary(self, call: str, request: Any) -> Any:
        try:
            return getattr(self._stub, call)(request, timeout=self._timeout)
        except grpc.RpcError as err:
            raise self._error(err, call) from None

    # --- jobs ---------------------------------------------------------------------------

    def whoami(self) -> Identity:
        reply = self._unary("WhoAmI", pb.WhoAmIRequest())
        return Identity(reply.name, _ROLE_FROM_PB.get(reply.role, "unknown"), tuple(reply.projects))

    def submit(self, spec: JobEnvelope, project: str = "", quote: bool = False) -> JobView:
        """Queue `spec` (a dry run if `quote`), charged to the caller and `project` (empty:
        the caller's only project); the spec's own analyst and project are ignored."""
        message = job_pb2.JobSpec.FromString(job_to_bytes(spec))
        request = pb.SubmitJobRequest(spec=message, project=project)
        return _job_view(self._unary("QuoteJob" if quote else "SubmitJob", request))

    def get(self, job_id: str) -> JobView:
        return _job_view(self._unary("GetJob", pb.JobRef(job_id=job_id)))

    def list_jobs(
        self, *, states: Sequence[JobState] = (), limit: int = 100, analyst: str = "",
        before_id: str = "",
    ) -> JobPage:  # fmt: skip
        """Jobs newest first: an analyst's own; an officer's, of `analyst` or everyone."""
        unknown = [s for s in states if s not in _STATE_TO_PB]
        if unknown:
            raise ConfigError(f"cannot list jobs in state {unknown[0].value}")
        request = pb.ListJobsRequest(
            states=[_STATE_TO_PB[s] for s in states], limit=limit, analyst=analyst,
            before_id=before_id,
        )  # fmt: skip
        reply = self._unary("ListJobs", request)
        return JobPage(tuple(_job_view(j) for j in reply.jobs), reply.next_before_id)

    def cancel(self, job_id: str) -> JobView:
        return _job_view(self._unary("CancelJob", pb.JobRef(job_id=job_id)))

    def watch(self, job_id: str, after_seq: int = 0) -> Iterator[WatchEvent]:
        """The job's events after `after_seq` until it ends, surviving service restarts.

        The job is read first (so a wrong id or an unreachable service fails at once).
        After that, if the stream breaks with UNAVAILABLE or is cancelled by the service
        (a stop whose grace ran out), or ends while the job has not
        (a service stopping ends open streams), the watch reconnects and resumes after the
        last seq it yielded: no event is lost and none repeats. It reconnects up to
        `reconnects` times in a row, waiting `backoff_s`, then twice as long each time (at
        most `WATCH_BACKOFF_MAX_S`); an event received resets the count.

        Raises:
            ServiceError: The job cannot be read, or the service stayed away.
            ProgressEventError: An event of a known kind has fields this client cannot read.
        """
        self.get(job_id)
        after = after_seq
        failures = 0
        while True:
            lost: grpc.RpcError | None = None
            stream = self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id, after_seq=after))
            try:
                for message in stream:
                    failures = 0
                    if message.seq <= after:
                        continue  # already yielded before a reconnect
                    after = message.seq
                    event = decode_event(EVENT_PREFIX + message.json)
                    yield WatchEvent(message.seq, event, message.kind)
                # The stream ended: the job ended, or the service is stopping.
                job = self._stub.GetJob(pb.JobRef(job_id=job_id), timeout=self._timeout)
                if _STATE_FROM_PB.get(job.state) in _FINAL and job.last_seq <= after:
                    return
            except grpc.RpcError as err:
                # CANCELLED here is the service's doing, never ours (this client cancels
                # only below, once the loop is left): a service whose stop grace ran out
                # cancels the streams still open, as a restart does.
                if _code(err) not in _STREAM_LOST:
                    raise self._error(err, "WatchJob") from None
                lost = err
            finally:
                stream.cancel()  # a no-op once ended; frees the call if the caller stopped early
            failures += 1
            if failures > self._reconnects:
                if lost is None:
                    raise ServiceUnavailable(
                        f"the coordinator service at {self.config.address} kept ending the "
                        f"watch of job {job_id} before the job ended",
                        f"watch it again later: `silobridge job watch {job_id} --after {after}`",
                    )
                error = self._error(lost, "WatchJob")
                error.message += f" (gave up after {self._reconnects} reconnects)"
                error.hint += f"; resume with `silobridge job watch {job_id} --after {after}`"
                raise error
            self._sleep(min(self._backoff * 2 ** (failures - 1), WATCH_BACKOFF_MAX_S))

    def fetch_result(self, job_id: str, out_dir: Path) -> list[Path]:
        """Download an ended job's result bundle into `out_dir`; returns the files written.

        Each file streams into a temporary file beside its final name; only when every
        file is complete are they renamed into place, result.json last (its presence means
        the bundle is complete). A file name with a path separator or '..' is refused.

        Raises:
            ServiceError: The job has no result (yet), or the download broke.
            ConfigError: `out_dir` cannot be written.
        """
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create {out_dir}: {err.strerror}") from None
        files: dict[str, _Download] = {}
        try:
            try:
                for chunk in self._stub.FetchResult(pb.JobRef(job_id=job_id)):
                    self._receive(files, chunk, out_dir)
            except grpc.RpcError as err:
                raise self._error(err, "FetchResult") from None
            unfinished = sorted(name for name, d in files.items() if not d.done)
            if unfinished or not files:
                raise ServiceProtocolError(
                    f"the result of job {job_id} arrived incomplete "
                    f"({', '.join(unfinished) or 'no files'})",
                    f"fetch it again: `silobridge job result {job_id} --out {out_dir}`",
                )
            written = []
            for name in sorted(files, key=lambda n: n == RESULT_FILE):
                os.replace(files[name].tmp, out_dir / name)
                written.append(out_dir / name)
            return written
        finally:
            for download in files.values():
                download.close()
                with contextlib.suppress(FileNotFoundError):
                    download.tmp.unlink()

    @staticmethod
    def _receive(files: dict[str, _Download], chunk: Any, out_dir: Path) -> None:
        name = _check_file_name(chunk.file)
        download = files.get(name)
        if download is None:
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".partial")
            download = files[name] = _Download(name, Path(tmp), os.fdopen(fd, "wb"))
        if download.done or chunk.offset != download.size:
            raise ServiceProtocolError(
                f"the service sent result file {name} out of order "
                f"(offset {chunk.offset}, expected {download.size})",
                "fetch the result again",
            )
        download.fh.write(chunk.data)
        download.size += len(chunk.data)
        if chunk.last:
            download.fh.flush()
            os.fsync(download.fh.fileno())
            download.close()
            download.done = True

    # --- nodes, caps, audit ---------------------------------------------------------------

    def describe_columns(self, dataset: str = "") -> list[DepartmentColumns]:
        """Every connected department's declared open and conditional columns."""
        reply = self._unary("DescribeColumns", pb.DescribeColumnsRequest(dataset=dataset))
        return [
            DepartmentColumns(
                d.department,
                d.dataset,
                d.status,
                d.code,
                d.reason,
                tuple((c.name, c.type, c.column_class) for c in d.columns),
            )
            for d in reply.departments
        ]

    def nodes(self) -> list[NodeView]:
        reply = self._unary("ListNodes", pb.ListNodesRequest())
        return [
            NodeView(
                n.department,
                n.key_fingerprint,
                n.status,
                n.last_seen,
                tuple(n.approved_apps),
                tuple(n.refused_apps),
            )
            for n in reply.nodes
        ]

    def caps(self) -> list[CapStandingView]:
        return _standings(self._unary("GetCaps", pb.GetCapsRequest()))

    def set_cap(self, kind: CapKind, key: str, epsilon: float) -> list[CapStandingView]:
        request = pb.SetCapRequest(kind=_CAP_TO_PB[kind], key=key, epsilon=epsilon)
        return _standings(self._unary("SetCap", request))

    def audit_lines(self, after_seq: int = 0, limit: int = 0) -> list[str]:
        """The coordinator log's entries after `after_seq` (all, or the first `limit`),
        each exactly as the chain holds it (one JSON line)."""
        request = pb.ReadAuditRequest(after_seq=after_seq, limit=limit)
        try:
            return [record.json for record in self._stub.ReadAudit(request, timeout=self._timeout)]
        except grpc.RpcError as err:
            raise self._error(err, "ReadAudit") from None

    def audit_entries(self, after_seq: int = 0, limit: int = 0) -> list[AuditEntry]:
        """`audit_lines`, parsed."""
        return [_audit_entry(line) for line in self.audit_lines(after_seq, limit)]

    def verify_audit(self) -> AuditVerification:
        reply = self._unary("VerifyAudit", pb.VerifyAuditRequest())
        return AuditVerification(reply.ok, reply.entries, reply.head, reply.problem)


_FINAL = frozenset(s for s in JobState if s.final)
_STREAM_LOST = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
"""How a watch stream breaks when the service goes away: unreachable, or cancelled by it."""


def _audit_entry(line: str) -> AuditEntry:
    try:
        raw = json.loads(line)
        return AuditEntry(
            seq=int(raw["seq"]), ts=str(raw["ts"]), kind=str(raw["kind"]),
            data=dict(raw["data"]), prev=str(raw["prev"]), hash=str(raw["hash"]),
            sig=str(raw.get("sig", "")), key=str(raw.get("key", "")),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise ServiceProtocolError(
            f"the service sent an audit entry this client cannot read ({type(err).__name__})",
            "the service may run another silobridge version",
        ) from None
