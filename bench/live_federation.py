"""A real federation on loopback for the benchmarks that time one: a SuperLink (with a
coordinator home) and one SuperNode per written department, enrolled."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clients.node_config import NodeConfig

__all__ = ["LiveDeployment", "live_federation"]


@dataclass
class LiveDeployment:
    """Where the running federation is: its Control API, coordinator home, node processes."""

    root: Path
    control: str
    home: Path
    pids: dict[str, list[int]] = field(default_factory=dict)


@contextmanager
def live_federation(
    root: Path, nodes: Sequence[NodeConfig], *, warm: bool = True
) -> Iterator[LiveDeployment]:
    """Start the SuperLink, enrol and start every node (written by the caller), and stop
    them all on exit. Each node's Flower home is `.flwr` beside its config."""
    from clients.node_identity import node_identity
    from server.home.coordinator_home import CoordinatorHome
    from silobridge.coordinator_runner import start_coordinator
    from silobridge.daemons import CoordinatorAddresses
    from silobridge.node_runner import start_node
    from silobridge.processes import ProcessGroup, free_port, wait_for_port

    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    home = root / "coordinator"
    group = ProcessGroup(root / "logs")
    with group.running():
        link = start_coordinator(
            group, addresses, database=root / "superlink.db", flwr_home=root / "superlink-flwr",
            home=home,
        )[0]  # fmt: skip
        host, port = addresses.control.rsplit(":", 1)
        wait_for_port(host, int(port), 120, link)
        live = LiveDeployment(root, addresses.control, home)
        for cfg in nodes:
            # Enrolment: the coordinator believes only replies sealed by a registered key.
            CoordinatorHome(home).nodes.register(
                cfg.department, node_identity(cfg.ledger_path).public.pem(), replace=True
            )
            daemons = start_node(
                group, config_path=cfg.config_path, department=cfg.department,
                coordinator=addresses.fleet, port=free_port(),
                flwr_home=cfg.config_path.parent / ".flwr", warm=warm,
            )  # fmt: skip
            live.pids[cfg.department] = [d.proc.pid for d in daemons]
        yield live
