"""`silobridge audit ...`: read, verify, export and cross-check signed, hash-chained audit
logs.

Each command reads one log: a node's (`--node-config PATH`) or the coordinator's
(`--coordinator-home DIR`); `crosscheck` reads both. A log is verified against its
signer's public key: one given (`--public-key PEM`, as the other side registered it), or
else the one derived from the signer's own key file beside the log - the output says which.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from clients.ledger.node_audit import audit_path_for
from clients.node_config import load_node_config
from clients.node_identity import node_key_path
from server.home.coordinator_home import CoordinatorHome
from silobridge.audit_crosscheck import CrosscheckReport, crosscheck_files, ledger_mismatches
from silobridge.cli.errors import EXIT_USER_ERROR, console, err_console, handle_errors
from silobridge.node_budget import open_node_ledger
from vocab.audit_chain import AuditEntry, ChainHead, VerifyResult, verify_chain
from vocab.audit_log import read_entries, read_lines
from vocab.errors import ConfigError, DataError, InternalError
from vocab.identity_key import PublicIdentity, load_or_create_identity, public_identity_from_pem

__all__ = ["ExportFormat", "app"]

app = typer.Typer(help="Read, verify and export audit logs.", no_args_is_help=True)

NodeConfigOption = Annotated[Path | None, typer.Option(help="A node config: that node's log.")]
CoordinatorHomeOption = Annotated[
    Path | None,
    typer.Option(help="The coordinator's home folder (its --state-dir): the coordinator's log."),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        help="The signer's ed25519 public key (PEM) to verify with; default: derived from the "
        "signer's own key file beside the log."
    ),
]

_ENTRY_FIELDS = ("seq", "ts", "kind", "data", "prev", "hash", "sig", "key")


class ExportFormat(enum.Enum):
    """File formats of `audit export`."""

    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True)
class _Log:
    path: Path
    source: str  # who wrote it, for people: "node tax" or "coordinator"
    department: str | None  # the node's department; None for the coordinator
    key_path: Path  # the signer's private key file, whose public half verifies by default


@dataclass(frozen=True)
class _Key:
    identity: PublicIdentity
    source: str  # where it came from, for people


def _log(node_config: Path | None, coordinator_home: Path | None) -> _Log:
    if node_config is not None and coordinator_home is None:
        cfg = load_node_config(node_config)
        return _Log(
            audit_path_for(cfg.ledger_path), f"node {cfg.department}", cfg.department,
            node_key_path(cfg.ledger_path),
        )  # fmt: skip
    if coordinator_home is not None and node_config is None:
        home = CoordinatorHome.existing(coordinator_home)
        return _Log(home.audit_path, "coordinator", None, home.identity_path)
    raise ConfigError(
        "give exactly one of --node-config and --coordinator-home",
        "--node-config PATH for a node's log, --coordinator-home DIR for the coordinator's",
    )


def _given_key(pem: Path, what: str) -> _Key:
    try:
        return _Key(public_identity_from_pem(pem.read_bytes()), f"{what} {pem}")
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot read {what} {pem} as an ed25519 public key (PEM): {err}",
            "pass the public key file the signer handed over (`silobridge audit key`)",
        ) from None


def _own_key(key_path: Path, who: str) -> _Key:
    """The public half of `who`'s own key file, never made here: verifying must not mint a
    key that a forged log would then verify against."""
    hint = (
        f"pass --public-key with {who}'s public key (on its host: `silobridge audit key`), "
        "as registered with the other side"
    )
    if not key_path.is_file():
        raise ConfigError(f"no identity key of {who} at {key_path} to verify with", hint)
    try:
        key = load_or_create_identity(key_path).public
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {who}'s identity key {key_path}: {err}", hint) from None
    return _Key(key, f"{who}'s key file {key_path}")


def _verifying_key(log: _Log, public_key: Path | None) -> _Key:
    if public_key is not None:
        return _given_key(public_key, "public key")
    return _own_key(log.key_path, log.source)


def _anchor_from_result(result_path: Path, department: str) -> ChainHead | None:
    hint = "pass the result.json of a job this node took part in"
    try:
        result = json.loads(result_path.read_bytes())
        head = result["nodes"][department]["audit_head"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise ConfigError(
            f"{result_path} holds no audit head for department {department!r} "
            f"({type(err).__name__}: {err})",
            hint,
        ) from None
    if head is None:
        return None
    seq = head.get("seq") if isinstance(head, dict) else None
    digest = head.get("hash") if isinstance(head, dict) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or not isinstance(digest, str):
        raise ConfigError(
            f"{result_path}: the audit head of department {department!r} must be "
            '{"seq": <an integer >= 0>, "hash": <text>}, got '
            f"{json.dumps(head)[:200]}",
            f"{hint}, as the coordinator wrote it",
        )
    return ChainHead(seq, digest)


def _print_broken(label: str, where: str, outcome: VerifyResult) -> None:
    err_console.print(
        f"[bold red]{label}[/] {escape(where)}: first bad entry {outcome.first_bad}: "
        f"{escape(outcome.reason)}",
        soft_wrap=True,
    )


@app.command("verify")
@handle_errors
def verify(
    node_config: NodeConfigOption = None,
    coordinator_home: CoordinatorHomeOption = None,
    result: Annotated[
        Path | None,
        typer.Option(
            help="A job's result.json: the node's chain head it records must still be there "
            "(with --node-config)."
        ),
    ] = None,
    public_key: PublicKeyOption = None,
) -> None:
    """Check every link, hash and signature; exit non-zero at the first bad entry.

    With --node-config, also check every release row of the node's ledger against the
    digest its audit entries recorded.
    """
    log = _log(node_config, coordinator_home)
    if result is not None and log.department is None:
        raise ConfigError(
            "--result anchors a node's log, not the coordinator's",
            "use --node-config with --result; check the coordinator's recorded heads with "
            "`silobridge audit crosscheck`",
        )
    anchor = _anchor_from_result(result, log.department) if result and log.department else None
    key = _verifying_key(log, public_key)
    entries = read_entries(log.path)
    outcome = verify_chain(entries, key.identity, anchor)
    if not outcome.ok:
        _print_broken("audit log BROKEN", str(log.path), outcome)
        err_console.print(f"verified with key {key.identity.key_id} ({escape(key.source)})")
        raise typer.Exit(EXIT_USER_ERROR)
    checked = ""
    if node_config is not None:
        releases = _check_ledger(node_config, entries, log.path)
        checked = f", all {releases} ledger releases match" if releases else ", no ledger releases"
    anchored = f", anchored at entry {anchor.seq}" if anchor else ""
    console.print(
        f"audit log OK: {outcome.entries} entries signed by key {key.identity.key_id} "
        f"({key.source}){anchored}{checked} ({log.path})",
        soft_wrap=True,
    )


def _check_ledger(node_config: Path, entries: list[AuditEntry], log_path: Path) -> int:
    """How many release rows the node's ledger holds, each matching its audit entries;
    exits non-zero listing every one that does not (or that the log records and the
    ledger lost)."""
    # The chain cannot show its own deletion; the ledger beside it can, and the signed
    # digests show every row edited, deleted or added by hand.
    cfg, ledger = open_node_ledger(node_config)
    try:
        releases = ledger.history()
    except InternalError as err:
        problems = [f"the ledger holds a release row no silobridge wrote ({err})"]
    else:
        problems = ledger_mismatches(entries, releases, cfg.dataset)
    if not problems:
        return len(releases)
    err_console.print(
        f"[bold red]ledger and audit log DISAGREE[/] {escape(str(cfg.ledger_path))} vs "
        f"{escape(str(log_path))}: {len(problems)} problem(s)",
        soft_wrap=True,
    )
    for problem in problems:
        err_console.print(f"  {escape(problem)}", soft_wrap=True)
    raise typer.Exit(EXIT_USER_ERROR)


@app.command("show")
@handle_errors
def show(
    node_config: NodeConfigOption = None,
    coordinator_home: CoordinatorHomeOption = None,
    last: Annotated[int, typer.Option(help="How many of the latest entries.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
) -> None:
    """Print the latest audit entries."""
    if last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}", "e.g. --last 30")
    log = _log(node_config, coordinator_home)
    entries = read_entries(log.path)[-last:]
    if as_json:
        for entry in entries:
            typer.echo(entry.to_json())
        return
    title = f"audit log of {log.department}" if log.department else "coordinator audit log"
    table = Table(title=title)
    for col in ("seq", "time (UTC)", "event", "details"):
        table.add_column(col)
    for e in entries:
        details = _shown(", ".join(f"{k}={v}" for k, v in e.data.items()))
        table.add_row(str(e.seq), escape(_shown(e.ts)), escape(_shown(e.kind)), escape(details))
    console.print(table)


def _shown(text: str) -> str:
    # An edited log may hold lone surrogates (JSON `"\ud800"`), which no terminal can print.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _ENTRY_FIELDS}


def _first_unreadable(lines: list[str]) -> int:
    for number, line in enumerate(lines, start=1):
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict) or not set(_ENTRY_FIELDS) <= set(raw):
                return number
        except (ValueError, RecursionError):
            return number
    return len(lines)


def _read_for_export(
    path: Path, key: PublicIdentity
) -> tuple[list[AuditEntry], VerifyResult, list[str]]:
    """The entries and their verification; a log with unreadable lines comes back raw."""
    try:
        entries = read_entries(path)
    except DataError as err:
        lines = [x for x in read_lines(path) if x]
        return [], VerifyResult(False, len(lines), _first_unreadable(lines), err.message), lines
    return entries, verify_chain(entries, key), []


def _summary(
    log: _Log, entries: list[AuditEntry], outcome: VerifyResult, now: str, key: _Key
) -> dict[str, Any]:
    head = (
        {"seq": entries[-1].seq, "hash": entries[-1].hash, "sig": entries[-1].sig}
        if entries
        else None
    )
    return {
        "schema": "silobridge.audit-export.v2",
        "source": log.source,
        "log": str(log.path),
        "exported_at": now,
        "verified_with_key": key.identity.key_id,
        "public_key": key.identity.pem().decode("ascii"),
        "verified": outcome.ok,
        "entries": outcome.entries,
        "first_bad": outcome.first_bad,
        "reason": outcome.reason,
        "head": head,
    }


def _write_json(
    out: Path, summary: dict[str, Any], entries: list[AuditEntry], raw: list[str]
) -> None:
    doc = {"verification": summary, "entries": [_entry_dict(e) for e in entries], "raw_lines": raw}
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _write_csv(
    out: Path, summary: dict[str, Any], entries: list[AuditEntry], raw: list[str]
) -> None:
    # The verification summary leads as '#' comment lines; the entries follow as rows.
    # backslashreplace: a tampered entry may hold lone surrogates, and a broken log is
    # exactly the one investigators need written out.
    with open(out, "w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        for key, value in summary.items():
            # A dict, or text over lines (the PEM key), as JSON: one comment line each.
            multiline = isinstance(value, str) and "\n" in value
            shown = json.dumps(value) if isinstance(value, dict) or multiline else value
            fh.write(f"# {key}: {'' if shown is None else shown}\n")
        writer = csv.writer(fh)
        writer.writerow([*_ENTRY_FIELDS, "raw"])
        for e in entries:
            data = json.dumps(e.data, sort_keys=True)
            writer.writerow([e.seq, e.ts, e.kind, data, e.prev, e.hash, e.sig, e.key, ""])
        for line in raw:
            writer.writerow(["", "", "", "", "", "", "", "", line])


@app.command("export")
@handle_errors
def export(
    out: Annotated[Path, typer.Option(help="The file to write.")],
    node_config: NodeConfigOption = None,
    coordinator_home: CoordinatorHomeOption = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="File format.")] = (
        ExportFormat.JSON
    ),
    public_key: PublicKeyOption = None,
) -> None:
    """Write the entries and a verification summary to OUT, for investigators.

    A log that does not verify is still written, marked unverified, and the command
    exits non-zero.
    """
    log = _log(node_config, coordinator_home)
    key = _verifying_key(log, public_key)
    entries, outcome, raw = _read_for_export(log.path, key.identity)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary = _summary(log, entries, outcome, now, key)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        (_write_json if fmt is ExportFormat.JSON else _write_csv)(partial, summary, entries, raw)
        os.replace(partial, out)
    except OSError as err:
        raise ConfigError(f"cannot write {out}: {err.strerror}", "check the path") from err
    if not outcome.ok:
        _print_broken("audit log BROKEN", str(log.path), outcome)
        err_console.print(f"exported to {out} anyway, marked unverified", soft_wrap=True)
        raise typer.Exit(EXIT_USER_ERROR)
    console.print(
        f"exported {outcome.entries} verified entries of the {log.source} log to {out}",
        soft_wrap=True,
    )


def _node_key(
    home: CoordinatorHome, department: str, ledger_path: Path, given: Path | None
) -> _Key:
    """The key the node's log and heads are checked with: given, else registered with the
    coordinator, else the node's own key file."""
    if given is not None:
        return _given_key(given, "node public key")
    registered = home.nodes.identity_of(department)
    if registered is not None:
        return _Key(registered, f"the key registered for {department} in {home.nodes.folder}")
    return _own_key(node_key_path(ledger_path), f"node {department}")


