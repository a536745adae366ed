"""Starts the coordinator's daemons: its SuperLink and its gated ServerApp launcher."""

from __future__ import annotations

import sys
from pathlib import Path

from server.home.home_env import HOME_ENV
from silobridge.app_approvals import release_hash
from silobridge.coordinator_apps import approve_coordinator_app
from silobridge.daemons import CoordinatorAddresses, superlink_argv
from silobridge.flower_federation import app_root
from silobridge.processes import Daemon, ProcessGroup, wait_for_port

__all__ = ["start_coordinator"]


def start_coordinator(
    group: ProcessGroup,
    addresses: CoordinatorAddresses,
    *,
    database: Path,
    flwr_home: Path,
    home: Path,
    tls: tuple[Path, Path, Path] | None = None,
    node_auth: bool = True,
    timeout_s: float = 120,
) -> list[Daemon]:
    """Starts the SuperLink and the launcher in `group`; returns them, SuperLink first.

    The release this installation runs is approved for the coordinator's own ServerApps
    (its operator installed it); any other bundle needs `silobridge coordinator approve-app`.
    Only the launcher gets the coordinator home: the SuperLink and the Control API never
    see it, and a ServerApp gets it only once its bundle passed the gate.
    """
    home = home.resolve()
    approve_coordinator_app(home, release_hash(app_root()), "installed release")
    argv = superlink_argv(addresses, database, tls, node_auth=node_auth)
    link = group.start(
        "superlink", [*argv, "--isolation", "process"], {"FLWR_HOME": str(flwr_home)}
    )
    wait_for_port(addresses.runtime_host, addresses.runtime_port, timeout_s, link)
    launcher = group.start(
        "serverapp-launcher",
        [
            sys.executable,
            "-m",
            "silobridge.serverapp_launcher",
            "--runtime-api-address",
            f"{addresses.runtime_host}:{addresses.runtime_port}",
            "--parent-pid",
            str(link.proc.pid),
        ],
        {"FLWR_HOME": str(flwr_home), HOME_ENV: str(home)},
    )
    return [link, launcher]
