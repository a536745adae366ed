"""Renders a job's progress events and its final summary for the analyst."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from vocab.progress import (
    Admission,
    Answers,
    CentralView,
    Evaluated,
    EvaluateStart,
    Failed,
    JobEnd,
    JobStart,
    NodeQuoteView,
    NodesConnected,
    ProgressEvent,
    QuoteEvent,
    QuoteResult,
    Refusal,
    Released,
    ReleaseStart,
    RoundDone,
    RoundEnd,
    RoundStart,
)

__all__ = ["LiveProgress", "ProgressView", "print_quote", "print_summary"]


def _fmt(metrics: Mapping[str, Any]) -> str:
    """Noisy metrics with their DP-noise standard errors, e.g. "AUC 0.712 ± 0.031"."""
    parts = []
    for key, label in (("auc", "AUC"), ("accuracy", "accuracy"), ("n_holdout", "rows")):
        value = metrics.get(key)
        if not isinstance(value, float | int) or value != value:
            continue
        se = metrics.get(f"{key}_se")
        digits = 0 if key == "n_holdout" else 3
        spread = f" ± {se:.{digits}f}" if isinstance(se, float) and se == se else ""
        parts.append(f"{label} {value:.{digits}f}{spread}")
    return ", ".join(parts) or "-"


class ProgressView:
    """Prints one line per event; rounds show who trained, who refused and the privacy spent."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: ProgressEvent) -> None:
        # The coordinator's text is shown as text: a bracket in a name or a node's reason is
        # not markup (an unmatched closing tag would even stop the CLI).
        c, e = self.console, escape
        match event:
            case JobStart(mode="quote"):
                c.print(
                    f"[bold]quote for job {e(event.job)}[/] ({e(event.job_id)}): asking every node "
                    f"what epsilon={event.epsilon} delta={event.delta} would cost it; "
                    "nothing is charged"
                )
            case JobStart():
                c.print(
                    f"[bold]{e(event.job_kind)} job {e(event.job)}[/] "
                    f"({e(event.job_id)}): {event.rounds} round(s), "
                    f"per-node guarantee epsilon={event.epsilon} delta={event.delta}, "
                    f"quorum {event.min_nodes}"
                )
            case NodesConnected():
                c.print(f"  {event.connected} node(s) connected (need {event.min_nodes})")
            case Admission():
                elsewhere = event.elsewhere
                c.print(
                    f"  admission: {event.would_run} of {len(event.nodes)} node(s) admit "
                    f"the whole job (need {event.min_nodes})"
                    + (f"; {len(elsewhere)} hold other datasets" if elsewhere else "")
                    + ("" if event.ok else "; [red]not started, nothing charged[/]")
                )
            case RoundStart():
                c.print(
                    f"[cyan]round {event.round}/{event.rounds}[/]: asking "
                    f"{event.nodes} node(s) to train…"
                )
            case Refusal():
                c.print(
                    f"  [yellow]refused[/] by {e(event.department)} ({e(event.code)}): "
                    f"{e(event.reason)}",
                    highlight=False,
                )
            case RoundEnd():
                spent = ", ".join(
                    f"{e(d)} {p.epsilon_job:.3f}" for d, p in sorted(event.privacy.items())
                )
                c.print(
                    f"  round {event.round} done in {event.seconds:.1f}s: "
                    f"{len(event.participants)} trained"
                    + (f"; model after it: {_fmt(event.metrics)}" if event.metrics else "")
                    + f"; epsilon so far: {spent}"
                )
            case EvaluateStart():
                c.print(
                    f"  [cyan]evaluation[/] of the model after round {event.after_round} on "
                    f"{event.nodes} node(s) (noisy, charged)…"
                )
            case Evaluated():
                c.print(f"  evaluated: {_fmt(event.metrics)} (± is the DP noise's standard error)")
            case ReleaseStart():
                c.print(
                    f"[cyan]release[/]: asking {event.nodes} node(s) for their noisy "
                    f"{e(event.job_kind)} (charged once each)…"
                )
            case Released():
                c.print(
                    f"  released by {len(event.departments)} department(s) in "
                    f"{event.seconds:.1f}s: {e(', '.join(event.departments)) or 'none'}"
                )
            case RoundDone():
                c.print(f"  round {event.round} done in {event.seconds:.1f}s: "
                        f"{event.nodes} node(s) trained")  # fmt: skip
            case Failed():
                c.print(f"[red]job failed[/]: {e(event.reason)}", highlight=False)


