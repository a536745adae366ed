"""`silobridge budget ...`: see and set privacy budgets, at the coordinator or at a node.

Each command takes exactly one source: `--coordinator-home DIR` (the central officer's
per-analyst and per-project caps) or `--node-config PATH` (a department's own budgets).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from server.central_budget.central_budget import CapChange, CapKind, CapStanding, JobCharge
from server.home.coordinator_home import CoordinatorHome
from silobridge.cli.errors import console, handle_errors
from silobridge.node_budget import budget_history, budget_view, set_node_budget
from vocab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="See and set privacy budgets and central caps.", no_args_is_help=True)

CoordinatorHomeOption = Annotated[
    Path | None,
    typer.Option(help="The coordinator's home folder (its --state-dir): central caps."),
]
NodeConfigOption = Annotated[
    Path | None, typer.Option(help="A node config: that department's own budgets.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _source(coordinator_home: Path | None, node_config: Path | None) -> CoordinatorHome | None:
    """The coordinator home, or None for the node; exactly one must be given."""
    if (coordinator_home is None) == (node_config is None):
        raise ConfigError(
            "give exactly one of --coordinator-home and --node-config",
            "--coordinator-home DIR for the central caps, --node-config PATH for a node's "
            "own budgets",
        )
    return None if coordinator_home is None else CoordinatorHome.existing(coordinator_home)


def _eps(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _standing(s: CapStanding) -> dict[str, Any]:
    return {
        "kind": s.kind.value,
        "key": s.key,
        "cap": s.cap,
        "reserved": s.reserved,
        "settled": s.settled,
        "spent": s.spent,
        "remaining": s.remaining,
    }


def _change(c: CapChange) -> dict[str, Any]:
    return {
        "kind": c.kind.value,
        "key": c.key,
        "old": c.old,
        "new": c.new,
        "changed_at": _when(c.changed_at),
    }


def _charge(c: JobCharge) -> dict[str, Any]:
    return {
        "job_id": c.job_id,
        "analyst": c.analyst,
        "project": c.project,
        "requested": c.requested,
        "charged": c.charged,
        "counted": c.counted,
        "status": c.status.value,
        "created_at": _when(c.created_at),
        "settled_at": _when(c.settled_at),
    }


def _show_coordinator(home: CoordinatorHome, as_json: bool) -> None:
    standings = home.budget().standings()
    if as_json:
        data = {
            "side": "coordinator",
            "home": str(home.root),
            "standings": [_standing(s) for s in standings],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"central caps — {home.root}")
    for col in ("kind", "name", "cap ε", "spent ε (reserved + settled)", "remaining ε"):
        table.add_column(col)
    for s in standings:
        spent = f"{s.spent:.4f} ({s.reserved:.4f} + {s.settled:.4f})"
        table.add_row(s.kind.value, escape(s.key), _eps(s.cap), spent, _eps(s.remaining))
    console.print(table)
    if not standings:
        console.print("no caps set and no jobs charged yet")
    console.print(
        "A cap bounds, for each department dataset, the epsilon one analyst's (project's) "
        "jobs may charge; a running job counts at its full epsilon until it settles."
    )


def _history_coordinator(home: CoordinatorHome, as_json: bool) -> None:
    budget = home.budget()
    changes, charges = budget.history(), budget.charges()
    if as_json:
        data = {
            "side": "coordinator",
            "home": str(home.root),
            "cap_changes": [_change(c) for c in changes],
            "charges": [_charge(c) for c in charges],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    caps = Table(title="cap changes")
    for col in ("time (UTC)", "kind", "name", "old ε", "new ε"):
        caps.add_column(col)
    for c in changes:
        caps.add_row(_when(c.changed_at), c.kind.value, escape(c.key), _eps(c.old), _eps(c.new))
    console.print(caps)
    jobs = Table(title="job charges")
    for col in (
        "admitted (UTC)",
        "job",
        "analyst",
        "project",
        "requested ε",
        "charged ε",
        "status",
    ):
        jobs.add_column(col)
    for j in charges:
        who = (escape(j.analyst or "-"), escape(j.project or "-"))
        amounts = (_eps(j.requested), _eps(j.charged))
        jobs.add_row(_when(j.created_at), escape(j.job_id), *who, *amounts, j.status.value)
    console.print(jobs)


def _show_node(config: Path, as_json: bool) -> None:
    view = budget_view(config)
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=2))
        return
    table = Table(title=f"budgets of {view.department} / {view.dataset} — period {view.period}")
    for col in ("budget", "cap ε", "δ", "spent ε", "remaining ε"):
        table.add_column(col)
    for scope in view.scopes:
        table.add_row(
            escape(scope["scope"]), _eps(scope["epsilon"]), f"{scope['delta']:g}",
            _eps(scope["spent"]), _eps(scope["remaining"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"lifetime ε over every period: {view.lifetime_epsilon:.4f} (what a person in the "
        "data has lost; periods reset what is allowed, not this)",
        highlight=False,
    )
    if view.reserved_entries:
        console.print(
            f"{view.reserved_entries} reservation(s) not yet committed: they count as spent "
            "until the round is retried or finished",
            highlight=False,
        )


def _history_node(config: Path, as_json: bool) -> None:
    data = budget_history(config)
    if as_json:
        typer.echo(json.dumps({"side": "node", **data}, indent=2))
        return
    changes = Table(title=f"budget changes — {data['department']} / {data['dataset']}")
    for col in ("time (UTC)", "budget", "old ε", "new ε", "δ", "set by"):
        changes.add_column(col)
    for c in data["changes"]:
        changes.add_row(
            c["at"][:19], escape(c["scope"]), _eps(c["old_epsilon"]), _eps(c["new_epsilon"]),
            f"{c['delta']:g}", c["source"],
        )  # fmt: skip
    console.print(changes)
    jobs = Table(title="jobs charged to this dataset")
    for col in ("started (UTC)", "job", "period", "purpose", "analyst", "rounds", "ε of job"):
        jobs.add_column(col)
    for j in data["jobs"]:
        rounds = ", ".join(f"{n} {status}" for status, n in j["rounds"].items())
        jobs.add_row(
            j["started"][:19], escape(j["job_id"]), escape(j["period"]),
            escape(j["purpose"] or "-"), escape(j["analyst"] or "-"), rounds, _eps(j["epsilon"]),
        )  # fmt: skip
    console.print(jobs)


@app.command("show")
@handle_errors
def show(
    coordinator_home: CoordinatorHomeOption = None,
    node_config: NodeConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Budgets with spent and remaining epsilon: a node's scopes, or the central caps."""
    home = _source(coordinator_home, node_config)
    if home is None and node_config is not None:
        _show_node(node_config, as_json)
    elif home is not None:
        _show_coordinator(home, as_json)


