"""Starts one department node: its SuperNode and its SuperExec (warm by default)."""

from __future__ import annotations

from pathlib import Path

from silobridge.daemons import supernode_argv, warm_superexec_argv
from silobridge.processes import Daemon, ProcessGroup

__all__ = ["start_node"]


def start_node(
    group: ProcessGroup,
    *,
    config_path: Path,
    department: str,
    coordinator: str,
    port: int,
    flwr_home: Path,
    root_certificates: Path | None = None,
    auth_key: Path | None = None,
    warm: bool = True,
) -> list[Daemon]:
    """Start the node's daemons in `group`; returns them, SuperNode first.

    Args:
        root_certificates: The deployment CA for a TLS coordinator; None: no TLS.
        auth_key: The SuperNode authentication private key registered with the coordinator.
    """
    env = {"FLWR_HOME": str(flwr_home)}
    argv = supernode_argv(
        config_path, department, coordinator, port, root_certificates, auth_key, warm=warm
    )
    supernode = group.start(f"node-{department}", argv, env)
    # Every ClientApp starts from the node's own SuperExec, which runs the app gate; without
    # `warm` it spawns fresh interpreters instead of forking from its preloaded server.
    superexec = group.start(
        f"node-{department}-superexec",
        warm_superexec_argv(port, supernode.proc.pid, cold=not warm),
        env,
    )
    return [supernode, superexec]
