"""The coordinator service's API on a real gRPC server with mutual TLS.

Every call x every role (and no credential, and another CA's credential); ownership of
jobs; the credential's analyst over the spec's; a job run end to end through the API
(watch, resume a watch, fetch the result); health; garbage requests.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

import grpc
import pytest

from protos.silobridge.v1 import coordinator_pb2 as pb
from server.service.authorization import ALLOWED
from server.service.identity import Role
from tests.unit.server.service.conftest import ANALYST, OFFICER, OPERATOR, OTHER_ANALYST, Deployment
from vocab.audit_log import read_entries
from vocab.jobs.statistics import parse_statistics_spec
from vocab.progress import EVENT_PREFIX, JobEnd, decode_event
from vocab.serde import job_to_bytes

SERVICE = "silobridge.v1.Coordinator"

_REQUESTS: dict[str, Any] = {
    "WhoAmI": pb.WhoAmIRequest(),
    "SubmitJob": pb.SubmitJobRequest(),
    "QuoteJob": pb.SubmitJobRequest(),
    "GetJob": pb.JobRef(job_id="nope-1"),
    "ListJobs": pb.ListJobsRequest(),
    "CancelJob": pb.JobRef(job_id="nope-1"),
    "WatchJob": pb.WatchJobRequest(job_id="nope-1"),
    "FetchResult": pb.JobRef(job_id="nope-1"),
    "ListNodes": pb.ListNodesRequest(),
    "GetCaps": pb.GetCapsRequest(),
    "SetCap": pb.SetCapRequest(kind=pb.CAP_KIND_ANALYST, key="someone", epsilon=5.0),
    "ReadAudit": pb.ReadAuditRequest(limit=1),
    "VerifyAudit": pb.VerifyAuditRequest(),
    "DescribeColumns": pb.DescribeColumnsRequest(),
}
_STREAMS = {"WatchJob", "FetchResult", "ReadAudit"}
_NAMES = {"analyst": ANALYST, "officer": OFFICER, "operator": OPERATOR}


def _spec(name: str = "counts", **job: Any) -> Any:
    doc = {
        "job": {"kind": "statistics", "name": name, "epsilon": 1.0, "delta": 1e-6,
                "min_nodes": 2, "node_wait_s": 1.0, "analyst": "someone.else",
                "project": "not-granted", **job},
        "statistics": [{"measure": "count"}],
    }  # fmt: skip
    return pb.SubmitJobRequest(spec=_job_pb(parse_statistics_spec(doc)))


def _job_pb(spec: Any) -> Any:
    from protos.silobridge.v1 import job_pb2

    message = job_pb2.JobSpec()
    message.ParseFromString(job_to_bytes(spec))
    return message


def _call(stub: Any, method: str, request: Any) -> grpc.StatusCode:
    """The status a call ends with (OK, or the error's code)."""
    try:
        result = getattr(stub, method)(request, timeout=10)
        if method in _STREAMS:
            list(result)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_the_table_covers_every_rpc() -> None:
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["Coordinator"].methods}
    assert {k.rsplit("/", 1)[1] for k in ALLOWED} == methods == set(_REQUESTS)


def test_every_call_by_every_role(deployment: Deployment) -> None:
    stubs = {role: deployment.stub(role, _NAMES[role]) for role in _NAMES}
    for method, request in _REQUESTS.items():
        allowed = ALLOWED[f"/{SERVICE}/{method}"]
        for role, stub in stubs.items():
            code = _call(stub, method, request)
            if Role(role) in allowed:
                # Allowed through the gate: whatever the domain answers, not a denial.
                assert code not in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED,
                ), (method, role, code)
            else:
                assert code is grpc.StatusCode.PERMISSION_DENIED, (method, role, code)
    denied = [e for e in read_entries(deployment.federation.home.audit_path)
              if e.kind == "api_denied"]  # fmt: skip
    expected = sum(
        Role(role) not in ALLOWED[f"/{SERVICE}/{m}"] for m in _REQUESTS for role in _NAMES
    )
    assert len(denied) == expected
    assert all(e.data["status"] == "PERMISSION_DENIED" for e in denied)


def test_no_credential_or_another_cas_never_gets_in(deployment: Deployment) -> None:
    for stub in (deployment.stub(None), deployment.stub("analyst", ANALYST, foreign=True)):
        for method, request in _REQUESTS.items():
            # The TLS handshake fails: no byte of the request reaches the service.
            assert _call(stub, method, request) is grpc.StatusCode.UNAVAILABLE, method


