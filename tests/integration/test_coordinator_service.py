"""The coordinator service on real processes: `silobridge coordinator start --config` (API
over mutual TLS, a SuperLink it supervises, Flower's Control API on loopback only) and two
real SuperNodes.

A job submitted through the API runs and is charged to the credential's analyst; the
service killed (SIGKILL, its whole process tree) in the middle of a job and started again
resumes the job, and every node's ledger shows exactly one charge per round; SIGTERM stops
the service cleanly.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from protos.silobridge.v1 import coordinator_pb2 as pb
from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
from protos.silobridge.v1 import job_pb2
from server.home.coordinator_home import CoordinatorHome
from silobridge.certs import (
    DeploymentCerts,
    issue_client_cert,
    make_deployment_certs,
    make_node_key,
)
from silobridge.enrolment import enrol_node
from silobridge.flower_federation import Federation
from silobridge.node_runner import start_node
from silobridge.processes import Daemon, ProcessGroup, descendants, free_port, wait_for_port
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_log import read_entries
from vocab.progress import EVENT_PREFIX, JobEnd, RoundEnd, decode_event
from vocab.serde import job_to_bytes

pytestmark = pytest.mark.integration

ANALYST = "r.ahmed"


@dataclass
class ServiceDeployment:
    root: Path
    certs: DeploymentCerts
    config: Path
    group: ProcessGroup
    api_port: int
    fleet: str
    control: str
    runtime_port: int
    nodes: dict[str, NodeConfig] = field(default_factory=dict)
    service: Daemon | None = None

    def start_service(self) -> Daemon:
        argv = [
            sys.executable, "-m", "silobridge.cli.main", "coordinator", "start",
            "--config", str(self.config), "--fleet-address", self.fleet,
            "--control-address", self.control, "--runtime-port", str(self.runtime_port),
            "--certs", str(self.certs.folder),
        ]  # fmt: skip
        self.service = self.group.start("coordinator-service", argv, {})
        wait_for_port("127.0.0.1", self.api_port, 120, self.service)
        host, port = self.control.rsplit(":", 1)
        wait_for_port(host, int(port), 120, self.service)
        return self.service

    def kill_service(self) -> None:
        """SIGKILL the service and every process under it (a crashed host, as it were)."""
        assert self.service is not None
        tree = descendants(self.service.proc.pid) | {self.service.proc.pid}
        for pid in tree:
            try:
                import os

                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.service.proc.wait(timeout=30)
        _wait_closed(self.api_port)

    def stub(self, role: str, name: str) -> Any:
        files = issue_client_cert(
            self.certs.folder, self.root / "clients", role=role, name=name, force=True
        )
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.certs.ca_cert.read_bytes(),
            private_key=files.key.read_bytes(),
            certificate_chain=files.cert.read_bytes(),
        )
        return pb_grpc.CoordinatorStub(grpc.secure_channel(f"127.0.0.1:{self.api_port}", creds))


def _wait_closed(port: int, timeout_s: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} still open")


def _wait_for_log(path: Path, needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{path.name} never logged {needle!r}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceDeployment]:
    root = tmp_path_factory.mktemp("service")
    certs = make_deployment_certs(root / "certs")
    api_port = free_port()
    config = root / "coordinator.toml"
    config.write_text(
        "[service]\n"
        f'listen = "127.0.0.1:{api_port}"\n'
        f'home = "{root / "coordinator"}"\n'
        f'tls_cert = "{certs.server_cert}"\n'
        f'tls_key = "{certs.server_key}"\n'
        f'client_ca = "{certs.ca_cert}"\n'
        "[analysts]\n"
        f'"{ANALYST}" = ["credit"]\n'
    )
    group = ProcessGroup(root / "logs")
    live = ServiceDeployment(
        root, certs, config, group, api_port, f"127.0.0.1:{free_port()}",
        f"127.0.0.1:{free_port()}", free_port(),
    )  # fmt: skip
    live.nodes["alpha"] = write_node(root / "alpha", "alpha", 8.0, make_rows(700, 1))
    live.nodes["beta"] = write_node(root / "beta", "beta", 8.0, make_rows(700, 2))
    with group.running():
        live.start_service()
        keys = {name: make_node_key(certs.folder, name) for name in live.nodes}
        for name, cfg in live.nodes.items():
            enrol_node(
                CoordinatorHome(root / "coordinator"),
                Federation(live.control, certs.ca_cert),
                name,
                keys[name].public,
                node_identity(cfg.ledger_path).public.pem(),
            )
        for name, cfg in live.nodes.items():
            daemon = start_node(
                group, config_path=cfg.config_path, department=name, coordinator=live.fleet,
                port=free_port(), flwr_home=cfg.config_path.parent / ".flwr",
                root_certificates=certs.ca_cert, auth_key=keys[name].private,
            )[0]  # fmt: skip
            assert daemon.log_path is not None
            _wait_for_log(daemon.log_path, "SuperNode ID", 240)
        yield live


def _submit(stub: Any, spec: Any) -> Any:
    message = job_pb2.JobSpec()
    message.ParseFromString(job_to_bytes(spec))
    return stub.SubmitJob(pb.SubmitJobRequest(spec=message), timeout=30)


def _final(stub: Any, job_id: str, timeout_s: float = 600) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            job = stub.GetJob(pb.JobRef(job_id=job_id), timeout=10)
        except grpc.RpcError:
            time.sleep(1.0)
            continue
        if job.state in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
            return job
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not end")


def _charges(cfg: NodeConfig, job_id: str) -> Counter[int]:
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    return Counter(e.round for e in ledger.history() if e.job_id == job_id)


def test_a_job_runs_through_the_service(deployment: ServiceDeployment) -> None:
    analyst = deployment.stub("analyst", ANALYST)
    spec = synthetic_spec("svc-run", rounds=2, evaluation="off", analyst="someone.else")
    info = _submit(analyst, spec)
    assert info.analyst == ANALYST and info.project == "credit"
    events = list(analyst.WatchJob(pb.WatchJobRequest(job_id=info.job_id), timeout=600))
    final = decode_event(EVENT_PREFIX + events[-1].json)
    assert isinstance(final, JobEnd) and final.status == "succeeded", final
    chunks = list(analyst.FetchResult(pb.JobRef(job_id=info.job_id), timeout=60))
    result = json.loads(b"".join(c.data for c in chunks if c.file == "result.json"))
    assert result["status"] == "succeeded"
    for cfg in deployment.nodes.values():
        assert _charges(cfg, info.job_id) == {1: 1, 2: 1}
    # The columns each department offers, asked of the real nodes through the relay run.
    schema = analyst.DescribeColumns(pb.DescribeColumnsRequest(), timeout=120)
    assert sorted(d.department for d in schema.departments) == sorted(deployment.nodes)
    for d in schema.departments:
        assert d.status == "ok", (d.department, d.code, d.reason)
        assert {c.name for c in d.columns} == {"x1", "x2", "grp", "y"}  # no pid, no secret


def test_a_killed_service_resumes_the_job_and_charges_each_round_once(
    deployment: ServiceDeployment,
) -> None:
    analyst = deployment.stub("analyst", ANALYST)
    info = _submit(analyst, synthetic_spec("svc-resume", rounds=3, evaluation="off"))
    # Watch until round 1 has ended, then kill the whole coordinator host's processes.
    for event in analyst.WatchJob(pb.WatchJobRequest(job_id=info.job_id), timeout=600):
        if isinstance(decode_event(EVENT_PREFIX + event.json), RoundEnd):
            break
    deployment.kill_service()
    deployment.start_service()
    analyst = deployment.stub("analyst", ANALYST)
    job = _final(analyst, info.job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.failure
    assert job.attempts == 2
    for name, cfg in deployment.nodes.items():
        assert _charges(cfg, info.job_id) == {1: 1, 2: 1, 3: 1}, name
        resent = [
            e.data["round"] for e in read_entries(audit_path_for(cfg.ledger_path))
            if e.kind == "resend" and e.data.get("job_id") == info.job_id
        ]  # fmt: skip
        assert 1 in resent, name  # round 1 came from the ledger, not from training again


def test_a_superlink_that_dies_is_restarted_and_jobs_run_again(
    deployment: ServiceDeployment,
) -> None:
    import os

    assert deployment.service is not None
    links = [
        pid for pid in descendants(deployment.service.proc.pid)
        if b"flower-superlink" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip
    assert links, "no SuperLink under the service"
    for pid in links:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    restarted: list[int] = []
    while not restarted and time.monotonic() < deadline:
        time.sleep(1.0)
        restarted = [
            pid for pid in descendants(deployment.service.proc.pid)
            if pid not in links
            and b"flower-superlink" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip
    assert restarted, "the service did not restart its SuperLink"
    analyst = deployment.stub("analyst", ANALYST)
    info = _submit(analyst, synthetic_spec("svc-after-restart", rounds=1, evaluation="off"))
    job = _final(analyst, info.job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.failure


def test_sigterm_stops_the_service_cleanly(deployment: ServiceDeployment) -> None:
    assert deployment.service is not None
    deployment.service.proc.send_signal(signal.SIGTERM)
    assert deployment.service.proc.wait(timeout=90) == 0
    _wait_closed(deployment.api_port)
