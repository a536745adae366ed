"""A default DP-SGD round's cost against plain SGD taking the same steps, on wide tables.

Run: ``python -m bench.round_cost [--quick] [--out results]``

`bench.dp_overhead` times epochs on the demo's 6 inputs with the example's batch sizes;
this times what an untuned spec now runs - one round of `train_round` with the defaults
a node chooses (`clients.training.defaults`: batch a tenth of the rows, 3 epochs, so 30
steps) - on generated rows of 20 and 100 inputs, the widths of the public tables of
issue 11. The plain row takes the same number of steps on Poisson batches of the same
rate, sliced from tensors (no DP: no per-sample gradients, clipping or noise). Each
variant runs `repeats` times, alternating; the report gives medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.table import Table
from torch import nn

from bench.report import command_line, environment, make_console, write_result
from clients.kinds.risk.plan import DpPlan, plan_dp
from clients.kinds.risk.trainer import train_round
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.models import build_model

__all__ = ["main"]

NAME = "round_cost"
SHAPES = ((5000, 20), (15000, 100))


def _spec(model: str, inputs: int) -> RiskJobSpec:
    features = {f"f{i}": {"lower": -1.0, "upper": 1.0} for i in range(inputs)}
    job = {"name": "cost", "target": "y", "positive": "1", "model": model, "epsilon": 1.0}
    return parse_job_spec({"job": job, "features": features})


def _plain(
    spec: RiskJobSpec, plan: DpPlan, x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]
) -> float:
    rng = np.random.default_rng(0)
    model = build_model(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=plan.training.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    started = time.perf_counter()
    for _ in range(plan.steps_per_round):
        rows = torch.from_numpy(rng.random(len(y)) < plan.sample_rate)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xt[rows]).squeeze(-1), yt[rows]).backward()
        optimizer.step()
    return time.perf_counter() - started


def _dp(
    plan: DpPlan, spec: RiskJobSpec, x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]
) -> float:
    model = build_model(spec)  # outside the timing, as for plain SGD
    started = time.perf_counter()
    train_round(model, x, y, plan)
    return time.perf_counter() - started


def measure(repeats: int, shapes: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """Median round seconds of both variants for every model and (rows, inputs)."""
    cases = []
    rng = np.random.default_rng(0)
    for rows, inputs in shapes:
        x = rng.uniform(-1, 1, size=(rows, inputs)).astype(np.float32)
        y = (x[:, 0] + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)
        for model in ("logistic", "mlp"):
            spec = _spec(model, inputs)
            plan = plan_dp(spec, rows)
            plain, dp = [], []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(repeats):
                    plain.append(_plain(spec, plan, x, y))
                    dp.append(_dp(plan, spec, x, y))
            cases.append({
                "model": model, "rows": rows, "inputs": inputs,
                "batch_size": plan.training.batch_size, "steps": plan.steps_per_round,
                "plain_round_ms": 1000 * statistics.median(plain),
                "dp_round_ms": 1000 * statistics.median(dp),
                "ratio": statistics.median(dp) / statistics.median(plain),
            })  # fmt: skip
    return cases


def main(argv: Sequence[str] | None = None, via: str | None = None) -> int:
    """Time, print and write `round_cost.json`."""
    parser = argparse.ArgumentParser(prog="python -m bench.round_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, two repeats")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    repeats, shapes = (2, ((600, 8),)) if args.quick else (15, SHAPES)
    cases = measure(repeats, shapes)
    table = Table(title=f"One default round (3 epochs), median of {repeats}")
    for col in ("model", "rows x inputs", "batch", "steps", "plain ms", "DP ms", "DP / plain"):
        table.add_column(col)
    for c in cases:
        table.add_row(
            c["model"], f"{c['rows']:,} x {c['inputs']}", str(c["batch_size"]), str(c["steps"]),
            f"{c['plain_round_ms']:.0f}", f"{c['dp_round_ms']:.0f}", f"{c['ratio']:.1f}",
        )  # fmt: skip
    console = make_console()
    console.print(table)
    payload = {
        **environment(command_line(NAME, argv, via)),
        "benchmark": "a default DP-SGD round against plain SGD with the same steps",
        "settings": {"repeats": repeats, "shapes": [list(s) for s in shapes]},
        "cases": cases,
    }
    console.print(f"wrote {write_result(args.out, NAME, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