def test_a_job_runs_through_the_api_charged_to_the_credential(deployment: Deployment) -> None:
    analyst = deployment.stub("analyst", ANALYST)
    info = analyst.SubmitJob(_spec(), timeout=10)
    assert info.analyst == ANALYST and info.project == "credit"  # not the spec's
    events = list(analyst.WatchJob(pb.WatchJobRequest(job_id=info.job_id), timeout=60))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    final = decode_event(EVENT_PREFIX + events[-1].json)
    assert isinstance(final, JobEnd) and final.status == "succeeded", final
    job = analyst.GetJob(pb.JobRef(job_id=info.job_id), timeout=10)
    assert job.state == pb.JOB_STATE_SUCCEEDED and job.last_seq == len(events)
    # A watch resumed after any event sends exactly the rest.
    middle = len(events) // 2
    rest = list(
        analyst.WatchJob(pb.WatchJobRequest(job_id=info.job_id, after_seq=middle), timeout=10)
    )
    assert [e.seq for e in rest] == list(range(middle + 1, len(events) + 1))
    files: dict[str, bytes] = {}
    for chunk in analyst.FetchResult(pb.JobRef(job_id=info.job_id), timeout=10):
        assert chunk.offset == len(files.get(chunk.file, b""))
        files[chunk.file] = files.get(chunk.file, b"") + chunk.data
    result = json.loads(files["result.json"])
    assert result["status"] == "succeeded" and result["job"]["analyst"] == ANALYST
    for name in deployment.federation.nodes:  # the nodes charged it under the service's id
        assert deployment.federation.charged(name, info.job_id) > 0


def test_an_analyst_sees_only_their_own_jobs(deployment: Deployment) -> None:
    mine = deployment.stub("analyst", ANALYST).SubmitJob(_spec(), timeout=10)
    other = deployment.stub("analyst", OTHER_ANALYST)
    ref = pb.JobRef(job_id=mine.job_id)
    for method, request in (
        ("GetJob", ref), ("CancelJob", ref), ("FetchResult", ref),
        ("WatchJob", pb.WatchJobRequest(job_id=mine.job_id)),
    ):  # fmt: skip
        assert _call(other, method, request) is grpc.StatusCode.NOT_FOUND, method
    assert list(other.ListJobs(pb.ListJobsRequest(), timeout=10).jobs) == []
    assert _call(other, "ListJobs", pb.ListJobsRequest(analyst=ANALYST)) is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    officer = deployment.stub("officer", OFFICER)
    listed = officer.ListJobs(pb.ListJobsRequest(analyst=ANALYST), timeout=10).jobs
    assert [j.job_id for j in listed] == [mine.job_id]
    assert _call(other, "SubmitJob", _spec("x")) is grpc.StatusCode.OK  # their own project
    refused = pb.SubmitJobRequest(spec=_spec("y").spec, project="credit")
    assert _call(other, "SubmitJob", refused) is grpc.StatusCode.PERMISSION_DENIED


def test_bad_specs_and_rate_limits_are_refused_with_a_reason(deployment: Deployment) -> None:
    analyst = deployment.stub("analyst", ANALYST)
    with pytest.raises(grpc.RpcError) as info:
        analyst.SubmitJob(pb.SubmitJobRequest(), timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "no job spec" in info.value.details()
    broken = _spec()
    broken.spec.epsilon = -1.0
    with pytest.raises(grpc.RpcError) as info:
        analyst.SubmitJob(broken, timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "epsilon" in info.value.details()
    for i in range(deployment.config.submits_per_hour):
        analyst.QuoteJob(_spec(f"q{i}"), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        analyst.QuoteJob(_spec("one-more"), timeout=10)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_reports_serving(deployment: Deployment) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(deployment.channel("operator", OPERATOR))
    reply = health.Check(health_pb2.HealthCheckRequest(service=f"{SERVICE}"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_garbage_requests_leave_the_service_up(deployment: Deployment) -> None:
    channel = deployment.channel("officer", OFFICER)
    rng = random.Random(7)
    methods = list(_REQUESTS)
    codes: set[grpc.StatusCode] = set()
    started = time.monotonic()
    for i in range(1000):
        method = methods[i % len(methods)]
        size = rng.choice([0, 1, 7, 64, 4096, 200_000])
        body = os.urandom(size) if i % 3 else bytes(rng.randrange(256) for _ in range(size % 97))
        call = (channel.unary_stream if method in _STREAMS else channel.unary_unary)(
            f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None
        )
        try:
            result = call(body, timeout=10)
            if method in _STREAMS:
                list(result)
            codes.add(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            codes.add(err.code())
    assert grpc.StatusCode.UNAVAILABLE not in codes
    assert time.monotonic() - started < 120
    officer = deployment.stub("officer", OFFICER)
    assert officer.WhoAmI(pb.WhoAmIRequest(), timeout=10).name == OFFICER


def test_stopping_reports_not_serving_to_health_watchers(deployment: Deployment) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(deployment.channel("operator", OPERATOR))
    stream = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=30)
    first = next(stream)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stopper = threading.Thread(target=deployment.service.stop, kwargs={"grace_s": 2.0})
    stopper.start()
    seen = []
    try:
        for reply in stream:
            seen.append(reply.status)
    except grpc.RpcError:
        pass  # the server closed the stream after saying so
    stopper.join(30)
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
    # And new calls are refused once it stopped.
    assert _call(deployment.stub("officer", OFFICER), "WhoAmI", pb.WhoAmIRequest()) is (
        grpc.StatusCode.UNAVAILABLE
    )
