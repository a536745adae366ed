"""`silobridge node ...`: run a department node next to its data, and enrol it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from clients.node_config import NodeConfig, load_node_config
from clients.node_identity import node_identity
from clients.policy.approval_check import load_officer_key
from clients.runtime.app_gate import approved_apps
from server.home.coordinator_home import CoordinatorHome
from silobridge.cli.errors import console, err_console, handle_errors
from silobridge.daemons import ControlRecord, check_transport
from silobridge.enrolment import enrol_node
from silobridge.flower_federation import Federation
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup, free_port
from vocab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="Run, identify and enrol a department node.", no_args_is_help=True)

_DEFAULT_CONTROL = "127.0.0.1:9093"


def _print_app_approvals(cfg: NodeConfig) -> None:
    """Which app versions this node will run: read again for every run, shown once here."""
    officer = load_officer_key(cfg)
    approved = [] if officer is None else approved_apps(cfg, officer)
    if not approved:
        err_console.print(
            "[yellow]warning[/]: no app version is approved here yet, so every run will be "
            "refused as app_not_approved until the officer runs `silobridge officer "
            "approve-app`" + ("" if officer else " (and [officer] public_key is set)"),
            soft_wrap=True,
        )
        return
    versions = ", ".join(f"{a.approval.app_hash[:16]} {a.approval.label}".strip() for a in approved)
    console.print(f"app versions approved here: {versions}", highlight=False, soft_wrap=True)


@app.command("init")
@handle_errors
def init(
    data: Annotated[
        str,
        typer.Option(help="The department's table: a .csv or .parquet file, or a database URL."),
    ],
    department: Annotated[str, typer.Option(help="This department's name (lowercase).")],
    dataset: Annotated[str, typer.Option(help="The dataset's name: its budget's ledger key.")],
    table: Annotated[
        str | None, typer.Option(help="The table, when --data is a database URL.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the draft (never overwritten).")] = Path(
        "node.toml"
    ),
) -> None:
    """Draft a node config from the department's own table: every column with its type,
    all `restricted` until the officer opens them; the budget left for the officer."""
    from silobridge.node_init import draft_node_config, summary

    draft = draft_node_config(
        data=data, table=table, department=department, dataset=dataset, out=out
    )
    console.print(f"wrote [bold]{draft.path}[/]: {summary(draft)}", highlight=False)
    candidates = [p.name for p in draft.columns if p.person_id_candidate]
    if candidates:
        console.print(
            escape(f"person-id candidates (commented in [data]): {', '.join(candidates)}"),
            highlight=False,
        )
    console.print(
        escape(
            "next: the privacy officer reviews the types, opens the columns jobs may use, "
            "sets [budget] and [data] public_rows, and adds [officer]; then `silobridge node "
            "start`"
        ),
        highlight=False,
    )


@app.command("start")
@handle_errors
def start(
    config: Annotated[Path, typer.Option(help="The node config TOML.")],
    coordinator: Annotated[str, typer.Option(help="The coordinator's Fleet API, HOST:PORT.")],
    port: Annotated[
        int | None,
        typer.Option(
            help="Local port of this node's runtime API (default: a free one, printed; "
            "several nodes on one host need no flag)."
        ),
    ] = None,
    root_certificates: Annotated[
        Path | None,
        typer.Option(help="The deployment's CA certificate (ca.pem): connect with TLS."),
    ] = None,
    auth_key: Annotated[
        Path | None,
        typer.Option(
            help="This node's SuperNode key (`silobridge certs node-key`, the private file); "
            "its .pub must be registered with the coordinator."
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Connect without TLS even to a non-loopback coordinator."),
    ] = False,
    flwr_home: Annotated[
        Path | None, typer.Option(help="Flower state folder (default: beside the config).")
    ] = None,
    warm: Annotated[
        bool,
        typer.Option(
            help="Launch ClientApps from a warm process that already imported torch "
            "(--no-warm: a fresh interpreter per message; the app check runs either way)."
        ),
    ] = True,
) -> None:
    """Start this department's node (a Flower SuperNode) and keep it running.

    Without --root-certificates it connects only to a loopback coordinator, unless
    --insecure is given.
    """
    check_transport(
        [coordinator], tls=root_certificates is not None, insecure=insecure, what="node"
    )
    for option, path in (("--root-certificates", root_certificates), ("--auth-key", auth_key)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{option}: no file at {path}", "pass an existing file")
    cfg = load_node_config(config)
    path = cfg.config_path.resolve()
    console.print(
        f"node [bold]{cfg.department}[/]: dataset {cfg.dataset!r}, budget "
        f"epsilon={cfg.budget.epsilon} delta={cfg.budget.delta}, ledger {cfg.ledger_path}"
    )
    if root_certificates is None:
        err_console.print(
            "[yellow]warning[/]: connecting without TLS: fine only when the coordinator runs "
            "on this host"
        )
    _print_app_approvals(cfg)
    if auth_key is None:
        err_console.print(
            "[yellow]note[/]: no --auth-key: a coordinator with node authentication will "
            "not let this node join"
        )
    if port is None:
        port = free_port()
    console.print(f"runtime API on 127.0.0.1:{port} (loopback; --port to choose it)")
    console.print(
        f"connecting to {coordinator} ({'TLS' if root_certificates else 'no TLS'}"
        f"{', SuperNode key ' + str(auth_key) if auth_key else ''}); Ctrl-C stops the node",
        highlight=False,
        soft_wrap=True,
    )
    group = ProcessGroup(log_dir=None)
    with group.running():
        start_node(
            group,
            config_path=path,
            department=cfg.department,
            coordinator=coordinator,
            port=port,
            flwr_home=flwr_home or path.parent / ".flwr",
            root_certificates=root_certificates.resolve() if root_certificates else None,
            auth_key=auth_key.resolve() if auth_key else None,
            warm=warm,
        )
        stopped = group.wait_any()
    raise typer.Exit(stopped.proc.returncode or 0)


@app.command("key")
@handle_errors
def key(
    config: Annotated[Path, typer.Option(help="The node config TOML.")],
    out: Annotated[
        Path | None, typer.Option(help="Also write the public key PEM to this file.")
    ] = None,
) -> None:
    """Print this node's identity public key (PEM) for `silobridge node register`.

    The private key lives beside the ledger and is made on first use; it never leaves.
    """
    cfg = load_node_config(config)
    public = node_identity(cfg.ledger_path).public
    pem = public.pem()
    if out is not None:
        out.write_bytes(pem)
    typer.echo(pem.decode("ascii"), nl=False)
    err_console.print(
        f"node {cfg.department}: identity key {public.key_id}"
        + (f", written to {out}" if out else ""),
        highlight=False,
    )


@app.command("register")
@handle_errors
def register(
    coordinator_home: Annotated[
        Path, typer.Option(help="The coordinator's home (its --state-dir).")
    ],
    department: Annotated[str, typer.Option(help="The department the node serves.")],
    flower_key: Annotated[
        Path, typer.Option(help="The node's SuperNode public key (the .pub of `certs node-key`).")
    ],
    identity_key: Annotated[
        Path, typer.Option(help="The node's identity public key PEM (`silobridge node key`).")
    ],
    control_address: Annotated[
        str | None,
        typer.Option(
            help="The SuperLink's Control API, HOST:PORT (default: what `coordinator start` "
            f"recorded in the home, else {_DEFAULT_CONTROL})."
        ),
    ] = None,
    root_certificates: Annotated[
        Path | None,
        typer.Option(help="The deployment CA (default: the one the coordinator started with)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace the department's registered identity key.")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Reach a non-loopback Control API without TLS."),
    ] = False,
) -> None:
    """Enrol a department's node: its SuperNode key with the SuperLink (only registered keys
    join) and its identity key in the coordinator home (replies are believed only when
    signed by it)."""
    home = CoordinatorHome.existing(coordinator_home)
    try:
        pem = identity_key.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the identity key {identity_key}: {err.strerror}",
            "pass the file `silobridge node key --config NODE.toml --out FILE` wrote",
        ) from None
    recorded = ControlRecord.read(home.root)
    if control_address is None and recorded is not None:
        # The coordinator's own record: its address and CA belong together.
        federation = Federation(recorded.address, root_certificates or recorded.root_certificates)
    else:
        federation = Federation(control_address or _DEFAULT_CONTROL, root_certificates)
    check_transport(
        [federation.control_address],
        tls=federation.root_certificates is not None,
        insecure=insecure,
        what="registration",
    )
    done = enrol_node(home, federation, department, flower_key, pem, replace=replace)
    flower = (
        f"SuperNode key registered (Flower node id {done.node_id})"
        if done.node_id
        else "SuperNode key was registered already"
    )
    console.print(
        f"{department}: {flower} at {federation.control_address}; identity key "
        f"{done.identity.key_id} recorded in {home.nodes.folder}",
        highlight=False,
        soft_wrap=True,
    )
