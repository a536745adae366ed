"""Prints a population model's result bundle: statistics cells, or regression coefficients."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vocab.progress import QuoteEvent

__all__ = ["print_population", "print_preview", "print_result"]

_MAX_ROWS = 40


def _num(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.4g}"


def _nodes_line(console: Console, result: dict[str, Any]) -> None:
    spent = ", ".join(
        f"{escape(d)} ε {n['epsilon_job']:.3g}"
        for d, n in sorted(result["nodes"].items())
        if isinstance(n.get("epsilon_job"), int | float)
    )
    console.print(
        f"combined: {', '.join(result['combined']) or 'none'}; charged this job: {spent or '-'}",
        highlight=False,
    )


def _statistics(console: Console, result: dict[str, Any]) -> None:
    cells = result["cells"]
    groups = list(cells[0]["group"]) if cells else []
    table = Table(title=f"{result['job']['name']} — {len(cells)} cell(s)")
    for col in (*groups, "statistic", "level", "value", "± 95 %", "std", ""):
        table.add_column(col, justify="right" if col in {"value", "± 95 %", "std"} else "left")
    for cell in cells[:_MAX_ROWS]:
        half = (
            None
            if cell["upper"] is None or cell["lower"] is None
            else (cell["upper"] - cell["lower"]) / 2
        )
        what = cell["statistic"] + (f"({cell['column']})" if cell["column"] else "")
        table.add_row(
            *(escape(str(cell["group"][g])) for g in groups), escape(what),
            escape(cell["level"]), _num(cell["value"]), _num(half), _num(cell["std"]),
            "[yellow]suppressed[/]" if cell["suppressed"] else "",
        )  # fmt: skip
    console.print(table)
    if len(cells) > _MAX_ROWS:
        console.print(f"… {len(cells) - _MAX_ROWS} more cells in result.json / cells.csv")
    console.print(escape(result["note"]), highlight=False)


def _regression(console: Console, result: dict[str, Any]) -> None:
    fit = result.get("fit") or {}
    rows = fit.get("coefficients", [])
    table = Table(title=f"{result['job']['name']} — {result['family']} regression")
    linear = result["family"] == "linear"
    refined = bool(fit.get("refined"))
    columns = ["coefficient", "estimate" if linear else "estimate (log rate)"]
    if linear or refined:
        columns += ["std error", "95 % interval"]
    if not linear:
        columns += ["rate ratio"] + (["rate ratio 95 %"] if refined else [])
    for col in columns:
        table.add_column(col)
    for r in rows:
        cells = [escape(r["name"]), _num(r["estimate"])]
        if linear or refined:
            cells += [_num(r["std_error"]), f"[{_num(r['lower'])}, {_num(r['upper'])}]"]
        if not linear:
            cells.append(_num(r["rate_ratio"]))
        if refined:
            cells.append(f"[{_num(r['rate_ratio_lower'])}, {_num(r['rate_ratio_upper'])}]")
        table.add_row(*cells)
    console.print(table)
    if not rows:
        return
    if linear:
        console.print(
            f"RMSE {_num(fit['rmse'])}, rows (noisy) {_num(fit['n_estimate'])}, ridge "
            f"{_num(fit['ridge'])}; intervals include sampling error and the DP noise",
            highlight=False,
        )
    elif refined:
        console.print(
            f"dispersion {_num(fit['dispersion'])}, weakest direction "
            f"{_num(fit['weakest_snr'])} noise stds; "
            "intervals include sampling error and the DP noise",
            highlight=False,
        )
    else:
        note = fit.get("note") or "the job did not refine (refine_share = 0)"
        console.print(f"no standard errors: {escape(str(note))}", highlight=False)


def print_population(console: Console, result: dict[str, Any]) -> None:
    """Print a statistics or regression result.json."""
    if result["kind"] == "statistics":
        if result["cells"]:
            _statistics(console, result)
    elif result.get("fit"):
        _regression(console, result)
    _nodes_line(console, result)


def print_preview(console: Console, quote: QuoteEvent) -> None:
    """A statistics quote's expected 95 % half-widths, before any budget is touched."""
    widths = quote.preview.half_widths
    if not widths:
        return
    reference = widths.get("reference_count", 1000.0)
    table = Table(title="expected 95 % half-width of combined cells (noise only)")
    table.add_column("cell")
    table.add_column("± 95 %", justify="right")
    for name, width in widths.items():
        if name == "reference_count":
            continue
        note = f" (at a cell of {reference:g} rows; scales as 1/rows)" if name.startswith(
            ("mean:", "variance:")) else ""  # fmt: skip
        table.add_row(escape(name) + note, _num(width))
    console.print(table)


def print_result(console: Console, result_path: Path) -> None:
    """A bundle's summary for its kind; a statistics job's charts are drawn beside it."""
    from silobridge.cli.progress_view import print_summary

    result = json.loads(result_path.read_text())
    if result.get("kind", "risk") == "risk":
        print_summary(console, result_path)
        return
    print_population(console, result)
    if result["kind"] == "statistics" and result["cells"]:
        from silobridge.plots import draw_statistics

        charts = draw_statistics(result, result_path.parent)
        if charts:
            console.print(f"charts ({len(charts)} PNG): {', '.join(p.name for p in charts)}")
