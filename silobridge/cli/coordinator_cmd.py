"""`silobridge coordinator ...`: run the coordinator (a Flower SuperLink)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from silobridge.cli.errors import console, handle_errors
from silobridge.daemons import CoordinatorAddresses, superlink_argv, superlink_env
from silobridge.processes import ProcessGroup
from vocab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="Run the coordinator.", no_args_is_help=True)


@app.command("start")
@handle_errors
def start(
    fleet_address: Annotated[
        str, typer.Option(help="Where nodes connect (gRPC).")
    ] = "127.0.0.1:9092",
    control_address: Annotated[
        str, typer.Option(help="Where analysts submit jobs (gRPC).")
    ] = "127.0.0.1:9093",
    runtime_port: Annotated[int, typer.Option(help="Local runtime API port (ServerApp).")] = 9091,
    state_dir: Annotated[
        Path,
        typer.Option(
            help="The coordinator's home: SuperLink state, central caps, audit log "
            "(see docs/coordinator.md)."
        ),
    ] = Path("coordinator-state"),
    ssl_ca_certfile: Annotated[Path | None, typer.Option(help="TLS: CA certificate.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS: server certificate.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS: server key.")] = None,
) -> None:
    """Start the coordinator; runtime dependency installation is always off."""
    tls_parts = (ssl_ca_certfile, ssl_certfile, ssl_keyfile)
    if any(tls_parts) and not all(tls_parts):
        raise ConfigError(
            "TLS needs all of --ssl-ca-certfile, --ssl-certfile, --ssl-keyfile",
            "give all three, or none to run without TLS on a trusted network",
        )
    tls = (ssl_ca_certfile, ssl_certfile, ssl_keyfile) if all(tls_parts) else None
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    addresses = CoordinatorAddresses(fleet_address, control_address, "127.0.0.1", runtime_port)
    argv = superlink_argv(addresses, state_dir / "superlink.db", tls)  # type: ignore[arg-type]
    console.print(
        f"coordinator: nodes connect to {fleet_address}, analysts to "
        f"{control_address}{'' if tls else ' (no TLS)'}; home {state_dir}; Ctrl-C stops it"
    )
    group = ProcessGroup(log_dir=None)
    with group.running():
        link = group.start("superlink", argv, superlink_env(state_dir / "flwr", state_dir))
        group.wait_any()
    raise typer.Exit(link.proc.returncode or 0)