def _coordinator_key(home: CoordinatorHome, given: Path | None) -> _Key:
    if given is not None:
        return _given_key(given, "coordinator public key")
    return _own_key(home.identity_path, "the coordinator")


@app.command("crosscheck")
@handle_errors
def crosscheck(
    coordinator_home: Annotated[
        Path, typer.Option(help="The coordinator's home folder (its --state-dir).")
    ],
    node_config: Annotated[Path, typer.Option(help="The node config whose log to check.")],
    coordinator_public_key: Annotated[
        Path | None,
        typer.Option(help="The coordinator's public key (PEM); default: from its key file."),
    ] = None,
    node_public_key: Annotated[
        Path | None,
        typer.Option(
            help="The node's public key (PEM); default: the key registered for its department "
            "at the coordinator, else the node's key file."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check both directions: every chain head the coordinator recorded from a node is in
    the node's log, and every head the node recorded from the coordinator is in its log."""
    home = CoordinatorHome.existing(coordinator_home)
    cfg = load_node_config(node_config)
    node_log = audit_path_for(cfg.ledger_path)
    coordinator_key = _coordinator_key(home, coordinator_public_key)
    node_key = _node_key(home, cfg.department, cfg.ledger_path, node_public_key)
    report = crosscheck_files(
        home.audit_path, node_log, cfg.department, coordinator_key.identity, node_key.identity
    )
    if as_json:
        doc = report.to_json()
        doc["keys"] = {
            "coordinator": {"key_id": coordinator_key.identity.key_id,
                            "source": coordinator_key.source},
            "node": {"key_id": node_key.identity.key_id, "source": node_key.source},
        }  # fmt: skip
        typer.echo(json.dumps(doc, indent=2))
    else:
        _print_crosscheck(report, (home.audit_path, coordinator_key), (node_log, node_key))
    if not report.ok:
        raise typer.Exit(EXIT_USER_ERROR)


def _print_crosscheck(
    report: CrosscheckReport, coordinator: tuple[Path, _Key], node: tuple[Path, _Key]
) -> None:
    for (path, key), chain in ((coordinator, report.coordinator_chain), (node, report.node_chain)):
        if not chain.ok:
            _print_broken("audit log BROKEN", str(path), chain)
            err_console.print(f"  checked with key {key.identity.key_id} ({escape(key.source)})")
    for m in report.mismatches:
        err_console.print(
            f"[bold red]mismatch[/] job {escape(m.job_id)} round {m.round}: "
            f"{m.recorded_by.value} entry {m.recorded_at} recorded {m.other} entry {m.seq}: "
            f"{escape(m.reason)}",
            soft_wrap=True,
        )
    if not report.ok:
        return
    dept = escape(report.department)
    keys = (
        f"(coordinator key {coordinator[1].identity.key_id} from {escape(coordinator[1].source)}; "
        f"node key {node[1].identity.key_id} from {escape(node[1].source)})"
    )
    if report.node_anchors == 0 and report.coordinator_anchors == 0:
        console.print(
            f"[yellow]nothing to compare[/]: neither log recorded a chain head of the other "
            f"for department {dept} {keys}",
            soft_wrap=True,
        )
        return
    console.print(
        f"crosscheck OK: all {report.node_anchors} chain heads the coordinator recorded from "
        f"{dept} are in its log, and all {report.coordinator_anchors} coordinator heads {dept} "
        f"recorded are in the coordinator's log {keys}",
        soft_wrap=True,
    )


@app.command("key")
@handle_errors
def key(
    node_config: NodeConfigOption = None,
    coordinator_home: CoordinatorHomeOption = None,
) -> None:
    """Print the public key that verifies this side's audit log (PEM), to hand to the other
    side's officer."""
    log = _log(node_config, coordinator_home)
    own = _own_key(log.key_path, log.source)
    err_console.print(f"key {own.identity.key_id} of the {escape(log.source)}")
    typer.echo(own.identity.pem().decode("ascii"), nl=False)
