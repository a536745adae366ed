"""`silobridge audit ...`: read, verify, export and cross-check hash-chained audit logs.

Each command reads one log: a node's (`--node-config PATH`) or the coordinator's
(`--coordinator-home DIR`); `crosscheck` reads both.
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

from clients.node_audit import audit_path_for
from clients.node_config import load_node_config
from server.coordinator_home import CoordinatorHome
from silobridge.audit_crosscheck import crosscheck_files, ledger_gaps
from silobridge.cli.errors import EXIT_USER_ERROR, console, err_console, handle_errors
from silobridge.node_budget import open_node_ledger
from vocab.audit_chain import AuditEntry, ChainHead, VerifyResult, verify_chain
from vocab.audit_log import read_entries, read_lines
from vocab.errors import ConfigError, DataError

__all__ = ["ExportFormat", "app"]

app = typer.Typer(help="Read, verify and export audit logs.", no_args_is_help=True)

NodeConfigOption = Annotated[Path | None, typer.Option(help="A node config: that node's log.")]
CoordinatorHomeOption = Annotated[
    Path | None,
    typer.Option(help="The coordinator's home folder (its --state-dir): the coordinator's log."),
]

_ENTRY_FIELDS = ("seq", "ts", "kind", "data", "prev", "hash")


class ExportFormat(enum.Enum):
    """File formats of `audit export`."""

    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True)
class _Log:
    path: Path
    source: str  # who wrote it, for people: "node tax" or "coordinator"
    department: str | None  # the node's department; None for the coordinator


def _log(node_config: Path | None, coordinator_home: Path | None) -> _Log:
    if node_config is not None and coordinator_home is None:
        cfg = load_node_config(node_config)
        return _Log(audit_path_for(cfg.ledger_path), f"node {cfg.department}", cfg.department)
    if coordinator_home is not None and node_config is None:
        return _Log(CoordinatorHome.existing(coordinator_home).audit_path, "coordinator", None)
    raise ConfigError(
        "give exactly one of --node-config and --coordinator-home",
        "--node-config PATH for a node's log, --coordinator-home DIR for the coordinator's",
    )


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
) -> None:
    """Check every link and hash; exit non-zero at the first bad entry."""
    log = _log(node_config, coordinator_home)
    if result is not None and log.department is None:
        raise ConfigError(
            "--result anchors a node's log, not the coordinator's",
            "use --node-config with --result; check the coordinator's recorded heads with "
            "`silobridge audit crosscheck`",
        )
    anchor = _anchor_from_result(result, log.department) if result and log.department else None
    entries = read_entries(log.path)
    outcome = verify_chain(entries, anchor)
    if not outcome.ok:
        _print_broken("audit log BROKEN", str(log.path), outcome)
        raise typer.Exit(EXIT_USER_ERROR)
    checked = ""
    if node_config is not None:
        # The chain cannot show a log deleted or cut short; the ledger beside it can.
        _, ledger = open_node_ledger(node_config)
        gaps = ledger_gaps(read_entries(log.path), ledger.history())
        if gaps:
            err_console.print(
                f"[bold red]audit log INCOMPLETE[/] {escape(str(log.path))}: "
                f"{len(gaps)} ledger release(s) it does not record, first: {escape(gaps[0])}",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_USER_ERROR)
        checked = f", every one of {len(ledger.history())} ledger releases recorded"
    anchored = f", anchored at entry {anchor.seq}" if anchor else ""
    console.print(
        f"audit log OK: {outcome.entries} entries{anchored}{checked} ({log.path})", soft_wrap=True
    )


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


def _read_for_export(path: Path) -> tuple[list[AuditEntry], VerifyResult, list[str]]:
    """The entries and their verification; a log with unreadable lines comes back raw."""
    try:
        entries = read_entries(path)
    except DataError as err:
        lines = [x for x in read_lines(path) if x]
        return [], VerifyResult(False, len(lines), _first_unreadable(lines), err.message), lines
    return entries, verify_chain(entries), []


def _summary(
    log: _Log, entries: list[AuditEntry], outcome: VerifyResult, now: str
) -> dict[str, Any]:
    head = {"seq": entries[-1].seq, "hash": entries[-1].hash} if entries else None
    return {
        "schema": "silobridge.audit-export.v1",
        "source": log.source,
        "log": str(log.path),
        "exported_at": now,
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
            shown = json.dumps(value) if isinstance(value, dict) else value
            fh.write(f"# {key}: {'' if shown is None else shown}\n")
        writer = csv.writer(fh)
        writer.writerow([*_ENTRY_FIELDS, "raw"])
        for e in entries:
            data = json.dumps(e.data, sort_keys=True)
            writer.writerow([e.seq, e.ts, e.kind, data, e.prev, e.hash, ""])
        for line in raw:
            writer.writerow(["", "", "", "", "", "", line])


@app.command("export")
@handle_errors
def export(
    out: Annotated[Path, typer.Option(help="The file to write.")],
    node_config: NodeConfigOption = None,
    coordinator_home: CoordinatorHomeOption = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="File format.")] = (
        ExportFormat.JSON
    ),
) -> None:
    """Write the entries and a verification summary to OUT, for investigators.

    A log that does not verify is still written, marked unverified, and the command
    exits non-zero.
    """
    log = _log(node_config, coordinator_home)
    entries, outcome, raw = _read_for_export(log.path)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary = _summary(log, entries, outcome, now)
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


@app.command("crosscheck")
@handle_errors
def crosscheck(
    coordinator_home: Annotated[
        Path, typer.Option(help="The coordinator's home folder (its --state-dir).")
    ],
    node_config: Annotated[Path, typer.Option(help="The node config whose log to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that every chain head the coordinator recorded from a node is in its log."""
    home = CoordinatorHome.existing(coordinator_home)
    cfg = load_node_config(node_config)
    node_log = audit_path_for(cfg.ledger_path)
    report = crosscheck_files(home.audit_path, node_log, cfg.department)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        chains = ((home.audit_path, report.coordinator_chain), (node_log, report.node_chain))
        for path, chain in chains:
            if not chain.ok:
                _print_broken("audit log BROKEN", str(path), chain)
        for m in report.mismatches:
            err_console.print(
                f"[bold red]mismatch[/] job {escape(m.job_id)} round {m.round}: coordinator "
                f"entry {m.coordinator_seq} recorded node entry {m.seq}: {m.reason}",
                soft_wrap=True,
            )
        if report.ok and report.anchors == 0:
            console.print(
                f"[yellow]nothing to compare[/]: the coordinator recorded no chain head from "
                f"department {escape(cfg.department)}"
            )
        elif report.ok:
            console.print(
                f"crosscheck OK: all {report.anchors} chain heads the coordinator recorded "
                f"from {escape(cfg.department)} are in its log"
            )
    if not report.ok:
        raise typer.Exit(EXIT_USER_ERROR)
