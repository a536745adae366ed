"""Command lines for the Flower daemons silobridge runs, built from validated settings."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from server.coordinator_home import HOME_ENV
from silobridge.processes import flower_executable

__all__ = [
    "CoordinatorAddresses",
    "superlink_argv",
    "superlink_env",
    "supernode_argv",
    "toml_str",
    "warm_superexec_argv",
]


def toml_str(value: str) -> str:
    """A TOML basic string: Flower parses --node-config / --run-config values as TOML."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class CoordinatorAddresses:
    """The SuperLink's three listeners: nodes (Fleet, gRPC), analysts (Control, gRPC) and
    its runtime HTTP API used by the ServerApp it launches."""

    fleet: str = "127.0.0.1:9092"
    control: str = "127.0.0.1:9093"
    runtime_host: str = "127.0.0.1"
    runtime_port: int = 9091


def superlink_argv(
    addresses: CoordinatorAddresses,
    database: Path,
    tls: tuple[Path, Path, Path] | None = None,
) -> list[str]:
    """`flower-superlink` that never installs packages at run time.

    Args:
        tls: (CA certificate, server certificate, server key); None runs without TLS.
    """
    argv = [
        flower_executable("flower-superlink"),
        "--fleet-api-address",
        addresses.fleet,
        "--control-api-address",
        addresses.control,
        "--host",
        addresses.runtime_host,
        "--port",
        str(addresses.runtime_port),
        "--database",
        str(database),
        # Departments accept no code downloads at run time (and torch would pull CUDA).
        "--disable-runtime-dependency-installation",
    ]
    if tls is None:
        return [*argv, "--insecure"]
    ca, cert, key = tls
    return [
        *argv,
        "--ssl-ca-certfile",
        str(ca),
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
    ]


def superlink_env(flwr_home: Path, coordinator_home: Path) -> dict[str, str]:
    """The environment a SuperLink needs beyond ours; it passes it on to every ServerApp.

    Args:
        flwr_home: Flower's own state folder for the SuperLink.
        coordinator_home: The coordinator's home (central caps, audit log), made absolute
            because the ServerApp runs in another working directory.
    """
    return {"FLWR_HOME": str(flwr_home), HOME_ENV: str(coordinator_home.resolve())}


def supernode_argv(
    config_path: Path,
    department: str,
    coordinator: str,
    port: int,
    root_certificates: Path | None = None,
    *,
    warm: bool = True,
) -> list[str]:
    """`flower-supernode` carrying the node config path in Flower's node config.

    Runtime dependency installation stays off (the flag to allow it is never passed).
    With `warm`, the SuperNode runs in `--isolation process` mode and the process from
    `warm_superexec_argv` launches its ClientApps.
    """
    node_config = (
        f"silobridge-config={toml_str(str(config_path))} department={toml_str(department)}"
    )
    argv = [
        flower_executable("flower-supernode"),
        "--superlink",
        coordinator,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--node-config",
        node_config,
    ]
    if warm:
        argv += ["--isolation", "process"]
    if root_certificates is None:
        return [*argv, "--insecure"]
    return [*argv, "--root-certificates", str(root_certificates)]


def warm_superexec_argv(runtime_port: int, parent_pid: int) -> list[str]:
    """The node's warm SuperExec, attached to its SuperNode's local runtime API."""
    return [
        sys.executable,
        "-m",
        "clients.warm_superexec",
        "--runtime-api-address",
        f"127.0.0.1:{runtime_port}",
        # The runtime API is a loopback link between two local processes.
        "--insecure",
        "--parent-pid",
        str(parent_pid),
    ]
