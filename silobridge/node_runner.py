"""Starts one department node: its SuperNode and (by default) its warm SuperExec."""

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
    warm: bool = True,
) -> list[Daemon]:
    """Start the node's daemons in `group`; returns them, SuperNode first."""
    env = {"FLWR_HOME": str(flwr_home)}
    argv = supernode_argv(config_path, department, coordinator, port, root_certificates, warm=warm)
    supernode = group.start(f"node-{department}", argv, env)
    if not warm:
        return [supernode]
    superexec = group.start(
        f"node-{department}-superexec", warm_superexec_argv(port, supernode.proc.pid), env
    )
    return [supernode, superexec]
