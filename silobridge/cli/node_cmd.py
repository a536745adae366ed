"""`silobridge node ...`: run a department node next to its data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.node_config import load_node_config
from silobridge.cli.errors import console, handle_errors
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup

__all__ = ["app"]

app = typer.Typer(help="Run and inspect a department node.", no_args_is_help=True)


@app.command("start")
@handle_errors
def start(
    config: Annotated[Path, typer.Option(help="The node config TOML.")],
    coordinator: Annotated[str, typer.Option(help="The coordinator's Fleet API, HOST:PORT.")],
    port: Annotated[int, typer.Option(help="Local port of this node's runtime API.")] = 9094,
    root_certificates: Annotated[
        Path | None, typer.Option(help="CA certificate of a TLS coordinator.")
    ] = None,
    flwr_home: Annotated[
        Path | None, typer.Option(help="Flower state folder (default: beside the config).")
    ] = None,
    warm: Annotated[
        bool,
        typer.Option(
            help="Launch ClientApps from a warm process that already imported torch "
            "(--no-warm: Flower's plain subprocess per message)."
        ),
    ] = True,
) -> None:
    """Start this department's node (a Flower SuperNode) and keep it running."""
    cfg = load_node_config(config)
    path = cfg.config_path.resolve()
    console.print(
        f"node [bold]{cfg.department}[/]: dataset {cfg.dataset!r}, budget "
        f"epsilon={cfg.budget.epsilon} delta={cfg.budget.delta}, ledger {cfg.ledger_path}"
    )
    console.print(f"connecting to {coordinator}; Ctrl-C stops the node")
    group = ProcessGroup(log_dir=None)
    with group.running():
        start_node(
            group,
            config_path=path,
            department=cfg.department,
            coordinator=coordinator,
            port=port,
            flwr_home=flwr_home or path.parent / ".flwr",
            root_certificates=root_certificates,
            warm=warm,
        )
        stopped = group.wait_any()
    raise typer.Exit(stopped.proc.returncode or 0)
