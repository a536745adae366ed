"""A real federation on loopback: one SuperLink and several SuperNodes with generated data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from server.run_config import RunMode
from silobridge.certs import make_deployment_certs, make_node_key
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.enrolment import enrol_node
from silobridge.flower_federation import Federation
from silobridge.flower_runner import submit_job
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup, free_port, wait_for_port
from testkit.synthetic import make_rows, write_node
from vocab.progress import FinalEvent, ProgressEvent
from vocab.spec import JobEnvelope

__all__ = ["LiveFederation"]


@dataclass
class LiveFederation:
    """Handles to a running federation and a helper to run jobs on it."""

    root: Path
    control: str
    # The deployment CA: the SuperLink runs with TLS and admits only registered node keys.
    root_certificates: Path | None = None
    nodes: dict[str, NodeConfig] = field(default_factory=dict)
    events: list[ProgressEvent] = field(default_factory=list)

    def run(self, spec: JobEnvelope, out_name: str, mode: RunMode = RunMode.RUN) -> FinalEvent:
        return submit_job(
            spec,
            self.root / out_name,
            Federation(self.control, self.root_certificates),
            self.root / "analyst-flwr",
            self.events.append,
            home=self.root / "coordinator",
            mode=mode,
        )


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFederation]:
    """SuperLink + 4 SuperNodes: two healthy, one with a tiny budget, one with a corrupt CSV."""
    root = tmp_path_factory.mktemp("federation")
    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    certs = make_deployment_certs(root / "certs")
    live = LiveFederation(root, addresses.control, certs.ca_cert)
    live.nodes["alpha"] = write_node(root / "alpha", "alpha", 8.0, make_rows(700, 1))
    live.nodes["beta"] = write_node(root / "beta", "beta", 8.0, make_rows(700, 2))
    live.nodes["poor"] = write_node(root / "poor", "poor", 0.3, make_rows(700, 3))
    corrupt = write_node(root / "corrupt", "corrupt", 8.0, None)
    corrupt.source.path.write_text('pid,x1,x2,grp,secret,y\n1,0.5,"unterminated\n2,abc,1,a,s,1\n')  # type: ignore[union-attr]
    live.nodes["corrupt"] = corrupt
    group = ProcessGroup(root / "logs")
    with group.running():
        link = start_coordinator(
            group,
            addresses,
            database=root / "superlink.db",
            flwr_home=root / "superlink-flwr",
            home=root / "coordinator",
            tls=certs.superlink_tls(),
        )[0]
        host, port = addresses.control.rsplit(":", 1)
        wait_for_port(host, int(port), 120, link)
        keys = {name: make_node_key(root / "certs", name) for name in live.nodes}
        for name, cfg in live.nodes.items():
            enrol_node(
                CoordinatorHome(root / "coordinator"),
                Federation(addresses.control, certs.ca_cert),
                name,
                keys[name].public,
                node_identity(cfg.ledger_path).public.pem(),
            )
        supernodes = [
            start_node(
                group,
                config_path=cfg.config_path,
                department=name,
                coordinator=addresses.fleet,
                port=free_port(),
                flwr_home=cfg.config_path.parent / ".flwr",
                root_certificates=certs.ca_cert,
                auth_key=keys[name].private,
            )[0]
            for name, cfg in live.nodes.items()
        ]
        for daemon in supernodes:
            assert daemon.log_path is not None
            _wait_for_log(daemon.log_path, "SuperNode ID", 240)
        yield live


def _wait_for_log(path: Path, needle: str, timeout_s: float) -> None:
    """Block until a daemon's log shows it registered with the SuperLink."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no log written)"
    raise TimeoutError(
        f"{path.name} never logged {needle!r} in {timeout_s:.0f} s; its log ends:\n{tail}"
    )
