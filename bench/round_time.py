"""Round wall time on a real 5-department federation of a public table (issue 11).

Run: ``python -m bench.round_time [--quick] [--table census] [--out results]``

Each department of a `bench.public_tables` table (default: wooldridge/census2000, 29.5k
workers in five state groups) gets its own CSV and node config (columns typed as
`node init` profiles them, opened by the benchmark acting as officer), a warm SuperNode
and the real SuperLink on loopback. Then one job per (model, hyperparameters) runs through
`silobridge job run`'s path: the untuned spec (the nodes' defaults) and the same spec
with the example job's values copied (3 rounds x 8 local epochs, batch 256: what the
issue's measurements ran). Reported per job: each round's wall time at the coordinator
(sending the round to every node answering) and the whole job's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from bench.live_federation import LiveDeployment, live_federation
from bench.public_tables import RECIPES, load_table, untuned_spec
from bench.report import command_line, environment, make_console, write_result
from bench.untuned import EXAMPLE, example_values
from clients.data.table_profile import profile_columns
from clients.node_config import ColumnSpec, NodeConfig
from vocab.columns import ColumnClass
from vocab.jobspec import RiskJobSpec, load_job_spec

__all__ = ["main"]

NAME = "round_time"


def _write_departments(root: Path, frame: pd.DataFrame, dataset: str) -> list[NodeConfig]:
    from testkit.synthetic import write_node

    rows = frame.drop(columns=["department"])
    columns = tuple(
        ColumnSpec(p.name, p.type, ColumnClass.OPEN, required=not p.has_missing)
        for p in profile_columns(rows)
    )
    return [
        write_node(
            root / name,
            name,
            1000.0,
            rows[frame["department"] == name],
            columns=columns,
            person_id=None,
            dataset=dataset,
        )
        for name in sorted(frame["department"].unique())
    ]


def _run_job(live: LiveDeployment, spec: RiskJobSpec, label: str) -> dict[str, Any]:
    from silobridge.flower_federation import Federation
    from silobridge.flower_runner import submit_job
    from vocab.progress import JobEnd

    started = time.monotonic()
    final = submit_job(
        spec, live.root / "out" / label, Federation(live.control), live.root / "analyst",
        lambda _event: None, home=live.home,
    )  # fmt: skip
    wall = time.monotonic() - started
    if not isinstance(final, JobEnd):
        raise RuntimeError(f"job {label} did not finish: {final}")
    result = json.loads(Path(final.result).read_text())
    if result["status"] != "succeeded":
        raise RuntimeError(f"job {label} failed: {result['failure']}")
    seconds = [r["seconds"] for r in result["rounds"]]
    return {"job": label, "model": spec.model.value, "rounds": spec.rounds,
            "round_seconds": seconds, "median_round_s": statistics.median(seconds),
            "job_wall_s": round(wall, 2)}  # fmt: skip


def run(table: str, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every job's round times on the live federation, and what the federation held."""
    recipe = RECIPES[table]
    frame = load_table(recipe)
    if quick:
        frame = frame.groupby("department").head(300)
    example = load_job_spec(EXAMPLE)
    jobs: list[tuple[str, RiskJobSpec]] = []
    for model in ("logistic", "mlp"):
        spec = dataclasses.replace(
            untuned_spec(recipe, model, 1.0), dataset=recipe.key,
            min_nodes=int(frame["department"].nunique()),
        )  # fmt: skip
        jobs.append((f"{model}-untuned", dataclasses.replace(spec, name=f"{model}-untuned")))
        if not quick:
            copied = dataclasses.replace(example_values(spec, example), name=f"{model}-example")
            jobs.append((f"{model}-example", copied))
    with tempfile.TemporaryDirectory(prefix="bench-round-time-") as tmp:
        nodes = _write_departments(Path(tmp), frame, recipe.key)
        with live_federation(Path(tmp), nodes) as live:
            records = [_run_job(live, spec, label) for label, spec in jobs]
    held = {"table": recipe.description, "departments": len(nodes), "rows": len(frame),
            "inputs": jobs[0][1].n_inputs}  # fmt: skip
    return records, held


def main(argv: Sequence[str] | None = None, via: str | None = None) -> int:
    """Run, print and write `round_time.json`."""
    parser = argparse.ArgumentParser(prog="python -m bench.round_time", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 rows per department")
    parser.add_argument("--table", choices=sorted(RECIPES), default="census")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    records, held = run(args.table, args.quick)
    console = make_console()
    table = Table(title=f"Round wall time, {held['departments']} departments on loopback "
                  f"({held['rows']:,} rows, {held['inputs']} inputs)")  # fmt: skip
    for col in ("job", "rounds", "median round s", "each round s", "whole job s"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r["job"], str(r["rounds"]), f"{r['median_round_s']:.1f}",
            ", ".join(f"{s:.1f}" for s in r["round_seconds"]), f"{r['job_wall_s']:.1f}",
        )  # fmt: skip
    console.print(table)
    payload = {
        **environment(command_line(NAME, argv, via)),
        "benchmark": "issue 11: round time on a 5-department table",
        "federation": held,
        "jobs": records,
    }
    console.print(f"wrote {write_result(args.out, NAME, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
