"""A real coordinator service on 127.0.0.1 (a free port, mutual TLS with a real deployment
CA) in front of the real ServerApp and two in-process departments, and clients with
credentials of every role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
from server.service.serve import RunningService, start_service
from server.service.service_config import ServiceConfig
from silobridge.certs import DeploymentCerts, issue_client_cert, make_deployment_certs
from testkit.inprocess_federation import Federation
from testkit.inprocess_runner import InProcessRunner

ANALYST = "r.ahmed"
OTHER_ANALYST = "b.other"
OFFICER = "o.privacy"
OPERATOR = "ops.one"


@dataclass
class Deployment:
    """The service under test and the credentials to call it with."""

    root: Path
    certs: DeploymentCerts
    foreign: DeploymentCerts
    federation: Federation
    runner: InProcessRunner
    config: ServiceConfig
    service: RunningService
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.service.port}"

    def credentials(self, role: str, name: str, *, foreign: bool = False) -> tuple[Path, Path]:
        ca = self.foreign if foreign else self.certs
        out = self.root / ("foreign-clients" if foreign else "clients")
        files = issue_client_cert(ca.folder, out, role=role, name=name, force=True)
        return files.cert, files.key

    def channel(self, role: str | None, name: str = "", *, foreign: bool = False) -> grpc.Channel:
        """A channel with a client certificate of `role` (None: no client certificate)."""
        if role is None:
            creds = grpc.ssl_channel_credentials(root_certificates=self.certs.ca_cert.read_bytes())
        else:
            cert, key = self.credentials(role, name or f"{role}.x", foreign=foreign)
            creds = grpc.ssl_channel_credentials(
                root_certificates=self.certs.ca_cert.read_bytes(),
                private_key=key.read_bytes(),
                certificate_chain=cert.read_bytes(),
            )
        channel = grpc.secure_channel(self.address, creds)
        self.channels.append(channel)
        return channel

    def stub(self, role: str | None, name: str = "", *, foreign: bool = False) -> Any:
        return pb_grpc.CoordinatorStub(self.channel(role, name, foreign=foreign))

    def restart(self, runner: InProcessRunner | None = None) -> None:
        """Start a new service instance on the same store and home (after `stop`)."""
        self.runner = runner or InProcessRunner(self.federation)
        self.service = start_service(self.config, self.runner)


def _config(root: Path, certs: DeploymentCerts, federation: Federation) -> ServiceConfig:
    return ServiceConfig(
        listen="127.0.0.1:0",
        home=federation.home.root,
        store=str(root / "jobs.db"),
        tls=(certs.server_cert, certs.server_key, certs.ca_cert),
        max_concurrent_jobs=1,
        submits_per_hour=20,
        analysts={ANALYST: ("credit",), OTHER_ANALYST: ("health",)},
    )


@pytest.fixture
def make_deployment(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def make(**overrides: Any) -> Deployment:
        certs = make_deployment_certs(tmp_path / "certs")
        foreign = make_deployment_certs(tmp_path / "foreign-certs", name="someone else's CA")
        federation = Federation(tmp_path / "federation")
        config = _config(tmp_path, certs, federation)
        if overrides:
            import dataclasses

            config = dataclasses.replace(config, **overrides)
        runner = InProcessRunner(federation)
        deployment = Deployment(
            tmp_path, certs, foreign, federation, runner, config, start_service(config, runner)
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        for channel in deployment.channels:
            channel.close()
        deployment.service.stop(grace_s=5.0)


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    return make_deployment()
