"""`silobridge officer ...`: the officer's key; signed approvals of columns and of app versions."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from clients.policy.approval_check import signature_fault
from silobridge.cli.errors import EXIT_USER_ERROR, console, err_console, handle_errors
from silobridge.cli.officer_app_cmd import approve_app, list_apps
from silobridge.officer_keys import (
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_approval,
    write_signed_approval,
)
from vocab.approval import Approval, format_time, load_signed_approval
from vocab.errors import ConfigError
from vocab.jobspec import RiskJobSpec, load_job_spec

__all__ = ["app"]

app = typer.Typer(
    help="Privacy officer: a signing key; signed approvals of columns and of app versions.",
    no_args_is_help=True,
)

_MAX_DAYS = 3650
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _expiry(now: datetime, days: int | None, expires: str | None) -> datetime:
    if days is not None and expires is None:
        if not 1 <= days <= _MAX_DAYS:
            raise ConfigError(f"--days must be in [1, {_MAX_DAYS}], got {days}", "e.g. --days 90")
        return now + timedelta(days=days)
    if expires is None or days is not None:
        raise ConfigError(
            "give exactly one of --days and --expires",
            "e.g. --days 90, or --expires 2027-01-01 (UTC)",
        )
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        raise ConfigError(
            f"--expires {expires!r} is not a date or an ISO 8601 time",
            "write it like 2027-01-01 or 2027-01-01T12:00:00Z (UTC)",
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment <= now:
        raise ConfigError(
            f"--expires {format_time(moment)} is not in the future", "give a later date"
        )
    return moment


def _columns(text: str | None, spec: RiskJobSpec) -> list[str]:
    if text is None:
        return list(spec.columns)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--columns names no column", "e.g. --columns annual_inc,zip3")
    if len(set(names)) != len(names):
        raise ConfigError(f"--columns names a column twice: {text!r}", "name each column once")
    outside = [name for name in names if name not in spec.columns]
    if outside:
        raise ConfigError(
            f"--columns names column(s) the job spec does not use: {', '.join(outside)}",
            f"name some of the spec's columns ({', '.join(spec.columns)}), or leave "
            "--columns out to approve all of them",
        )
    return names


def _app_hash(text: str) -> str:
    value = text.strip().lower()
    if not _HASH_RE.fullmatch(value):
        raise ConfigError(
            f"--app-hash must be 64 hex digits (a SHA-256), got {text!r}",
            "use the hash `silobridge app hash <released checkout>` prints",
        )
    return value


def _max_epsilon(value: float | None, spec: RiskJobSpec) -> float:
    if value is None:
        return float(spec.epsilon)
    if not value >= spec.epsilon:  # also refuses NaN
        raise ConfigError(
            f"--max-epsilon {value!r} is below the spec's own epsilon {spec.epsilon!r}, so "
            "no run of it could ever use the approval",
            f"give at least {spec.epsilon!r} (one run), or a multiple to allow re-runs",
        )
    return value


def _describe(approval: Approval) -> list[tuple[str, str]]:
    return [
        ("department", approval.department),
        ("dataset", approval.dataset),
        ("job", approval.job),
        ("purpose", approval.purpose),
        ("analyst", approval.analyst),
        ("spec", approval.spec_fingerprint),
        ("app", approval.app_hash),
        ("columns", ", ".join(sorted(approval.columns))),
        ("max epsilon", f"{approval.max_epsilon!r} (total over every job that uses it)"),
        ("valid from", format_time(approval.issued_at)),
        ("expires at", format_time(approval.expires_at)),
        ("key id", approval.key_id),
        ("digest", approval.digest()),
    ]


def _print_fields(approval: Approval) -> None:
    for label, value in _describe(approval):
        console.print(f"  {label:<12} {escape(value)}", highlight=False, soft_wrap=True)


def _validity(approval: Approval, now: datetime) -> str:
    if now < approval.issued_at:
        return f"not valid before {format_time(approval.issued_at)}"
    if now >= approval.expires_at:
        return f"expired at {format_time(approval.expires_at)}"
    return "valid now"


@app.command("keygen")
@handle_errors
def keygen(
    out: Annotated[Path, typer.Option(help="Folder for NAME.key and NAME.pub.")],
    name: Annotated[str, typer.Option(help="Base name of the two files.")] = "officer",
) -> None:
    """Create the officer's ed25519 key pair; an existing key is never overwritten."""
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"--name {name!r} is not a plain file name", "e.g. --name officer")
    files = generate_key_pair(out, name)
    console.print(f"officer key id [bold]{files.key_id}[/]", highlight=False)
    console.print(
        f"  private key {escape(str(files.private_key))} (mode 0600): keep it with the "
        "officer, never on a node",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  public key  {escape(str(files.public_key))}: copy it to each node of the "
        f'department; node config: \\[officer] public_key = "{escape(files.public_key.name)}"',
        highlight=False,
        soft_wrap=True,
    )


