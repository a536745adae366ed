"""Attacks on who may join (issue 8), on real processes: a SuperNode whose key the coordinator
never registered cannot join and no job sees it, and no daemon runs in clear text off
loopback unless told `--insecure`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from server.run_config import RunMode
from silobridge.certs import DeploymentCerts, make_deployment_certs, make_node_key
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.enrolment import enrol_node
from silobridge.flower_federation import Federation
from silobridge.flower_runner import submit_job
from silobridge.node_runner import start_node
from silobridge.processes import Daemon, ProcessGroup, free_port, wait_for_port
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.progress import ProgressEvent, QuoteResult

pytestmark = pytest.mark.integration

_JOINED = "SuperNode ID"
# What Flower 1.36 answers an unregistered key (ActivateNode) and a node that tries to
# register itself (RegisterNode) when node authentication is on.
_NOT_ACTIVATED = "Failed to activate SuperNode"
_SELF_REGISTRATION_OFF = "All SuperNodes must be registered via the CLI"
_ACTIVATED = re.compile(r"\[Fleet\.ActivateNode\] Activated node_id=(\d+)")


@dataclass
class Deployment:
    root: Path
    certs: DeploymentCerts
    addresses: CoordinatorAddresses
    daemons: dict[str, Daemon]

    def log(self, name: str) -> str:
        path = self.daemons[name].log_path
        assert path is not None
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(deployment: Deployment, name: str, needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if needle in deployment.log(name):
            return
        time.sleep(0.3)
    raise AssertionError(
        f"{name} never logged {needle!r}; its log ends:\n{deployment.log(name)[-2000:]}"
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A TLS SuperLink with node authentication; north is enrolled, two nodes are not:
    `intruder` has a key of its own and claims to be south, `keyless` has none at all; and
    `mimic`, enrolled as east, claims to be north."""
    root = tmp_path_factory.mktemp("node-identity")
    certs = make_deployment_certs(root / "certs")
    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    nodes = {
        name: write_node(root / name, dept, 8.0, make_rows(300, seed))
        for seed, (name, dept) in enumerate(
            [("north", "north"), ("intruder", "south"), ("keyless", "west"), ("mimic", "north")],
            start=1,
        )
    }
    keys = {name: make_node_key(root / "certs", name) for name in ("north", "intruder", "mimic")}
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
        enrol_node(
            CoordinatorHome(root / "coordinator"),
            Federation(addresses.control, certs.ca_cert),
            "north",
            keys["north"].public,
            node_identity(nodes["north"].ledger_path).public.pem(),
        )
        # mimic is enrolled honestly as east, then its operator configures it as north.
        enrol_node(
            CoordinatorHome(root / "coordinator"),
            Federation(addresses.control, certs.ca_cert),
            "east",
            keys["mimic"].public,
            node_identity(nodes["mimic"].ledger_path).public.pem(),
        )
        daemons = {"superlink": link}
        for name, cfg in nodes.items():
            daemons[name] = start_node(
                group,
                config_path=cfg.config_path,
                department=cfg.department,
                coordinator=addresses.fleet,
                port=free_port(),
                flwr_home=root / name / ".flwr",
                root_certificates=certs.ca_cert,
                auth_key=keys[name].private if name in keys else None,
            )[0]
        yield Deployment(root, certs, addresses, daemons)


def test_unregistered_supernodes_are_rejected(deployment: Deployment) -> None:
    _wait_for(deployment, "north", _JOINED, 240)
    _wait_for(deployment, "mimic", _JOINED, 240)
    _wait_for(deployment, "intruder", _NOT_ACTIVATED, 120)
    _wait_for(deployment, "keyless", _SELF_REGISTRATION_OFF, 120)
    assert _JOINED not in deployment.log("intruder")
    assert _JOINED not in deployment.log("keyless")
    assert "No SuperNode found with the given public key" in deployment.log("superlink")
    # north and mimic (enrolled, as east) joined; nobody else did. The SuperLink's log may
    # trail the nodes' (it is written by another process): wait for both activations.
    deadline = time.monotonic() + 60
    while len(_activated(deployment)) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(_activated(deployment)) == 2, deployment.log("superlink")[-2000:]


def _activated(deployment: Deployment) -> set[str]:
    """The node ids the SuperLink activated (a node that reconnects keeps its id)."""
    return set(_ACTIVATED.findall(deployment.log("superlink")))


def test_a_job_never_sees_an_unregistered_node(deployment: Deployment) -> None:
    _wait_for(deployment, "north", _JOINED, 240)
    events: list[ProgressEvent] = []
    spec = synthetic_spec("identity-quote", min_nodes=1, node_wait_s=30.0)
    quote = submit_job(
        spec,
        deployment.root / "quote",
        Federation(deployment.addresses.control, deployment.certs.ca_cert),
        deployment.root / "analyst-flwr",
        events.append,
        home=deployment.root / "coordinator",
        mode=RunMode.QUOTE,
    )
    assert isinstance(quote, QuoteResult), quote
    # Only north's answer is believed as north's; the mimic's claim is not an answer.
    believed = [n.department for n in quote.nodes if n.status != "no_answer"]
    assert believed == ["north"], quote.nodes


def test_a_registered_node_cannot_speak_for_another_department(deployment: Deployment) -> None:
    _wait_for(deployment, "north", _JOINED, 240)
    _wait_for(deployment, "mimic", _JOINED, 240)  # its Flower key is registered: it joins
    spec = synthetic_spec("identity-mimic", min_nodes=2, node_wait_s=30.0)
    quote = submit_job(
        spec,
        deployment.root / "mimic-quote",
        Federation(deployment.addresses.control, deployment.certs.ca_cert),
        deployment.root / "analyst-flwr",
        lambda _event: None,
        home=deployment.root / "coordinator",
        mode=RunMode.QUOTE,
    )
    assert isinstance(quote, QuoteResult), quote
    unverified = [n for n in quote.nodes if n.code == "unverified"]
    assert len(unverified) == 1, quote.nodes
    assert "claims to speak for 'north'" in unverified[0].reason
    assert unverified[0].department != "north"
    # Two nodes answered, but only one department did: no quorum of two.
    assert not quote.ok, quote


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "silobridge.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("listener", ["--fleet-address", "--control-address"])
def test_coordinator_refuses_clear_text_off_loopback(tmp_path: Path, listener: str) -> None:
    address = f"0.0.0.0:{free_port()}"
    done = _cli("coordinator", "start", "--state-dir", str(tmp_path / "home"), listener, address)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"refusing to run the coordinator without TLS on {address}" in done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything started: no home, nothing listening.
    assert not (tmp_path / "home").exists()


def test_node_refuses_clear_text_to_a_remote_coordinator(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "north", "north", 8.0, make_rows(50, 1))
    address = f"192.0.2.1:{free_port()}"  # TEST-NET-1: never routed
    done = _cli("node", "start", "--config", str(cfg.config_path), "--coordinator", address)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"refusing to run the node without TLS on {address}" in done.stderr
    assert "--insecure" in done.stderr
