from protos.silobridge.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALLER_ROLE_UNSPECIFIED: _ClassVar[CallerRole]
    CALLER_ROLE_ANALYST: _ClassVar[CallerRole]
    CALLER_ROLE_OFFICER: _ClassVar[CallerRole]
    CALLER_ROLE_OPERATOR: _ClassVar[CallerRole]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_MODE_UNSPECIFIED: _ClassVar[JobMode]
    JOB_MODE_RUN: _ClassVar[JobMode]
    JOB_MODE_QUOTE: _ClassVar[JobMode]

class CapKindProto(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAP_KIND_UNSPECIFIED: _ClassVar[CapKindProto]
    CAP_KIND_ANALYST: _ClassVar[CapKindProto]
    CAP_KIND_PROJECT: _ClassVar[CapKindProto]
CALLER_ROLE_UNSPECIFIED: CallerRole
CALLER_ROLE_ANALYST: CallerRole
CALLER_ROLE_OFFICER: CallerRole
CALLER_ROLE_OPERATOR: CallerRole
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_MODE_UNSPECIFIED: JobMode
JOB_MODE_RUN: JobMode
JOB_MODE_QUOTE: JobMode
CAP_KIND_UNSPECIFIED: CapKindProto
CAP_KIND_ANALYST: CapKindProto
CAP_KIND_PROJECT: CapKindProto

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("name", "role", "projects")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: CallerRole
    projects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[CallerRole, str]] = ..., projects: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "project")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    spec: _job_pb2.JobSpec
    project: str
    def __init__(self, spec: _Optional[_Union[_job_pb2.JobSpec, _Mapping]] = ..., project: _Optional[str] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("job_id", "kind", "name", "analyst", "project", "mode", "state", "created_at", "updated_at", "attempts", "failure", "cancel_requested", "last_seq")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    name: str
    analyst: str
    project: str
    mode: JobMode
    state: JobState
    created_at: float
    updated_at: float
    attempts: int
    failure: str
    cancel_requested: bool
    last_seq: int
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., analyst: _Optional[str] = ..., project: _Optional[str] = ..., mode: _Optional[_Union[JobMode, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., attempts: _Optional[int] = ..., failure: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., last_seq: _Optional[int] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "limit", "before_id", "analyst")
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    limit: int
    before_id: str
    analyst: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., limit: _Optional[int] = ..., before_id: _Optional[str] = ..., analyst: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_before_id")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    next_before_id: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ..., next_before_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "seq", "kind", "json", "at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    kind: str
    json: str
    at: float
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[str] = ..., json: _Optional[str] = ..., at: _Optional[float] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("file", "offset", "data", "last")
    FILE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    file: str
    offset: int
    data: bytes
    last: bool
    def __init__(self, file: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("department", "key_fingerprint", "status", "last_seen", "approved_apps", "refused_apps")
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    APPROVED_APPS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_APPS_FIELD_NUMBER: _ClassVar[int]
    department: str
    key_fingerprint: str
    status: str
    last_seen: float
    approved_apps: _containers.RepeatedScalarFieldContainer[str]
    refused_apps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, department: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., status: _Optional[str] = ..., last_seen: _Optional[float] = ..., approved_apps: _Optional[_Iterable[str]] = ..., refused_apps: _Optional[_Iterable[str]] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class CapStandingInfo(_message.Message):
    __slots__ = ("kind", "key", "capped", "cap", "reserved", "settled", "remaining")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CAPPED_FIELD_NUMBER: _ClassVar[int]
    CAP_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    kind: CapKindProto
    key: str
    capped: bool
    cap: float
    reserved: float
    settled: float
    remaining: float
    def __init__(self, kind: _Optional[_Union[CapKindProto, str]] = ..., key: _Optional[str] = ..., capped: _Optional[bool] = ..., cap: _Optional[float] = ..., reserved: _Optional[float] = ..., settled: _Optional[float] = ..., remaining: _Optional[float] = ...) -> None: ...

class GetCapsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetCapRequest(_message.Message):
    __slots__ = ("kind", "key", "epsilon")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    kind: CapKindProto
    key: str
    epsilon: float
    def __init__(self, kind: _Optional[_Union[CapKindProto, str]] = ..., key: _Optional[str] = ..., epsilon: _Optional[float] = ...) -> None: ...

class CapsResponse(_message.Message):
    __slots__ = ("standings",)
    STANDINGS_FIELD_NUMBER: _ClassVar[int]
    standings: _containers.RepeatedCompositeFieldContainer[CapStandingInfo]
    def __init__(self, standings: _Optional[_Iterable[_Union[CapStandingInfo, _Mapping]]] = ...) -> None: ...

class ReadAuditRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("seq", "json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    json: str
    def __init__(self, seq: _Optional[int] = ..., json: _Optional[str] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("ok", "entries", "head", "problem")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    head: str
    problem: str
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., head: _Optional[str] = ..., problem: _Optional[str] = ...) -> None: ...

class DescribeColumnsRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class DeclaredColumn(_message.Message):
    __slots__ = ("name", "type", "column_class")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_CLASS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    column_class: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., column_class: _Optional[str] = ...) -> None: ...

class DepartmentColumns(_message.Message):
    __slots__ = ("department", "dataset", "status", "code", "reason", "columns")
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    department: str
    dataset: str
    status: str
    code: str
    reason: str
    columns: _containers.RepeatedCompositeFieldContainer[DeclaredColumn]
    def __init__(self, department: _Optional[str] = ..., dataset: _Optional[str] = ..., status: _Optional[str] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[DeclaredColumn, _Mapping]]] = ...) -> None: ...

class DescribeColumnsResponse(_message.Message):
    __slots__ = ("departments",)
    DEPARTMENTS_FIELD_NUMBER: _ClassVar[int]
    departments: _containers.RepeatedCompositeFieldContainer[DepartmentColumns]
    def __init__(self, departments: _Optional[_Iterable[_Union[DepartmentColumns, _Mapping]]] = ...) -> None: ...
