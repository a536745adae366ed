"""The analyst's and privacy officer's commands over the coordinator service's API.

`job submit|watch|list|status|cancel|result`, `budget central show|set`, `audit coordinator
show|export|verify` and `whoami` talk only to the service (`silobridge.service_client`),
never to Flower or the coordinator's files. `silobridge.cli.main` registers them in their
groups. Each takes where the service is and the caller's TLS files from a client config
(`--client-config FILE`, else $SILOBRIDGE_CLIENT_CONFIG, else
~/.config/silobridge/client.toml) and/or the flags `--service --cert --key --ca`, which
override the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from silobridge.cli.errors import (
    EXIT_JOB_FAILED,
    EXIT_USER_ERROR,
    console,
    err_console,
    handle_errors,
)
from silobridge.cli.progress_view import LiveProgress, print_quote
from silobridge.cli.result_view import print_preview, print_result
from silobridge.service_client import (
    CapKind,
    CapStandingView,
    ClientConfig,
    JobState,
    JobView,
    ServiceClient,
    ServiceConflict,
    merge_client_config,
)
from vocab.bundle import RESULT_FILE
from vocab.errors import ConfigError
from vocab.jobs.loader import load_spec
from vocab.progress import FINAL_KINDS, JobEnd, ProgressEvent, QuoteResult

__all__ = [
    "CLIENT_CONFIG_ENV",
    "audit_app",
    "central_app",
    "default_client_config",
    "register_job_commands",
    "resolve_client_config",
    "whoami",
]

CLIENT_CONFIG_ENV = "SILOBRIDGE_CLIENT_CONFIG"

central_app = typer.Typer(
    help="The coordinator's central caps, over the coordinator service's API (officers).",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The coordinator's audit log, over the coordinator service's API (officers).",
    no_args_is_help=True,
)

ClientConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--client-config",
        metavar="FILE",
        envvar=CLIENT_CONFIG_ENV,
        show_envvar=True,
        help="Client config TOML (\\[client] address, cert, key, ca); default: "
        "~/.config/silobridge/client.toml.",
    ),
]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service", metavar="HOST:PORT", help="The coordinator service (overrides the file)."
    ),
]
CertOption = Annotated[
    Path | None, typer.Option("--cert", help="Your client certificate (overrides the file).")
]
KeyOption = Annotated[
    Path | None, typer.Option("--key", help="Its private key (overrides the file).")
]
CaOption = Annotated[
    Path | None, typer.Option("--ca", help="The deployment CA's certificate (overrides the file).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class StateChoice(enum.Enum):
    """The job states `job list --state` filters on."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# --- connecting ----------------------------------------------------------------------------


def default_client_config() -> Path:
    """Where the client config is when neither --client-config nor the variable names one."""
    return Path.home() / ".config" / "silobridge" / "client.toml"


def resolve_client_config(
    path: Path | None, service: str | None, cert: Path | None, key: Path | None,
    ca: Path | None,
) -> ClientConfig:  # fmt: skip
    """The file (named, or the default one if it exists) with the flags over it.

    Raises:
        ConfigError: A named file is missing or invalid, or a value is given nowhere.
    """
    flags = {"--service": service, "--cert": cert, "--key": key, "--ca": ca}
    if path is None and any(v is None for v in flags.values()):
        default = default_client_config()
        if default.is_file():
            path = default
        else:
            missing = ", ".join(k for k, v in flags.items() if v is None)
            raise ConfigError(
                f"no client config for the coordinator service: {default} does not exist, "
                f"and {missing} not given",
                f"write {default} with [client] address, cert, key and ca (the files "
                f"`silobridge certs issue` made for you), name one with --client-config or "
                f"${CLIENT_CONFIG_ENV}, or pass --service, --cert, --key and --ca",
            )
    return merge_client_config(path, address=service, cert=cert, key=key, ca=ca)


def _connect(
    path: Path | None, service: str | None, cert: Path | None, key: Path | None,
    ca: Path | None,
) -> ServiceClient:  # fmt: skip
    return ServiceClient(resolve_client_config(path, service, cert, key, ca))


# --- output ----------------------------------------------------------------------------------


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _when(ts: float) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "")