@app.command("set")
@handle_errors
def set_cap(
    epsilon: Annotated[float, typer.Option(help="The budget or cap (epsilon).")],
    coordinator_home: CoordinatorHomeOption = None,
    node_config: NodeConfigOption = None,
    analyst: Annotated[str | None, typer.Option(help="Cap this analyst's jobs.")] = None,
    project: Annotated[
        str | None, typer.Option(help="Cap this project's jobs (coordinator only).")
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="Node: a sub-budget for jobs with this purpose.")
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="Node: open this new period with --epsilon as its total.")
    ] = None,
    delta: Annotated[
        float | None, typer.Option(help="Node: the budget's delta (default: the period's).")
    ] = None,
) -> None:
    """Set a budget (recorded and audited).

    At a node: the current period's total (no scope option), a purpose's sub-budget, an
    analyst's cap, or a new period. At the coordinator: an analyst's or a project's cap.
    """
    home = _source(coordinator_home, node_config)
    if home is None and node_config is not None:
        if project is not None:
            raise ConfigError(
                "nodes keep budgets per period, purpose and analyst, not per project",
                "set project caps at the coordinator with --coordinator-home",
            )
        what = set_node_budget(
            node_config, epsilon, delta, purpose=purpose, analyst=analyst, new_period=period
        )
        console.print(f"node budget set: {escape(what)}", highlight=False)
        return
    assert home is not None  # _source returned one of the two
    if purpose is not None or period is not None or delta is not None:
        raise ConfigError(
            "--purpose, --period and --delta are node budgets",
            "use them with --node-config; the coordinator keeps analyst and project caps",
        )
    if analyst is not None and project is None:
        kind, key = CapKind.ANALYST, analyst
    elif project is not None and analyst is None:
        kind, key = CapKind.PROJECT, project
    else:
        raise ConfigError(
            "give exactly one of --analyst and --project",
            "e.g. `silobridge budget set --coordinator-home DIR --analyst r.ahmed --epsilon 5`",
        )
    change = home.set_cap(kind, key, epsilon)
    standing = next(
        s for s in home.budget().standings() if (s.kind, s.key) == (change.kind, change.key)
    )
    console.print(
        f"central cap of {kind.value} {escape(key)}: {_eps(change.old)} → {_eps(change.new)} "
        f"(spent {_eps(standing.spent)}, remaining {_eps(standing.remaining)})",
        highlight=False,
    )


@app.command("history")
@handle_errors
def history(
    coordinator_home: CoordinatorHomeOption = None,
    node_config: NodeConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every budget change and every job's charge, oldest first (node or coordinator)."""
    home = _source(coordinator_home, node_config)
    if home is None and node_config is not None:
        _history_node(node_config, as_json)
    elif home is not None:
        _history_coordinator(home, as_json)
