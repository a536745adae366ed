"""`silobridge certs ...`: a deployment's CA, the coordinator's certificate, node keys, and
people's client certificates for the coordinator service's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from silobridge.certs import (
    CA_DAYS,
    CLIENT_DAYS,
    DEFAULT_HOSTS,
    MAX_CLIENT_DAYS,
    SERVER_DAYS,
    NodeKeyFiles,
    issue_client_cert,
    make_deployment_certs,
    make_node_key,
)
from silobridge.cli.errors import console, handle_errors
from vocab.errors import ConfigError
from vocab.roles import ROLES

__all__ = ["app"]

app = typer.Typer(
    help="Make TLS certificates, SuperNode keys and client certificates.", no_args_is_help=True
)


def _print_node_key(files: NodeKeyFiles, department: str) -> None:
    console.print(
        f"  {department}: {files.private} (private, 0600: stays on the node's host; "
        f"`node start --auth-key`), {files.public} (public: `node register --flower-key`)",
        highlight=False,
        soft_wrap=True,
    )


@app.command("init")
@handle_errors
def init(
    out: Annotated[Path, typer.Option(help="Folder for the new files.")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="A name or IP address nodes and analysts use to reach the coordinator "
            f"(repeat; default: {', '.join(DEFAULT_HOSTS)})."
        ),
    ] = None,
    department: Annotated[
        list[str] | None,
        typer.Option(help="Also make this department's SuperNode key (repeat)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace files that exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files as JSON.")] = False,
) -> None:
    """Make a deployment CA and the coordinator's TLS certificate and key, signed by it."""
    hosts = host or list(DEFAULT_HOSTS)
    departments = department or []
    if len(set(departments)) != len(departments):
        raise ConfigError("a department is named twice", "name each department once")
    # Check every target before writing any, so a refusal leaves the folder as it was.
    for dept in departments:
        existing = [p for p in _node_paths(out, dept) if p.exists()]
        if existing and not force:
            raise ConfigError(
                f"refusing to overwrite {', '.join(map(str, existing))}",
                "pass --force to replace them, or choose another --out folder",
            )
    certs = make_deployment_certs(out, hosts, force=force)
    nodes = {dept: make_node_key(out, dept, force=force) for dept in departments}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ca_cert": str(certs.ca_cert),
                    "ca_key": str(certs.ca_key),
                    "server_cert": str(certs.server_cert),
                    "server_key": str(certs.server_key),
                    "hosts": hosts,
                    "node_keys": {
                        d: {"private": str(f.private), "public": str(f.public)}
                        for d, f in nodes.items()
                    },
                },
                indent=2,
            )
        )
        return
    console.print(
        f"CA: {certs.ca_cert} (give it to every node and analyst: --root-certificates), "
        f"key {certs.ca_key} (0600; keep it offline), valid {CA_DAYS} days",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"coordinator: {certs.server_cert} and {certs.server_key} (0600) for "
        f"{', '.join(hosts)}, valid {SERVER_DAYS} days; `coordinator start --certs {out}`",
        highlight=False,
        soft_wrap=True,
    )
    for dept, files in nodes.items():
        _print_node_key(files, dept)


def _node_paths(out: Path, department: str) -> tuple[Path, Path]:
    files = NodeKeyFiles.in_folder(out, department)
    return files.private, files.public


@app.command("node-key")
@handle_errors
def node_key(
    out: Annotated[Path, typer.Option(help="Folder for the key pair.")],
    department: Annotated[str, typer.Option(help="The department the node serves.")],
    force: Annotated[bool, typer.Option(help="Replace a key pair that exists.")] = False,
) -> None:
    """Make the key pair a department's SuperNode authenticates with (ECDSA P-384, OpenSSH)."""
    files = make_node_key(out, department, force=force)
    console.print("SuperNode key made:")
    _print_node_key(files, department)


@app.command("issue")
@handle_errors
def issue(
    role: Annotated[str, typer.Option(help=f"What the person may do: {', '.join(ROLES)}.")],
    name: Annotated[
        str, typer.Option(help="Who they are, e.g. r.ahmed (A-Z, a-z, 0-9, '.', '_', '-').")
    ],
    ca_dir: Annotated[
        Path, typer.Option(help="The folder `certs init --out` wrote (needs its ca.key).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the certificate and its key.")],
    days: Annotated[
        int, typer.Option(help=f"Days the certificate is valid (1-{MAX_CLIENT_DAYS}).")
    ] = CLIENT_DAYS,
    force: Annotated[bool, typer.Option(help="Replace a certificate that exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files as JSON.")] = False,
) -> None:
    """Make a person's client certificate for the coordinator's API, signed by the CA."""
    files = issue_client_cert(ca_dir, out, role=role, name=name, days=days, force=force)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "role": role,
                    "name": name,
                    "days": days,
                    "cert": str(files.cert),
                    "key": str(files.key),
                    "ca_cert": str(files.ca),
                },
                indent=2,
            )
        )
        return
    console.print(
        f"client certificate for {role} {name}: {files.cert} and its key {files.key} (0600), "
        f"valid {days} days",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"give {name} {files.cert.name}, {files.key.name} and the CA certificate {files.ca} "
        "over a channel you trust, then delete the .key here: from then on the key never "
        "leaves their machine",
        highlight=False,
        soft_wrap=True,
    )
