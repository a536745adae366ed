"""Command lines for the Flower daemons silobridge runs, built from validated settings."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from silobridge.processes import flower_executable
from vocab.errors import ConfigError

__all__ = [
    "CONTROL_FILE",
    "ControlRecord",
    "CoordinatorAddresses",
    "check_transport",
    "is_loopback",
    "superlink_argv",
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


# Written into the coordinator home at start, so that `silobridge node register
# --coordinator-home` on the coordinator host finds the Control API and its CA.
CONTROL_FILE = "control.json"


@dataclass(frozen=True)
class ControlRecord:
    """Where the coordinator's Control API listens, and the CA of its TLS certificate."""

    address: str
    root_certificates: Path | None

    def write(self, home: Path) -> None:
        ca = str(self.root_certificates) if self.root_certificates else None
        record = {"control_address": self.address, "root_certificates": ca}
        (home / CONTROL_FILE).write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def read(cls, home: Path) -> ControlRecord | None:
        """The record `coordinator start` left in `home`, or None if there is none.

        Raises:
            ConfigError: If the record is damaged.
        """
        path = home / CONTROL_FILE
        if not path.is_file():
            return None
        try:
            recorded = json.loads(path.read_text())
            ca = recorded.get("root_certificates")
            return cls(str(recorded["control_address"]), Path(ca) if ca else None)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ConfigError(
                f"{path} is damaged ({err})",
                "pass --control-address (and --root-certificates), or restart the coordinator",
            ) from None


def is_loopback(address: str) -> bool:
    """True when HOST:PORT (or [IPv6]:PORT) names this machine only.

    Host names other than `localhost` count as not loopback: they are not resolved, and a
    name can point anywhere. `0.0.0.0` listens on every interface, so it is not loopback.
    """
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(addresses: Sequence[str], *, tls: bool, insecure: bool, what: str) -> None:
    """Refuse to run without TLS on an address other hosts can reach, unless told to.

    Args:
        addresses: The HOST:PORTs `what` listens on or connects to.
        tls: Whether TLS is configured.
        insecure: The operator passed `--insecure`.
        what: Names the daemon in the message (`coordinator`, `node`).

    Raises:
        ConfigError: TLS is configured and `--insecure` given too, or there is no TLS, an
            address is not loopback and `--insecure` was not given.
    """
    if tls and insecure:
        raise ConfigError(
            f"the {what} was given both TLS certificates and --insecure",
            "drop --insecure to run with TLS, or the certificates to run without it",
        )
    if tls or insecure:
        return
    exposed = [a for a in addresses if not is_loopback(a)]
    if exposed:
        raise ConfigError(
            f"refusing to run the {what} without TLS on {', '.join(exposed)}, which is not a "
            "loopback address: traffic and node identities would cross the network in clear",
            "make certificates with `silobridge certs init` and pass them (see "
            "docs/coordinator.md, Deployment), or pass --insecure if the network is trusted",
        )


def superlink_argv(
    addresses: CoordinatorAddresses,
    database: Path,
    tls: tuple[Path, Path, Path] | None = None,
    *,
    node_auth: bool = True,
) -> list[str]:
    """`flower-superlink` that never installs packages at run time.

    Args:
        tls: (CA certificate, server certificate, server key); None runs without TLS.
        node_auth: With TLS, admit only SuperNodes whose public key was registered through
            the Control API (`--enable-supernode-auth`). Flower refuses node
            authentication without TLS, so without `tls` any node may join.
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
    argv += ["--ssl-ca-certfile", str(ca), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    return [*argv, "--enable-supernode-auth"] if node_auth else argv


def supernode_argv(
    config_path: Path,
    department: str,
    coordinator: str,
    port: int,
    root_certificates: Path | None = None,
    auth_key: Path | None = None,
    *,
    warm: bool = True,
) -> list[str]:
    """`flower-supernode` carrying the node config path in Flower's node config.

    Runtime dependency installation stays off (the flag to allow it is never passed).
    The SuperNode always runs in `--isolation process` mode: its ClientApps are launched
    only by the node's own SuperExec (`warm_superexec_argv`), which runs the app gate;
    `warm` is kept for callers and decides nothing here.

    Args:
        root_certificates: The deployment CA; None connects without TLS.
        auth_key: The node's SuperNode authentication key (OpenSSH EC private key); its
            public half must be registered with the SuperLink. None lets Flower make a
            throwaway key, which a SuperLink with node authentication rejects.
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
    del warm
    argv += ["--isolation", "process"]
    if auth_key is not None:
        argv += ["--auth-supernode-private-key", str(auth_key)]
    if root_certificates is None:
        return [*argv, "--insecure"]
    return [*argv, "--root-certificates", str(root_certificates)]


def warm_superexec_argv(runtime_port: int, parent_pid: int, *, cold: bool = False) -> list[str]:
    """The node's SuperExec (app gate included), attached to its SuperNode's runtime API.

    `cold` spawns each ClientApp from a fresh interpreter instead of the warm fork server.
    """
    return [
        sys.executable,
        "-m",
        "clients.runtime.warm_superexec",
        "--runtime-api-address",
        f"127.0.0.1:{runtime_port}",
        # The runtime API is a loopback link between two local processes.
        "--insecure",
        "--parent-pid",
        str(parent_pid),
        *(["--cold"] if cold else []),
    ]
