"""Renders a job's progress events and its final summary for the analyst."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["ProgressView", "print_summary"]


def _fmt(metrics: dict[str, Any]) -> str:
    parts = [
        f"{k} {v:.4f}"
        for k, v in metrics.items()
        if k in {"auc", "accuracy", "loss"} and isinstance(v, float)
    ]
    return ", ".join(parts) or "-"


class ProgressView:
    """Prints one line per event; rounds show who trained, who refused and the privacy spent."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        c = self.console
        if kind == "job_start":
            c.print(
                f"[bold]job {event['job']}[/] ({event['job_id']}): {event['rounds']} rounds, "
                f"per-node guarantee epsilon={event['epsilon']} delta={event['delta']}, "
                f"quorum {event['min_nodes']}"
            )
        elif kind == "nodes":
            c.print(f"  {event['connected']} node(s) connected (need {event['min_nodes']})")
        elif kind == "round_start":
            c.print(
                f"[cyan]round {event['round']}/{event['rounds']}[/]: asking "
                f"{event['nodes']} node(s) to train…"
            )
        elif kind == "refusal":
            c.print(
                f"  [yellow]refused[/] by {event['department']} ({event['code']}): "
                f"{event['reason']}",
                highlight=False,
            )
        elif kind == "round_end":
            spent = ", ".join(
                f"{d} {p['epsilon_job']:.3f}" for d, p in sorted(event["privacy"].items())
            )
            c.print(
                f"  round {event['round']} done in {event['seconds']:.1f}s: "
                f"{len(event['participants'])} trained; incoming model {_fmt(event['metrics'])}"
                f"; epsilon so far: {spent}"
            )
        elif kind == "evaluate_start":
            c.print(f"[cyan]final evaluation[/] on {event['nodes']} node(s)…")
        elif kind == "evaluated":
            c.print(f"  final model: {_fmt(event)}")
        elif kind == "failed":
            c.print(f"[red]job failed[/]: {event['reason']}", highlight=False)


def print_summary(console: Console, result_path: Path) -> dict[str, Any]:
    """Print the result bundle's per-node privacy table and metrics; return result.json."""
    result: dict[str, Any] = json.loads(result_path.read_text())
    table = Table(title=f"privacy per department — job {result['job']['name']}")
    for col in (
        "department",
        "rounds",
        "ε this job",
        "ε spent (dataset)",
        "ε budget",
        "ε remaining",
        "δ",
        "refusals",
    ):
        table.add_column(col)
    for dept, n in sorted(result["nodes"].items()):

        def num(v: Any) -> str:
            return f"{v:.3f}" if isinstance(v, float | int) else "-"

        refusals = "; ".join(f"r{r['round']} {r['code']}" for r in n["refusals"]) or "none"
        table.add_row(
            dept,
            str(len(n["rounds"])),
            num(n["epsilon_spent"]),
            num(n["epsilon_dataset_spent"]),
            num(n["epsilon_budget"]),
            num(n["epsilon_remaining"]),
            str(n["delta"] or "-"),
            refusals,
        )
    console.print(table)
    m = result["metrics"]
    if m:
        console.print(
            f"final pooled held-out metrics: AUC [bold]{m['auc']:.4f}[/], accuracy "
            f"{m['accuracy']:.4f}, loss {m['loss']:.4f} on {int(m['n_holdout'])} rows "
            "(not covered by DP; see MODEL_CARD.md)"
        )
    return result
