"""`silobridge coordinator ...`: run the coordinator (a Flower SuperLink)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from server.home.coordinator_home import CoordinatorHome
from silobridge.app_approvals import chosen_hash
from silobridge.certs import DeploymentCerts
from silobridge.cli.errors import console, err_console, handle_errors
from silobridge.coordinator_apps import approve_coordinator_app, coordinator_apps
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import (
    ControlRecord,
    CoordinatorAddresses,
    check_transport,
)
from silobridge.processes import ProcessGroup
from vocab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="Run the coordinator.", no_args_is_help=True)


def _tls_files(
    certs: Path | None,
    state_dir: Path,
    parts: tuple[Path | None, Path | None, Path | None],
    insecure: bool,
) -> tuple[Path, Path, Path] | None:
    """The (CA, certificate, key) to run with: the single flags, --certs, or <home>/certs."""
    if any(parts):
        if certs is not None or not all(parts):
            raise ConfigError(
                "TLS needs either --certs or all of --ssl-ca-certfile, --ssl-certfile, "
                "--ssl-keyfile",
                "give a certs folder (`silobridge certs init`) or the three files",
            )
        return parts  # type: ignore[return-value]
    if certs is not None:
        return DeploymentCerts(certs.resolve()).superlink_tls()
    default = DeploymentCerts(state_dir / "certs")
    if not insecure and default.ca_cert.is_file():
        return default.superlink_tls()
    return None


@app.command("start")
@handle_errors
def start(
    fleet_address: Annotated[
        str, typer.Option(help="Where nodes connect (gRPC).")
    ] = "127.0.0.1:9092",
    control_address: Annotated[
        str,
        typer.Option(
            help="Where analysts submit jobs and node keys are registered (gRPC). Flower's "
            "Control API authenticates no one: keep it on loopback (the default) or a "
            "network only trusted parties reach."
        ),
    ] = "127.0.0.1:9093",
    runtime_port: Annotated[int, typer.Option(help="Local runtime API port (ServerApp).")] = 9091,
    state_dir: Annotated[
        Path,
        typer.Option(
            help="The coordinator's home: SuperLink state, central caps, audit log "
            "(see docs/coordinator.md)."
        ),
    ] = Path("coordinator-state"),
    certs: Annotated[
        Path | None,
        typer.Option(
            help="Certs folder from `silobridge certs init` (ca.pem, server.pem, server.key); "
            "default: <state-dir>/certs when it holds them."
        ),
    ] = None,
    ssl_ca_certfile: Annotated[Path | None, typer.Option(help="TLS: CA certificate.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS: server certificate.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS: server key.")] = None,
    node_auth: Annotated[
        bool,
        typer.Option(
            help="With TLS, admit only SuperNodes whose key was registered "
            "(`silobridge node register`)."
        ),
    ] = True,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Run without TLS (and so without node authentication) even on a "
            "non-loopback address.",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Run as a service (coordinator.toml, see docs/deployment.md): the "
            "authenticated API for analysts and officers, a job store, Flower's Control API "
            "on loopback only. Its home replaces --state-dir."
        ),
    ] = None,
) -> None:
    """Start the coordinator; runtime dependency installation is always off.

    Without TLS it runs only on loopback addresses, unless --insecure is given.
    """
    if config is not None:
        _serve(config, fleet_address, control_address, runtime_port, certs,
               (ssl_ca_certfile, ssl_certfile, ssl_keyfile), node_auth, insecure)  # fmt: skip
        return
    state_dir = state_dir.resolve()
    tls = _tls_files(certs, state_dir, (ssl_ca_certfile, ssl_certfile, ssl_keyfile), insecure)
    check_transport(
        [fleet_address, control_address],
        tls=tls is not None,
        insecure=insecure,
        what="coordinator",
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    addresses = CoordinatorAddresses(fleet_address, control_address, "127.0.0.1", runtime_port)
    ControlRecord(control_address, tls[0].resolve() if tls else None).write(state_dir)
    if tls is None:
        err_console.print(
            "[yellow]warning[/]: no TLS and no node authentication: any process that can "
            "reach these ports can join as a node or submit jobs; fine only on one host",
        )
        security = "no TLS, any node may join"
    elif node_auth:
        security = f"TLS (CA {tls[0]}), only registered node keys join"
    else:
        security = f"TLS (CA {tls[0]}), any node may join (--no-node-auth)"
    console.print(
        f"coordinator: nodes connect to {fleet_address}, analysts to {control_address}; "
        f"{security}; home {state_dir}; Ctrl-C stops it",
        highlight=False,
        soft_wrap=True,
    )
    group = ProcessGroup(log_dir=None)
    with group.running():
        link = start_coordinator(
            group,
            addresses,
            database=state_dir / "superlink.db",
            flwr_home=state_dir / "flwr",
            home=state_dir,
            tls=tls,
            node_auth=node_auth,
        )[0]
        group.wait_any()
    raise typer.Exit(link.proc.returncode or 0)


def _serve(
    config_path: Path, fleet_address: str, control_address: str, runtime_port: int,
    certs: Path | None, parts: tuple[Path | None, Path | None, Path | None], node_auth: bool,
    insecure: bool,
) -> None:  # fmt: skip
    from server.service.service_config import load_service_config
    from silobridge.coordinator_service import FlowerSettings, serve_coordinator

    service = load_service_config(config_path)
    tls = _tls_files(certs, service.home, parts, insecure)
    check_transport([fleet_address], tls=tls is not None, insecure=insecure, what="coordinator")
    host, _, port = control_address.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "[::1]") or not port.isdigit():
        raise ConfigError(
            f"--control-address {control_address} is not on loopback",
            "as a service, Flower's Control API listens on loopback only (e.g. 127.0.0.1:9093): "
            "analysts and officers use the service's API",
        )
    console.print(
        f"coordinator service: API on {service.listen} (mutual TLS), nodes connect to "
        f"{fleet_address}, Flower's Control API on loopback only; home {service.home}; "
        "SIGTERM or Ctrl-C stops it (running jobs resume at the next start)",
        highlight=False,
        soft_wrap=True,
    )
    flower = FlowerSettings(
        fleet_address, tls, node_auth=node_auth and tls is not None, runtime_port=runtime_port,
        control_port=int(port),
    )  # fmt: skip
    code = serve_coordinator(service, flower)
    raise typer.Exit(code)


@app.command("approve-app")
@handle_errors
def approve_app(
    state_dir: Annotated[Path, typer.Option(help="The coordinator's home (its --state-dir).")],
    app_hash: Annotated[
        str | None, typer.Argument(help="The bundle's SHA-256, from `silobridge app hash`.")
    ] = None,
    checkout: Annotated[
        Path | None, typer.Option(help="Compute the hash from this checkout instead.")
    ] = None,
    label: Annotated[str, typer.Option(help="What release this is.")] = "",
) -> None:
    """Let runs of one more app bundle start their ServerApp on this coordinator.

    `coordinator start` approves the release it runs from; approve another version only
    after reviewing it: its ServerApp gets the coordinator home (caps, audit log, key).
    Nodes are not bound by this list: each runs only what its own officer approved.
    """
    home = CoordinatorHome.existing(state_dir).root
    example = "e.g. `silobridge coordinator approve-app --state-dir DIR --checkout ./release`"
    value = chosen_hash(app_hash, checkout, example)
    entry = approve_coordinator_app(home, value, label)
    console.print(
        f"ServerApps of app {entry.app_hash} may run on this coordinator", highlight=False
    )


@app.command("apps")
@handle_errors
def apps(
    state_dir: Annotated[Path, typer.Option(help="The coordinator's home (its --state-dir).")],
) -> None:
    """List the app bundles whose ServerApps may run on this coordinator."""
    found = coordinator_apps(CoordinatorHome.existing(state_dir).root)
    if not found:
        console.print("no approved app bundles (`coordinator start` approves its own release)")
    for entry in found:
        console.print(
            f"{entry.app_hash}  {entry.approved_at}  {entry.label}", highlight=False, soft_wrap=True
        )
