"""`silobridge audit ...`: read and verify a node's hash-chained audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clients.audit_paths import audit_path_for
from clients.node_config import load_node_config
from silobridge.cli.errors import EXIT_USER_ERROR, console, err_console, handle_errors
from vocab.audit_chain import ChainHead, verify_chain
from vocab.audit_log import read_entries
from vocab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="Read and verify audit logs.", no_args_is_help=True)


def _anchor_from_result(result_path: Path, department: str) -> ChainHead | None:
    try:
        result = json.loads(result_path.read_text())
        head = result["nodes"][department]["audit_head"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{result_path} holds no audit head for department {department!r} ({err})",
            "pass the result.json of a job this node took part in",
        ) from err
    return None if head is None else ChainHead(int(head["seq"]), str(head["hash"]))


@app.command("verify")
@handle_errors
def verify(
    node_config: Annotated[Path, typer.Option(help="The node config whose log to check.")],
    result: Annotated[
        Path | None,
        typer.Option(help="A job's result.json: its recorded chain head must still be there."),
    ] = None,
) -> None:
    """Check every link and hash; exit non-zero at the first bad entry."""
    cfg = load_node_config(node_config)
    path = audit_path_for(cfg.ledger_path)
    anchor = _anchor_from_result(result, cfg.department) if result else None
    outcome = verify_chain(read_entries(path), anchor)
    if not outcome.ok:
        err_console.print(f"[bold red]audit log BROKEN[/] {path}: first bad entry "
                          f"{outcome.first_bad}: {outcome.reason}", soft_wrap=True)  # fmt: skip
        raise typer.Exit(EXIT_USER_ERROR)
    anchored = f", anchored at entry {anchor.seq}" if anchor else ""
    console.print(f"audit log OK: {outcome.entries} entries{anchored} ({path})", soft_wrap=True)


@app.command("show")
@handle_errors
def show(
    node_config: Annotated[Path, typer.Option(help="The node config whose log to show.")],
    last: Annotated[int, typer.Option(help="How many of the latest entries.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
) -> None:
    """Print the latest audit entries."""
    cfg = load_node_config(node_config)
    entries = read_entries(audit_path_for(cfg.ledger_path))[-last:]
    if as_json:
        for entry in entries:
            typer.echo(entry.to_json())
        return
    table = Table(title=f"audit log of {cfg.department}")
    for col in ("seq", "time (UTC)", "event", "details"):
        table.add_column(col)
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in e.data.items())
        table.add_row(str(e.seq), e.ts, e.kind, details)
    console.print(table)