class LiveProgress:
    """`ProgressView`'s lines, and on a terminal two bars under them: the job's message
    rounds, and the answers to the message out now (quote, round, evaluation, release).

    Use as a context manager; off a terminal (logs, pipes) it prints the lines only.
    """

    def __init__(self, console: Console) -> None:
        self.view = ProgressView(console)
        self._live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._job: TaskID | None = None
        self._job_total = 1
        self._exchange: TaskID | None = None

    def __enter__(self) -> LiveProgress:
        if self._live:
            self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.progress.stop()

    def _ask(self, what: str, nodes: int) -> None:
        if self._exchange is not None:
            self.progress.remove_task(self._exchange)
        self._exchange = self.progress.add_task(f"  {what}: answers", total=max(nodes, 1))

    def _advance_job(self) -> None:
        if self._job is not None:
            self.progress.advance(self._job)

    def __call__(self, event: ProgressEvent) -> None:
        self.view(event)
        p = self.progress
        match event:
            case JobStart():
                self._job_total = 1 if event.mode == "quote" else max(event.rounds, 1)
                self._job = p.add_task(f"job {escape(event.job)}", total=self._job_total)
            case NodesConnected():
                self._ask("quote", event.connected)
            case RoundStart():
                self._ask(f"round {event.round}/{event.rounds}", event.nodes)
            case EvaluateStart():
                self._ask("evaluation", event.nodes)
            case ReleaseStart():
                self._ask("release", event.nodes)
            case Answers() if self._exchange is not None:
                p.update(self._exchange, completed=event.answered, total=max(event.asked, 1))
            case RoundEnd() | RoundDone() | Released():
                self._advance_job()
            case QuoteResult() | JobEnd() | Failed() if self._job is not None:
                p.update(self._job, completed=self._job_total)


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
            f"final pooled held-out metrics (noisy, charged to each department): {_fmt(m)}; "
            "± is the DP noise's standard error (see MODEL_CARD.md)"
        )
    return result


def _eps(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float | int) else "-"


def _scopes(node: NodeQuoteView) -> str:
    lines = [
        f"{escape(s.scope)}: {_eps(s.spent)} → {_eps(s.after)} / {_eps(s.cap)}"
        + ("" if s.fits else " [red]over[/]")
        for s in node.scopes
    ]
    return "\n".join(lines) or "-"


def _verdict(node: NodeQuoteView) -> str:
    if node.would_run:
        return "[green]would run[/]"
    if node.status == "refused":
        return f"[yellow]would refuse[/] ({escape(node.code)})"
    return f"[red]no answer[/] ({escape(node.code)})"


def _central_line(central: CentralView) -> str:
    """The central caps a quote or job meets, in one line."""
    if not central.caps:
        return "central caps: none apply (the job names no capped analyst or project)"
    parts = [
        f"{escape(c.kind)} {escape(c.key)} {_eps(c.spent)} → {_eps(c.after)} / {_eps(c.cap)}"
        + (" ok" if c.fits else " OVER")
        for c in central.caps
    ]
    return "central caps: " + "; ".join(parts)


def print_quote(console: Console, quote: QuoteEvent) -> None:
    """Print a `quote_result` event: one row per department, then the central caps."""
    table = Table(title=f"quote — job {escape(quote.job)} (epsilon {quote.epsilon}, per node)")
    for col in ("department", "verdict", "ε of the job", "budgets: spent → after / cap"):
        table.add_column(col)
    for node in quote.nodes:
        table.add_row(escape(node.department), _verdict(node), _eps(node.requested), _scopes(node))
    console.print(table)
    # Reasons are long (figures and a fix): one line each under the table, not in a cell.
    for node in quote.nodes:
        if not node.would_run:
            console.print(
                f"  {escape(node.department)}: {escape(node.reason)}",
                highlight=False,
                soft_wrap=True,
            )
    preview = quote.preview
    if quote.job_kind != "risk":
        pass  # one release per node: no evaluation to describe
    elif preview.evaluations:
        console.print(
            f"evaluation: {preview.evaluations} charged release(s) "
            f"({escape(preview.evaluation or '')}), "
            f"{preview.evaluation_share or 0.0:.0%} of the job's epsilon on their own; ε of "
            "the job above includes them",
            highlight=False,
        )
    else:
        console.print("evaluation: off (the whole epsilon trains the model)", highlight=False)
    if quote.elsewhere:
        console.print(
            f"taking no part (they hold other datasets): {escape(', '.join(quote.elsewhere))}",
            highlight=False,
        )
    console.print(_central_line(quote.central), highlight=False)
    console.print(
        f"{quote.would_run} of {len(quote.nodes)} node(s) would run the job "
        f"(it needs {quote.min_nodes}); nothing was charged"
    )