@app.command("approve")
@handle_errors
def approve(
    key: Annotated[Path, typer.Option(help="The officer's private key (officer.key).")],
    spec: Annotated[
        Path, typer.Option(help="The job spec (TOML) approved: exactly this spec, nothing else.")
    ],
    app_hash: Annotated[
        str, typer.Option(help="The app bundle's SHA-256, as `silobridge app hash` prints it.")
    ],
    department: Annotated[str, typer.Option(help="The department, as its node config names it.")],
    dataset: Annotated[str, typer.Option(help="The dataset, as the node config names it.")],
    out: Annotated[
        Path, typer.Option(help="The approval file to write (NAME.json, into the node's folder).")
    ],
    max_epsilon: Annotated[
        float | None,
        typer.Option(
            help="Total epsilon of every run under this approval; default: the spec's own "
            "epsilon (one run)."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Approve only these of the spec's columns (comma-separated)."),
    ] = None,
    days: Annotated[int | None, typer.Option(help="Valid for this many days from now.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Valid until this UTC date or time (e.g. 2027-01-01).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the approval as JSON.")] = False,
) -> None:
    """Sign an approval: exactly the job SPEC, run by app APP_HASH for the spec's analyst,
    may use its columns of DEPARTMENT's DATASET, up to MAX_EPSILON in total."""
    job = load_job_spec(spec)
    if not job.analyst:
        raise ConfigError(
            f"{spec} names no analyst; an approval is for one analyst",
            'add `analyst = "..."` to the spec\'s [job] table and have it submitted as such',
        )
    if out.suffix != ".json":
        raise ConfigError(
            f"--out {out} does not end in .json; nodes read only *.json approval files",
            f"e.g. --out approvals/{job.name}.json",
        )
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = _expiry(now, days, expires)
    signed = sign_approval(
        load_private_key(key),
        department=department,
        dataset=dataset,
        spec=job,
        app_hash=_app_hash(app_hash),
        columns=_columns(columns, job),
        max_epsilon=_max_epsilon(max_epsilon, job),
        issued_at=now,
        expires_at=expires_at,
    )
    write_signed_approval(signed, out)
    approval = signed.approval
    if as_json:
        typer.echo(json.dumps({"file": str(out), "digest": approval.digest(),
                               **approval.to_json_dict()}))  # fmt: skip
        return
    console.print(f"signed approval → {escape(str(out))}", highlight=False, soft_wrap=True)
    _print_fields(approval)
    console.print(
        "it approves this exact spec, app and analyst only: any change to the spec (a "
        "feature, a bound, the model, the rounds, epsilon...) or another app version needs a "
        "new approval. Put it in the node's approvals folder (\\[officer] approvals in the "
        "node config); the node reads the folder for every job, no restart needed",
        highlight=False,
        soft_wrap=True,
    )


@app.command("inspect")
@handle_errors
def inspect(
    file: Annotated[Path, typer.Argument(help="An approval file.")],
    public_key: Annotated[
        Path | None, typer.Option(help="Check the signature against this officer.pub.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show an approval and whether it verifies; exit non-zero if its signature fails."""
    signed = load_signed_approval(file)
    approval = signed.approval
    now = datetime.now(UTC)
    fault = None
    key_id = None
    if public_key is not None:
        officer = load_public_key(public_key)
        key_id = officer.key_id
        fault = signature_fault(signed, officer)
    if as_json:
        result: dict[str, Any] = {
            "file": str(file),
            "digest": approval.digest(),
            **approval.to_json_dict(),
            "validity": _validity(approval, now),
            "verified": None if public_key is None else fault is None,
        }
        if fault is not None:
            result["signature_problem"] = fault
        typer.echo(json.dumps(result))
    else:
        console.print(f"approval {escape(str(file))}", highlight=False, soft_wrap=True)
        _print_fields(approval)
        console.print(f"  {'status':<12} {_validity(approval, now)}", highlight=False)
        if public_key is None:
            console.print(
                f"  {'signature':<12} not checked (pass --public-key officer.pub)",
                highlight=False,
            )
        elif fault is None:
            console.print(
                f"  {'signature':<12} [green]verified[/] under key {key_id}", highlight=False
            )
    if fault is not None:
        err_console.print(
            f"[bold red]signature FAILS:[/] {escape(fault)}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_USER_ERROR)


app.command("approve-app")(approve_app)
app.command("apps")(list_apps)
