"""A statistics job's result bundle: result.json (every cell), cells.csv and the card."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from server.kinds.statistics.combine import Cell, clamping_note
from server.one_shot import OneShot
from server.spec_record import spec_record
from vocab.bundle import CARD_FILE, CELLS_FILE, RESULT_FILE
from vocab.jobs.statistics import StatisticsSpec

__all__ = ["render_statistics"]

RESULT_SCHEMA = "silobridge.statistics.v1"
_CARD_ROWS = 60


def _nodes(shot: OneShot | None) -> dict[str, Any]:
    if shot is None:
        return {}
    nodes: dict[str, Any] = {}
    for report in shot.reports:
        nodes[report.department] = {
            "status": report.status.value,
            "code": report.code,
            "reason": report.reason,
            "epsilon_job": report.epsilon_job,
            "epsilon_spent": report.epsilon_spent,
            "epsilon_budget": report.epsilon_budget,
            "delta": report.delta,
            "releases": [dataclasses.asdict(r) for r in report.releases],
        }
    for department, code, reason in shot.missing:
        nodes.setdefault(department, {"status": "no_answer", "code": code, "reason": reason})
    return nodes


def _csv(spec: StatisticsSpec, cells: Sequence[Cell]) -> bytes:
    buffer = io.StringIO()
    groups = [g.column for g in spec.group_by]
    fields = [*groups, "statistic", "column", "level", "value", "std", "lower", "upper",
              "suppressed", "count"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        row = cell.to_json_dict()
        writer.writerow(
            {
                **row["group"],
                **{k: ("" if row[k] is None else row[k]) for k in fields[len(groups) :]},
            }
        )
    return buffer.getvalue().encode()


def _fmt(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _selection_lines(spec: StatisticsSpec) -> list[str]:
    if not spec.private:
        return []
    private = ", ".join(f"`{g.column}`" for g in spec.group_by if g.private)
    return [
        f"- groups of {private} chosen privately by each department: at most "
        f"{spec.max_partitions}, only those whose noisy count passed its threshold, with "
        f"delta {spec.selection_delta:g} of the {spec.delta:g} spent choosing them"
    ]


def _card(spec: StatisticsSpec, result: dict[str, Any]) -> str:
    lines = [
        f"# Result card: {spec.name} (population statistics)",
        "",
        f"- status: **{result['status']}**"
        + (f" — {result['failure']}" if result["failure"] else ""),
        f"- purpose: {spec.purpose or '(none declared)'}; analyst: {spec.analyst or '-'}; "
        f"project: {spec.project or '-'}",
        f"- privacy: each department's release is ({spec.epsilon}, {spec.delta})-DP "
        f"({spec.noise.value} noise), charged to that department's own ledger",
        f"- contribution bounds: at most {spec.max_rows} row(s) and {spec.max_groups} group(s) "
        "per person at a department that declares a person id (one row per person otherwise)",
        f"- suppression: cells whose combined noisy count is below {spec.threshold:g} are "
        "suppressed (their figures are blank)",
        *_selection_lines(spec),
        f"- departments combined: {', '.join(result['combined']) or 'none'}",
        "",
        result["note"],
        "",
        "| group | statistic | level | value | ± 95 % | suppressed |",
        "|---|---|---|---|---|---|",
    ]
    for cell in result["cells"][:_CARD_ROWS]:
        group = ", ".join(f"{k}={v}" for k, v in cell["group"].items()) or "all"
        what = cell["statistic"] + (f"({cell['column']})" if cell["column"] else "")
        half = (
            None
            if cell["upper"] is None or cell["lower"] is None
            else (cell["upper"] - cell["lower"]) / 2
        )
        lines.append(
            f"| {group} | {what} | {cell['level']} | {_fmt(cell['value'])} | {_fmt(half)} | "
            f"{'yes' if cell['suppressed'] else ''} |"
        )
    if len(result["cells"]) > _CARD_ROWS:
        lines.append(
            f"| … {len(result['cells']) - _CARD_ROWS} more cells in result.json | | | | | |"
        )
    return "\n".join(lines) + "\n"


def render_statistics(
    spec: StatisticsSpec,
    job_id: str,
    *,
    status: str,
    failure: str,
    cells: Sequence[Cell],
    shot: OneShot | None,
    combined: Sequence[str],
    seconds: float,
) -> dict[str, bytes]:
    """The bundle's files. Every number in them is a node's noisy release, combined
    (post-processing), or public (the spec, the nodes' ledger figures)."""
    result = {
        "schema": RESULT_SCHEMA,
        "job_id": job_id,
        "kind": spec.kind,
        "status": status,
        "failure": failure,
        "job": spec_record(spec),
        "combined": list(combined),
        "threshold": spec.threshold,
        "note": clamping_note(spec),
        "cells": [cell.to_json_dict() for cell in cells],
        "nodes": _nodes(shot),
        "seconds": round(seconds, 3),
    }
    return {
        RESULT_FILE: json.dumps(result, indent=2, allow_nan=False).encode(),
        CELLS_FILE: _csv(spec, cells),
        CARD_FILE: _card(spec, result).encode(),
    }