def _eps(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _state(job: JobView) -> str:
    colour = {JobState.SUCCEEDED: "green", JobState.FAILED: "red", JobState.CANCELLED: "yellow"}
    shown = job.state.value + (" (cancel requested)" if job.cancel_requested and not
                               job.state.final else "")  # fmt: skip
    return f"[{colour[job.state]}]{shown}[/]" if job.state in colour else shown


def _print_job(job: JobView) -> None:
    rows = (
        ("job", job.job_id), ("kind", f"{job.kind} ({job.mode})"), ("name", job.name),
        ("analyst", job.analyst), ("project", job.project),
        ("created (UTC)", _when(job.created_at)), ("updated (UTC)", _when(job.updated_at)),
        ("attempts", str(job.attempts)), ("events", str(job.last_seq)),
    )  # fmt: skip
    for label, value in rows:
        console.print(f"{label:>14}: {escape(value)}", highlight=False)
    console.print(f"{'state':>14}: {_state(job)}", highlight=False)
    if job.failure:
        console.print(f"{'failure':>14}: {escape(job.failure)}", highlight=False, soft_wrap=True)


def _print_bundle(folder: Path, files: list[Path]) -> None:
    result = folder / RESULT_FILE
    if result.is_file():
        print_result(console, result)
    names = ", ".join(p.name for p in files)
    console.print(f"result bundle: [bold]{escape(str(folder))}[/] ({escape(names)})")


def _print_quote(quote: QuoteResult) -> None:
    print_quote(console, quote)
    print_preview(console, quote)


def _exit_code(job: JobView) -> int:
    return 0 if job.state is JobState.SUCCEEDED else EXIT_JOB_FAILED


def _results_dir(out: Path | None, job_id: str) -> Path:
    return out if out is not None else Path("results") / job_id


# --- job ---------------------------------------------------------------------------------


def _follow(client: ServiceClient, job: JobView, out: Path | None, as_json: bool) -> int:
    """Watch a submitted job to its end, then fetch and print its result (or quote)."""
    final: ProgressEvent | None = None
    with LiveProgress(console) as view:
        for _, event, kind in client.watch(job.job_id):
            if event is None:
                continue
            if not as_json:
                view(event)
            if kind in FINAL_KINDS:
                final = event
    job = client.get(job.job_id)
    if job.mode == "quote":
        return _quote_outcome(job, final, as_json)
    folder = _results_dir(out, job.job_id)
    files: list[Path] = []
    if isinstance(final, JobEnd):
        try:
            files = client.fetch_result(job.job_id, folder)
        except ServiceConflict:
            if job.state is JobState.SUCCEEDED:
                raise
            # A failed run may have left no bundle; its failure is reported below.
    if as_json:
        _echo_json({"job": job.to_json(), "files": [str(p) for p in files]})
        return _exit_code(job)
    if files:
        _print_bundle(folder, files)
    if job.state is not JobState.SUCCEEDED:
        err_console.print(
            f"[red]job {escape(job.job_id)} {job.state.value}[/]: {escape(job.failure or '-')}",
            highlight=False,
            soft_wrap=True,
        )
    return _exit_code(job)


def _quote_outcome(job: JobView, final: ProgressEvent | None, as_json: bool) -> int:
    quote = final if isinstance(final, QuoteResult) else None
    if as_json:
        _echo_json({"job": job.to_json(), "quote": quote.to_fields() if quote else None})
    elif quote is not None:
        _print_quote(quote)
    if quote is None:
        err_console.print(
            f"[red]quote {escape(job.job_id)} {job.state.value}[/]: "
            f"{escape(job.failure or 'no quote came back')}",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_JOB_FAILED
    if not quote.ok:
        err_console.print(f"[red]the job would not run[/]: {escape(quote.reason)}")
        return EXIT_JOB_FAILED
    return 0


@handle_errors
def submit(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Job spec TOML.")],
    project: Annotated[
        str, typer.Option(help="The project to charge (default: your only one).")
    ] = "",
    quote: Annotated[
        bool, typer.Option("--quote", help="Queue a dry run: each node's cost; nothing charged.")
    ] = False,
    no_watch: Annotated[
        bool, typer.Option("--no-watch", help="Print the job id and return at once.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the result bundle (default: ./results/JOB_ID)."),
    ] = None,
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Submit a job to the coordinator service, watch it, and fetch its result.

    The job is charged to the analyst your certificate names and to a project the service
    grants you, whatever the spec says. Exits non-zero if the job fails (or, with --quote,
    would not run). With --json, prints one JSON document at the end.
    """
    spec = load_spec(spec_path)
    with _connect(client_config, service, cert, key, ca) as client:
        job = client.submit(spec, project, quote=quote)
        if not as_json:
            console.print(
                f"{'quote' if quote else 'job'} [bold]{escape(job.job_id)}[/] queued: "
                f"{escape(job.kind)} {escape(job.name)}, analyst {escape(job.analyst)}, "
                f"project {escape(job.project)}",
                highlight=False,
            )
        if no_watch:
            if as_json:
                _echo_json({"job": job.to_json()})
            else:
                console.print(f"watch it with `silobridge job watch {escape(job.job_id)}`")
            return
        code = _follow(client, job, out, as_json)
    raise typer.Exit(code)


@handle_errors
def watch(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID")],
    after: Annotated[int, typer.Option(min=0, help="Only events after this seq.")] = 0,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='One JSON object per event: {"seq", "kind", "event"}.'),
    ] = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Follow a job's progress until it ends (survives a restart of the service).

    Exits 0 if the job succeeded, non-zero if it failed or was cancelled.
    """
    with _connect(client_config, service, cert, key, ca) as client:
        with LiveProgress(console) if not as_json else contextlib.nullcontext() as view:
            for seq, event, kind in client.watch(job_id, after):
                if view is None:
                    fields = event.to_fields() if event is not None else None
                    line = {"seq": seq, "kind": kind, "event": fields}
                    typer.echo(json.dumps(line, sort_keys=True, default=str))
                    continue
                if event is not None:
                    view(event)
                if isinstance(event, QuoteResult):
                    _print_quote(event)
        job = client.get(job_id)
    if not as_json:
        console.print(f"job {escape(job.job_id)}: {_state(job)}", highlight=False)
        if job.failure:
            console.print(f"  {escape(job.failure)}", highlight=False, soft_wrap=True)
        if job.state is JobState.SUCCEEDED and job.mode == "run":
            console.print(
                f"fetch its result with `silobridge job result {escape(job.job_id)} --out DIR`"
            )
    raise typer.Exit(_exit_code(job))


@handle_errors
def list_jobs(
    state: Annotated[
        list[StateChoice] | None, typer.Option("--state", help="Only jobs in this state (repeat).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many jobs.")] = 50,
    analyst: Annotated[
        str, typer.Option(help="Officers: only this analyst's jobs (analysts see their own).")
    ] = "",
    before: Annotated[
        str, typer.Option(metavar="JOB_ID", help="Page on: jobs created before this one.")
    ] = "",
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Jobs, newest first: an analyst's own; every analyst's for an officer."""
    states = [JobState(s.value) for s in state or ()]
    with _connect(client_config, service, cert, key, ca) as client:
        page = client.list_jobs(states=states, limit=limit, analyst=analyst, before_id=before)
    if as_json:
        _echo_json(
            {"jobs": [j.to_json() for j in page.jobs], "next_before_id": page.next_before_id}
        )
        return
    table = Table(title="jobs")
    for col in ("job", "kind", "name", "analyst", "project", "mode", "state", "created (UTC)"):
        table.add_column(col)
    for j in page.jobs:
        table.add_row(
            escape(j.job_id), escape(j.kind), escape(j.name), escape(j.analyst),
            escape(j.project), j.mode, _state(j), _when(j.created_at),
        )  # fmt: skip
    console.print(table)
    if not page.jobs:
        console.print("no jobs")
    if page.next_before_id:
        console.print(f"more: `silobridge job list --before {escape(page.next_before_id)}`")


@handle_errors
def status(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID")],
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """A job's state, attempts and failure."""
    with _connect(client_config, service, cert, key, ca) as client:
        job = client.get(job_id)
    if as_json:
        _echo_json(job.to_json())
    else:
        _print_job(job)


@handle_errors
def cancel(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID")],
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Cancel one of your jobs.

    A queued job never runs; a running one stops as soon as it can (what it already
    released stays charged).
    """
    with _connect(client_config, service, cert, key, ca) as client:
        job = client.cancel(job_id)
    if as_json:
        _echo_json(job.to_json())
        return
    console.print(f"cancel requested for job {escape(job.job_id)}: {_state(job)}", highlight=False)


@handle_errors
def result(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the result bundle (default: ./results/JOB_ID)."),
    ] = None,
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Download an ended job's result bundle and print it."""
    folder = _results_dir(out, job_id)
    with _connect(client_config, service, cert, key, ca) as client:
        files = client.fetch_result(job_id, folder)
    if as_json:
        _echo_json({"job_id": job_id, "files": [str(p) for p in files]})
        return
    _print_bundle(folder, files)


def register_job_commands(app: typer.Typer) -> None:
    """Add the service's job commands to the `job` group (next to `run` and `quote`)."""
    app.command("submit")(submit)
    app.command("watch")(watch)
    app.command("list")(list_jobs)
    app.command("status")(status)
    app.command("cancel")(cancel)
    app.command("result")(result)
    app.command("schema")(schema)
    app.command("init")(init_spec)


# --- budget central ------------------------------------------------------------------------


def _print_caps(standings: list[CapStandingView]) -> None:
    table = Table(title="central caps (coordinator service)")
    for col in ("kind", "name", "cap ε", "spent ε (reserved + settled)", "remaining ε"):
        table.add_column(col)
    for s in standings:
        spent = f"{s.spent:.4f} ({s.reserved:.4f} + {s.settled:.4f})"
        table.add_row(s.kind.value, escape(s.key), _eps(s.cap), spent, _eps(s.remaining))
    console.print(table)
    if not standings:
        console.print("no caps set and no jobs charged yet")


@central_app.command("show")
@handle_errors
def central_show(
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Every central cap with the epsilon spent against it and what remains."""
    with _connect(client_config, service, cert, key, ca) as client:
        standings = client.caps()
    if as_json:
        _echo_json({"standings": [s.to_json() for s in standings]})
    else:
        _print_caps(standings)


@central_app.command("set")
@handle_errors
def central_set(
    kind: Annotated[CapKind, typer.Option("--kind", help="Cap an analyst's or a project's jobs.")],
    key: Annotated[str, typer.Option("--key", help="The analyst's or project's name.")],
    epsilon: Annotated[float, typer.Option(help="The cap (epsilon per department dataset).")],
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", "--client-key", help="Your client key.")
    ] = None,
    ca: CaOption = None,
) -> None:
    """Set an analyst's or a project's central cap (recorded in the coordinator's audit log).

    The client key is --tls-key here, as --key names the capped analyst or project.
    """
    with _connect(client_config, service, cert, tls_key, ca) as client:
        standings = client.set_cap(kind, key, epsilon)
    if as_json:
        _echo_json({"standings": [s.to_json() for s in standings]})
        return
    standing = next((s for s in standings if (s.kind, s.key) == (kind, key)), None)
    tail = (
        f" (spent {standing.spent:.4f}, remaining {_eps(standing.remaining)})" if standing else ""
    )
    console.print(
        f"central cap of {kind.value} {escape(key)} set to {epsilon:.4f}{tail}", highlight=False
    )


# --- audit coordinator ---------------------------------------------------------------------


def _shown(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@audit_app.command("show")
@handle_errors
def audit_show(
    after: Annotated[int, typer.Option(min=0, help="Only entries after this seq.")] = 0,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Print the coordinator's audit entries, oldest first."""
    with _connect(client_config, service, cert, key, ca) as client:
        entries = client.audit_entries(after, limit)
    if as_json:
        for entry in entries:
            typer.echo(entry.to_json())
        return
    table = Table(title="coordinator audit log (coordinator service)")
    for col in ("seq", "time (UTC)", "event", "details"):
        table.add_column(col)
    for e in entries:
        details = _shown(", ".join(f"{k}={v}" for k, v in e.data.items()))
        table.add_row(str(e.seq), escape(_shown(e.ts)), escape(_shown(e.kind)), escape(details))
    console.print(table)


@audit_app.command("export")
@handle_errors
def audit_export(
    out: Annotated[Path, typer.Argument(metavar="FILE", help="The JSON Lines file to write.")],
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Write every entry, exactly as the chain holds it, one per line, to FILE.

    The service verifies its log too; a log that does not verify is still written, and
    the command exits non-zero.
    """
    with _connect(client_config, service, cert, key, ca) as client:
        lines = client.audit_lines()
        check = client.verify_audit()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
        os.replace(tmp, out)
    except OSError as err:
        raise ConfigError(f"cannot write {out}: {err.strerror}", "check the path") from None
    if not check.ok:
        err_console.print(
            f"[red]the coordinator's audit log does not verify[/]: {escape(check.problem)}; "
            f"exported {len(lines)} entries to {escape(str(out))} anyway",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_USER_ERROR)
    console.print(
        f"exported {len(lines)} entries of the coordinator's audit log to {escape(str(out))} "
        f"(the service verified {check.entries}, head {escape(check.head[:16])}…)",
        highlight=False,
        soft_wrap=True,
    )


@audit_app.command("verify")
@handle_errors
def audit_verify(
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Have the service verify its audit log's hash chain and signatures.

    Exits non-zero if the log is broken.
    """
    with _connect(client_config, service, cert, key, ca) as client:
        check = client.verify_audit()
    if as_json:
        data = {"ok": check.ok, "entries": check.entries, "head": check.head}
        _echo_json({**data, "problem": check.problem})
    elif check.ok:
        console.print(
            f"coordinator audit log ok: {check.entries} entries, head {escape(check.head)}",
            highlight=False,
        )
    else:
        err_console.print(
            f"[red]coordinator audit log BROKEN[/]: {escape(check.problem)}", soft_wrap=True
        )
    if not check.ok:
        raise typer.Exit(EXIT_USER_ERROR)


# --- schema ---------------------------------------------------------------------------------


@handle_errors
def schema(
    dataset: Annotated[
        str, typer.Option(help="Only departments holding this dataset (default: all).")
    ] = "",
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """The columns the connected departments offer: names, types and classes of their open
    and conditional columns, as their officers declared them (no restricted column, no
    value). Conditional columns need the officer's approval for the job."""
    with _connect(client_config, service, cert, key, ca) as client:
        answers = client.describe_columns(dataset)
    if as_json:
        _echo_json({"departments": [dataclasses.asdict(a) for a in answers]})
        return
    answered = [a for a in answers if a.status == "ok"]
    offered: dict[tuple[str, str], dict[str, str]] = {}
    for a in answered:
        for name, kind, klass in a.columns:
            offered.setdefault((name, kind), {})[a.department] = klass
    table = Table(title="columns the departments offer")
    for col in ("column", "type", "offered by (class)"):
        table.add_column(col)
    for (name, kind), by in sorted(offered.items()):
        where = ", ".join(f"{d} ({c})" if c != "open" else d for d, c in sorted(by.items()))
        table.add_row(escape(name), kind, escape(where))
    console.print(table)
    everywhere = [n for (n, _), by in sorted(offered.items()) if len(by) == len(answered)]
    console.print(
        f"offered by all {len(answered)} answering department(s): "
        f"{escape(', '.join(everywhere)) or 'none'}",
        highlight=False,
    )
    for a in answers:
        if a.status != "ok":
            console.print(
                f"  {escape(a.department)}: {a.status} ({escape(a.code)}) {escape(a.reason)}",
                highlight=False,
                soft_wrap=True,
            )


@handle_errors
def init_spec(
    target: Annotated[str, typer.Option(help="The target column (offered by every department).")],
    out: Annotated[Path, typer.Option(help="Where to write the draft (never overwritten).")] = Path(
        "spec.toml"
    ),
    name: Annotated[str, typer.Option(help="The job's name.")] = "draft",
    dataset: Annotated[
        str, typer.Option(help="Only departments holding this dataset (default: all).")
    ] = "",
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Draft a risk-model spec from the columns every department offers (`job schema`):
    each a commented feature whose bounds or levels you declare."""
    from silobridge.spec_draft import draft_spec

    with _connect(client_config, service, cert, key, ca) as client:
        answers = client.describe_columns(dataset)
    path, names = draft_spec(answers, target=target, name=name, out=out)
    console.print(
        f"wrote [bold]{escape(str(path))}[/]: target {escape(target)}, "
        f"{len(names) - 1} candidate feature(s), commented out",
        highlight=False,
    )
    console.print(
        "next: uncomment the features to use, declare their bounds or levels, set positive "
        "and purpose; then `silobridge job submit SPEC --quote`",
        highlight=False,
    )


# --- nodes ---------------------------------------------------------------------------------------


@handle_errors
def list_nodes(
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Registered departments (operators): key, last reply, app versions their node ran
    jobs in and refused as unapproved."""
    with _connect(client_config, service, cert, key, ca) as client:
        nodes = client.nodes()
    if as_json:
        _echo_json({"nodes": [dataclasses.asdict(n) for n in nodes]})
        return
    table = Table(title="registered departments")
    for col in ("department", "node key", "status", "last reply (UTC)", "apps run", "apps refused"):
        table.add_column(col)
    for n in nodes:
        table.add_row(
            escape(n.department), escape(n.key_fingerprint), n.status,
            _when(n.last_seen) if n.last_seen else "-",
            "\n".join(a[:16] for a in n.approved_apps) or "-",
            "\n".join(a[:16] for a in n.refused_apps) or "-",
        )  # fmt: skip
    console.print(table)
    if not nodes:
        console.print("no department is registered (`silobridge node register`)")


# --- whoami ------------------------------------------------------------------------------------


@handle_errors
def whoami(
    as_json: JsonOption = False,
    client_config: ClientConfigOption = None,
    service: ServiceOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    ca: CaOption = None,
) -> None:
    """Who the coordinator service takes you for: your name, role and projects."""
    with _connect(client_config, service, cert, key, ca) as client:
        me = client.whoami()
    if as_json:
        _echo_json({"name": me.name, "role": me.role, "projects": list(me.projects),
                    "service": client.config.address})  # fmt: skip
        return
    projects = f"; projects: {', '.join(me.projects)}" if me.projects else ""
    console.print(
        f"{escape(me.name)} ({me.role}) at {escape(client.config.address)}{escape(projects)}",
        highlight=False,
    )
