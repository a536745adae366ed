"""`silobridge officer approve-app | apps`: which app bundles may run at the node."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clients.node_config import load_node_config
from clients.policy.approval_check import load_officer_key
from clients.runtime.app_gate import approved_apps, apps_folder
from silobridge.app_approvals import chosen_hash, sign_app_approval, write_app_approval
from silobridge.cli.errors import EXIT_USER_ERROR, console, err_console, handle_errors
from silobridge.officer_keys import load_private_key
from vocab.errors import ConfigError

__all__ = ["approve_app", "list_apps"]

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _hash_of(app_hash: str | None, checkout: Path | None) -> str:
    value = chosen_hash(
        app_hash,
        checkout,
        "e.g. `silobridge officer approve-app --checkout ./silobridge-0.8.0 ...`",
    )
    if not _HASH_RE.fullmatch(value):
        raise ConfigError(
            f"APP_HASH must be 64 hex characters, got {str(app_hash)[:80]!r}",
            "copy it from `silobridge app hash CHECKOUT`",
        )
    return value


@handle_errors
def approve_app(
    key: Annotated[Path, typer.Option(help="The officer's private key (officer.key).")],
    node_config: Annotated[
        Path, typer.Option(help="The node's config: names the department and the apps folder.")
    ],
    app_hash: Annotated[
        str | None, typer.Argument(help="The bundle's SHA-256, from `silobridge app hash`.")
    ] = None,
    checkout: Annotated[
        Path | None, typer.Option(help="Compute the hash from this released checkout instead.")
    ] = None,
    label: Annotated[str, typer.Option(help="What release this is, e.g. 'silobridge 0.8.0'.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the approval as JSON.")] = False,
) -> None:
    """Approve one app bundle (a released version, by hash) to run at the node.

    The node's launcher imports no code of a run whose bundle hash has no approval signed
    by this key; it refuses the run and logs the refusal. Withdraw an approval by deleting
    its file from the apps folder.
    """
    cfg = load_node_config(node_config)
    value = _hash_of(app_hash, checkout)
    private_key = load_private_key(key)
    signed = sign_app_approval(private_key, value, cfg.department, label)
    officer = load_officer_key(cfg)
    if officer is None or officer.key_id != signed.approval.key_id:
        raise ConfigError(
            f"{key} is not the officer key {cfg.department}'s node config trusts, so the "
            "node would ignore this approval",
            "sign with the key whose officer.pub the node config names in [officer] public_key",
        )
    path = write_app_approval(signed, apps_folder(cfg))
    if as_json:
        print(json.dumps({"path": str(path), **signed.approval.to_json_dict()}, indent=2))
        return
    console.print(f"approved app {value} for {cfg.department}", highlight=False)
    console.print(f"wrote {path}", highlight=False)


@handle_errors
def list_apps(
    node_config: Annotated[Path, typer.Option(help="The node's config.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the app bundles the node will run: approvals that verify against its officer key."""
    cfg = load_node_config(node_config)
    officer = load_officer_key(cfg)
    if officer is None:
        err_console.print(
            f"{cfg.department} has no officer key in its node config: no app can run there"
        )
        raise typer.Exit(EXIT_USER_ERROR)
    found = [signed.approval for signed in approved_apps(cfg, officer)]
    if as_json:
        print(json.dumps([a.to_json_dict() for a in found], indent=2))
        return
    if not found:
        console.print(f"no approved app bundles in {apps_folder(cfg)}", highlight=False)
        return
    table = Table("app hash", "label", "issued")
    for approval in found:
        table.add_row(approval.app_hash, approval.label, approval.issued_at)
    console.print(table)
