"""BENCHMARKS.md section 2, privacy accounting is correct: our ledger's epsilon vs dp-accounting.

Run: ``python -m bench.accounting [--quick] [--out results]``

Every row is a set of releases the node really makes, recorded round by round through a
real `SqliteLedger` (reserve, then commit) and read back with `spent()`: "ours" is what the
ledger charges, i.e. `vocab.accounting.epsilon_spent` of the stored events. The same
releases are then recomputed independently by dp-accounting from their mechanism
parameters (sigma, sampling rate, steps, count, scale), with

* its RDP accountant (its own sampled-Gaussian RDP code and conversion), on the union of its
  default orders and ours, so a difference comes from the curves, not the grid;
* its PLD accountant (connect-the-dots, pessimistic: an upper bound on the true epsilon,
  overstating it by at most one discretisation interval per separately discretised PLD);
* a PLD built with optimistic rounding (privacy buckets): a lower bound on the true epsilon.

Rows:

* DP-SGD jobs as the node plans them: `plan_dp` of the shipped job spec
  (`examples/jobs/lending_risk.toml`) at several epsilons, on each demo department's number
  public size figure (`plan_for_node`, as the node plans it).
* Cross-job composition: 2, 3 and 4 such jobs on one dataset, shipped spec on every
  department, and jobs of rising epsilon on the largest one; reported next to the sum of
  the single jobs' epsilons (basic composition, which would also add their deltas).
* Statistics: Gaussian and Laplace releases, noise calibrated by `gaussian_noise_multiplier`
  and `laplace_scale` for several epsilons and counts, and Gaussian releases over privately
  chosen partitions (`GaussianThresholdEvent`, half the delta consumed by the selection).
* Mixes of a DP-SGD job and statistics on one dataset.

A row is ``never_below`` when ours >= PLD minus its discretisation slack, ours >= the
optimistic PLD (the true epsilon's lower bound), and ours >= dp-accounting's RDP epsilon
(within 0.5% where DP-SGD is involved; see `NOTES`). The exit code is 1 if any row fails,
or if a ledger ever charges other than `epsilon_spent` of its events.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dp_accounting
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from rich.console import Console
from rich.table import Table

from bench.departments import DemoDepartments
from bench.dp_oracle import consumed_delta, dp_event
from bench.report import command_line, environment, make_console, write_result
from clients.kinds.risk.plan import DpPlan, plan_dp
from clients.ledger.ledger import Requester
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import load_node_config
from clients.training.sizing import planned_rows
from vocab.accounting import (
    DEFAULT_ORDERS,
    epsilon_spent,
    gaussian_noise_multiplier,
    laplace_scale,
)
from vocab.jobspec import RiskJobSpec, load_job_spec
from vocab.privacy import (
    Budget,
    DpSgdEvent,
    GaussianEvent,
    GaussianThresholdEvent,
    LaplaceEvent,
    PrivacyEvent,
)

__all__ = ["AccountingSettings", "main", "run"]

NAME = "accounting"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "jobs" / "lending_risk.toml"

RDP_TOLERANCE_DP_SGD = 0.005
"""Ours may sit this far (relative) below dp-accounting's RDP epsilon where DP-SGD is involved."""

RDP_TOLERANCE_CLOSED_FORM = 1e-9
"""Gaussian and Laplace RDP curves are closed forms in both libraries: only float error."""

_LEDGER_EPSILON = 1e6
"""The benchmark ledgers' period budget: large, so that no row is ever refused."""

NOTES = (
    "ours: SqliteLedger.spent() after every release was reserved and committed round by "
    "round; equal to vocab.accounting.epsilon_spent(events, delta) (column "
    "ledger_equals_accounting). It is an RDP bound (Mironov 2017; Mironov, Talwar & Zhang "
    "2019; conversion of Balle et al. 2020, Thm 21) over vocab.accounting.DEFAULT_ORDERS, "
    "padded up by a relative 1e-6 plus 1e-12 per release; for Laplace-only releases the "
    "pure-DP sum of count / scale when smaller.",
    "rdp: dp-accounting RdpAccountant on the union of its DEFAULT_RDP_ORDERS and ours. For "
    "Laplace-only rows the reference is min(rdp, sum of count / scale), the pure-DP bound "
    "(Dwork & Roth 2014, Thm 3.16) ours may also use.",
    "Caveat (tests/privacy/test_accounting.py): at fractional orders dp-accounting 0.6 sums "
    "absolute values of the sampled Gaussian's alternating series - an upper bound - and "
    "drops orders where that fails to converge; Opacus' signed series (ours) matches 30-digit "
    "quadrature. For DP-SGD at large epsilon the optimum is a fractional order, so ours may "
    "be below dp-accounting's RDP epsilon; accepted down to 0.5% below. For Gaussian and "
    "Laplace statistics both libraries use the same closed forms, so the tolerance there is "
    "float error only (1e-9 relative). dp-accounting may also report 0 via a KL bound for "
    "tiny losses, which ours does not use.",
    "pld: dp-accounting PLDAccountant (connect-the-dots, pessimistic) at value_discretization_"
    "interval pld_interval. Pessimistic rounding onto that grid can overstate the loss by up "
    "to one interval per separately discretised PLD: one per DP-SGD step and per Laplace "
    "release (each self-composed), one per Gaussian event (its count releases are one PLD "
    "with sigma / sqrt(count)). pld_slack is that sum; never_below requires ours >= pld - "
    "pld_slack.",
    "pld_lower: the same releases as PLDs with optimistic rounding (privacy buckets, "
    "pessimistic_estimate=False): a lower bound on the true epsilon, so ours >= pld_lower "
    "is required with no tolerance. The true epsilon lies in [pld_lower, pld].",
    "Thresholded releases (gaussian_threshold: statistics over privately chosen partitions) "
    "consume their delta outright (Bun & Steinke 2016, Section 8): every recomputation below "
    "treats them as their Gaussian releases and converts at delta less the consumed delta "
    "(column consumed_delta), which is what the node's guarantee states; pld_lower is then "
    "a lower bound on that statement, not on the mechanism's exact loss.",
    "sum_of_jobs (cross-job rows): the ledger's epsilon of each job alone, added up. That is "
    "basic composition, which is valid only at delta = jobs x delta; the ledger composes RDP "
    "curves at one delta, so its figure must lie between the largest single job and the sum.",
    "PLD grids: 1e-4 for rows with DP-SGD, 1e-5 for statistics-only rows (1e-3 with "
    "--quick). Laplace rows with many releases have a slack of count x interval.",
)


@dataclass(frozen=True)
class AccountingSettings:
    """The grid of releases to account for, and how finely PLD discretises them."""

    job_epsilons: tuple[float, ...] = (0.5, 1.0, 3.0, 8.0)
    jobs_per_dataset: tuple[int, ...] = (2, 3, 4)
    rising_epsilons: tuple[float, ...] = (0.5, 1.0, 3.0, 8.0)
    """Cross-job rows on the largest department: the first k of these job epsilons."""

    statistic_epsilons: tuple[float, ...] = (0.1, 1.0, 3.0)
    statistic_counts: tuple[int, ...] = (1, 10, 100)
    mixes: int = 5
    """How many of `_mixes`' DP-SGD plus statistics rows to run."""

    extremes_only: bool = False
    """Plan jobs on the smallest and largest department only (not all four)."""

    pld_interval_sgd: float = 1e-4
    pld_interval_statistics: float = 1e-5


@dataclass(frozen=True)
class _Case:
    """One row: releases recorded on one dataset, as ledger rounds."""

    family: str
    label: str
    rounds: tuple[tuple[str, int, PrivacyEvent], ...]
    """(job id, round, event) in the order the node would reserve them."""

    delta: float
    info: dict[str, Any]
    jobs: tuple[tuple[PrivacyEvent, ...], ...] = ()
    """Per job, its events: cross-job rows report each job's own epsilon."""

    @property
    def events(self) -> list[PrivacyEvent]:
        return [event for _, _, event in self.rounds]


@dataclass(frozen=True)
class _Department:
    name: str
    n_train: int


def _job_rounds(job_id: str, plan: DpPlan) -> tuple[tuple[str, int, PrivacyEvent], ...]:
    return tuple((job_id, r, event) for r, event in enumerate(plan.events_for(plan.rounds), 1))


def _plan(spec: RiskJobSpec, epsilon: float, n_train: int) -> DpPlan:
    return plan_dp(dataclasses.replace(spec, epsilon=epsilon), n_train)


def _plan_info(plan: DpPlan) -> dict[str, Any]:
    return {
        "noise_multiplier": plan.noise_multiplier,
        "sample_rate": plan.sample_rate,
        "steps_per_round": plan.steps_per_round,
        "rounds": plan.rounds,
    }


def _single_jobs(
    spec: RiskJobSpec, departments: list[_Department], settings: AccountingSettings
) -> list[_Case]:
    cases = []
    for eps in settings.job_epsilons:
        for dept in departments:
            plan = _plan(spec, eps, dept.n_train)
            cases.append(
                _Case(
                    family="dp-sgd job",
                    label=f"{dept.name} ({dept.n_train} rows), job ε={eps:g}",
                    rounds=_job_rounds("job-1", plan),
                    delta=spec.delta,
                    info={
                        "department": dept.name,
                        "train_rows": dept.n_train,
                        "job_epsilon": eps,
                        **_plan_info(plan),
                    },
                )
            )
    return cases


def _composition(
    family: str, label: str, plans: list[DpPlan], delta: float, info: dict[str, Any]
) -> _Case:
    rounds = tuple(r for j, plan in enumerate(plans, 1) for r in _job_rounds(f"job-{j}", plan))
    jobs = tuple(tuple(plan.events_for(plan.rounds)) for plan in plans)
    return _Case(family, label, rounds, delta, info, jobs)


def _cross_jobs(
    spec: RiskJobSpec, departments: list[_Department], settings: AccountingSettings
) -> list[_Case]:
    cases = []
    for k in settings.jobs_per_dataset:
        for dept in departments:
            plan = _plan(spec, spec.epsilon, dept.n_train)
            cases.append(
                _composition(
                    "cross-job",
                    f"{dept.name}: {k} jobs at ε={spec.epsilon:g}",
                    [plan] * k,
                    spec.delta,
                    {
                        "department": dept.name,
                        "train_rows": dept.n_train,
                        "job_epsilons": [spec.epsilon] * k,
                        **_plan_info(plan),
                    },
                )
            )
    largest = max(departments, key=lambda d: d.n_train)
    for k in settings.jobs_per_dataset:
        epsilons = list(settings.rising_epsilons[:k])
        if len(epsilons) < k:
            continue
        plans = [_plan(spec, eps, largest.n_train) for eps in epsilons]
        cases.append(
            _composition(
                "cross-job",
                f"{largest.name}: jobs at ε=" + "+".join(f"{e:g}" for e in epsilons),
                plans,
                spec.delta,
                {
                    "department": largest.name,
                    "train_rows": largest.n_train,
                    "job_epsilons": epsilons,
                },
            )
        )
    return cases


def _statistics(delta: float, settings: AccountingSettings) -> list[_Case]:
    cases = []
    for eps in settings.statistic_epsilons:
        for count in settings.statistic_counts:
            sigma = gaussian_noise_multiplier(eps, delta, count)
            scale = laplace_scale(eps, count)
            chosen = gaussian_noise_multiplier(eps, delta, count, selection_delta=delta / 2)
            cases.append(
                _Case(
                    "statistics",
                    f"Gaussian sigma={chosen:.4g} x {count}, chosen partitions (δ/2 to "
                    f"selection; calibrated to ε={eps:g})",
                    (("stats-1", 0, GaussianThresholdEvent(chosen, count, delta / 2)),),
                    delta,
                    {
                        "mechanism": "gaussian_threshold",
                        "target_epsilon": eps,
                        "count": count,
                        "noise_multiplier": chosen,
                        "selection_delta": delta / 2,
                    },
                )
            )
            cases.append(
                _Case(
                    "statistics",
                    f"Gaussian sigma={sigma:.4g} x {count} (calibrated to ε={eps:g})",
                    (("stats-1", 0, GaussianEvent(sigma, count)),),
                    delta,
                    {
                        "mechanism": "gaussian",
                        "target_epsilon": eps,
                        "count": count,
                        "noise_multiplier": sigma,
                    },
                )
            )
            cases.append(
                _Case(
                    "statistics",
                    f"Laplace b={scale:.4g} x {count} (calibrated to ε={eps:g})",
                    (("stats-1", 0, LaplaceEvent(scale, count)),),
                    delta,
                    {"mechanism": "laplace", "target_epsilon": eps, "count": count, "scale": scale},
                )
            )
    return cases


def _mixes(spec: RiskJobSpec, largest: _Department, settings: AccountingSettings) -> list[_Case]:
    delta = spec.delta
    plan = _plan(spec, spec.epsilon, largest.n_train)
    job = _job_rounds("job-1", plan)
    second = _job_rounds("job-2", plan)

    def gauss(eps: float, count: int) -> GaussianEvent:
        return GaussianEvent(gaussian_noise_multiplier(eps, delta, count), count)

    def lap(eps: float, count: int) -> LaplaceEvent:
        return LaplaceEvent(laplace_scale(eps, count), count)

    def chosen(eps: float, count: int) -> GaussianThresholdEvent:
        sigma = gaussian_noise_multiplier(eps, delta / 4, count, selection_delta=delta / 8)
        return GaussianThresholdEvent(sigma, count, delta / 8)

    job_label = f"{largest.name} job ε={spec.epsilon:g}"
    mixes: list[tuple[str, tuple[tuple[str, int, PrivacyEvent], ...]]] = [
        (f"{job_label} + Gaussian ε=1 x 10", (*job, ("stats-1", 0, gauss(1.0, 10)))),
        (f"{job_label} + Laplace ε=1 x 10", (*job, ("stats-1", 0, lap(1.0, 10)))),
        (
            f"{job_label} + Gaussian ε=0.5 x 10 + Laplace ε=0.5 x 4",
            (*job, ("stats-1", 0, gauss(0.5, 10)), ("stats-2", 0, lap(0.5, 4))),
        ),
        (
            f"2 x {job_label} + Gaussian ε=1 x 10 + Laplace ε=1 x 10",
            (*job, *second, ("stats-1", 0, gauss(1.0, 10)), ("stats-2", 0, lap(1.0, 10))),
        ),
        (
            f"{job_label} + Gaussian ε=1 x 10 + chosen partitions ε=1 x 4 (δ/8 to selection)",
            (*job, ("stats-1", 0, gauss(1.0, 10)), ("stats-2", 0, chosen(1.0, 4))),
        ),
    ]
    return [
        _Case("mix", label, rounds, delta, {"department": largest.name, **_plan_info(plan)})
        for label, rounds in mixes[: settings.mixes]
    ]


# --- the independent recomputations ---------------------------------------------------------


_RDP_ORDERS = sorted(
    {float(a) for a in dp_accounting.rdp.rdp_privacy_accountant.DEFAULT_RDP_ORDERS}
    | set(DEFAULT_ORDERS)
)


def _left(events: Sequence[PrivacyEvent], delta: float) -> float | None:
    """The delta the recomputations convert at: `delta` less what thresholded releases
    consume; None when nothing is left (the epsilon is then infinite)."""
    left = delta - consumed_delta(events)
    return left if left > 0 else None


def _rdp_epsilon(events: Sequence[PrivacyEvent], delta: float) -> float:
    left = _left(events, delta)
    if left is None:
        return math.inf
    accountant = dp_accounting.rdp.RdpAccountant(orders=_RDP_ORDERS)
    accountant.compose(dp_accounting.ComposedDpEvent([dp_event(e) for e in events]))
    return float(accountant.get_epsilon(left))


def _pld_epsilon(events: Sequence[PrivacyEvent], delta: float, interval: float) -> float:
    left = _left(events, delta)
    if left is None:
        return math.inf
    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=interval)
    accountant.compose(dp_accounting.ComposedDpEvent([dp_event(e) for e in events]))
    return float(accountant.get_epsilon(left))


def _pld_lower_epsilon(events: Sequence[PrivacyEvent], delta: float, interval: float) -> float:
    """Epsilon of the releases' PLDs rounded optimistically: a lower bound on the truth."""
    left = _left(events, delta)
    if left is None:
        return math.inf
    total = None
    for e in events:
        if isinstance(e, DpSgdEvent):
            pld = pld_lib.from_gaussian_mechanism(
                standard_deviation=e.noise_multiplier,
                sampling_prob=e.sample_rate,
                pessimistic_estimate=False,
                value_discretization_interval=interval,
                use_connect_dots=False,
            ).self_compose(e.steps)
        elif isinstance(e, GaussianEvent | GaussianThresholdEvent):
            pld = pld_lib.from_gaussian_mechanism(
                standard_deviation=e.noise_multiplier / math.sqrt(e.count),
                pessimistic_estimate=False,
                value_discretization_interval=interval,
                use_connect_dots=False,
            )
        else:
            pld = pld_lib.from_laplace_mechanism(
                e.scale,
                pessimistic_estimate=False,
                value_discretization_interval=interval,
                use_connect_dots=False,
            ).self_compose(e.count)
        total = pld if total is None else total.compose(pld)
    return 0.0 if total is None else float(total.get_epsilon_for_delta(left))


def _pld_slack(events: Sequence[PrivacyEvent], interval: float) -> float:
    """How far pessimistic rounding may overstate the PLD epsilon (see `NOTES`)."""
    pieces = 0
    for e in events:
        if isinstance(e, DpSgdEvent):
            pieces += e.steps
        elif isinstance(e, GaussianEvent | GaussianThresholdEvent):
            pieces += 1
        else:
            pieces += e.count
    return interval * pieces


@contextlib.contextmanager
def _quiet_dp_accounting() -> Iterator[None]:
    """dp-accounting logs (absl) each fractional order it drops; the notes explain them."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)


# --- one row ------------------------------------------------------------------------------


def _ledger_epsilon(ledger_path: Path, dataset: str, case: _Case) -> float:
    """Records the case's releases round by round in a real ledger; returns what it charges."""
    ledger = SqliteLedger(ledger_path, dataset, Budget(_LEDGER_EPSILON, case.delta), "bench")
    who = Requester(purpose="accounting benchmark", analyst="bench", project="bench")
    for job_id, round, event in case.rounds:
        reservation = ledger.reserve(job_id, round, event, who)
        ledger.commit(reservation, b"")
    return ledger.spent()


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs > 0 else math.nan


def _measure(case: _Case, ledger_path: Path, dataset: str, interval: float) -> dict[str, Any]:
    events = case.events
    has_sgd = any(isinstance(e, DpSgdEvent) for e in events)
    laplace_only = all(isinstance(e, LaplaceEvent) for e in events)
    started = time.perf_counter()
    ours = _ledger_epsilon(ledger_path, dataset, case)
    direct = epsilon_spent(events, case.delta)
    with _quiet_dp_accounting():
        rdp = _rdp_epsilon(events, case.delta)
        pld = _pld_epsilon(events, case.delta, interval)
        pld_lower = _pld_lower_epsilon(events, case.delta, interval)
    rdp_reference = rdp
    if laplace_only:
        pure = math.fsum(e.count / e.scale for e in events if isinstance(e, LaplaceEvent))
        rdp_reference = min(rdp, pure)
    tolerance = RDP_TOLERANCE_DP_SGD if has_sgd else RDP_TOLERANCE_CLOSED_FORM
    slack = _pld_slack(events, interval)
    checks = {
        "above_pld_minus_slack": ours >= pld - slack,
        "above_pld_lower": ours >= pld_lower,
        "above_rdp_within_tolerance": ours >= rdp_reference * (1.0 - tolerance),
    }
    record: dict[str, Any] = {
        "family": case.family,
        "label": case.label,
        "delta": case.delta,
        "releases": [{"mechanism": e.mechanism.value, **e.params()} for e in events],
        "consumed_delta": consumed_delta(events),
        "ledger_rounds": len(case.rounds),
        **case.info,
        "ours": ours,
        "ledger_equals_accounting": ours == direct,
        "rdp": rdp,
        "rdp_reference": rdp_reference,
        "rdp_tolerance": tolerance,
        "pld": pld,
        "pld_lower": pld_lower,
        "pld_interval": interval,
        "pld_slack": slack,
        "ratio_ours_rdp": _ratio(ours, rdp_reference),
        "ratio_ours_pld": _ratio(ours, pld),
        **checks,
        "never_below": all(checks.values()),
    }
    if case.jobs:
        singles = [epsilon_spent(list(job), case.delta) for job in case.jobs]
        record["single_job_epsilons"] = singles
        record["sum_of_jobs"] = math.fsum(singles)
        record["ratio_ours_sum"] = _ratio(ours, record["sum_of_jobs"])
        record["between_max_job_and_sum"] = max(singles) <= ours <= record["sum_of_jobs"]
    record["seconds"] = time.perf_counter() - started
    return record


def _departments(spec: RiskJobSpec) -> list[_Department]:
    """Each demo department's planned training rows, from its officer's public figure."""
    demo = DemoDepartments()
    try:
        return [
            _Department(d.name, planned_rows(load_node_config(d.config_path)))
            for d in demo.departments
        ]
    finally:
        demo.close()


def run(
    settings: AccountingSettings, out_dir: Path, command: str, console: Console
) -> tuple[Path, bool]:
    """Account for every row, print the table and summary, write the JSON.

    Returns:
        The JSON's path, and whether every row passed (see `main`).
    """
    spec = load_job_spec(DEMO_SPEC)
    with console.status("writing the demo departments"):
        departments = _departments(spec)
    largest = max(departments, key=lambda d: d.n_train)
    planned = departments
    if settings.extremes_only:
        planned = [min(departments, key=lambda d: d.n_train), largest]
    cases = [
        *_single_jobs(spec, planned, settings),
        *_cross_jobs(spec, planned, settings),
        *_statistics(spec.delta, settings),
        *_mixes(spec, largest, settings),
    ]
    records = []
    with tempfile.TemporaryDirectory(prefix="silobridge-bench-accounting-") as tmp:
        ledger_path = Path(tmp) / "ledger.sqlite"
        for i, case in enumerate(cases):
            has_sgd = any(isinstance(e, DpSgdEvent) for e in case.events)
            interval = settings.pld_interval_sgd if has_sgd else settings.pld_interval_statistics
            with console.status(f"[{i + 1}/{len(cases)}] {case.label}"):
                records.append(_measure(case, ledger_path, f"row-{i}", interval))
    summary = _summary(records)
    payload = {
        **environment(command),
        "benchmark": "BENCHMARKS.md section 2: privacy accounting is correct",
        "data": {
            "job_spec": str(DEMO_SPEC.relative_to(DEMO_SPEC.parents[2])),
            "departments": [dataclasses.asdict(d) for d in departments],
        },
        "settings": {
            **dataclasses.asdict(settings),
            "delta": spec.delta,
            "rdp_orders": _RDP_ORDERS,
            "rdp_tolerance_dp_sgd": RDP_TOLERANCE_DP_SGD,
            "rdp_tolerance_closed_form": RDP_TOLERANCE_CLOSED_FORM,
            "dp_accounting": _dp_accounting_version(),
            "notes": list(NOTES),
        },
        "summary": summary,
        "records": records,
    }
    path = write_result(out_dir, NAME, payload)
    _print(console, records, summary)
    return path, bool(summary["never_below"] and summary["ledger_equals_accounting"])


def _dp_accounting_version() -> str:
    from importlib import metadata

    return metadata.version("dp-accounting")


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    pld_ratios = [r["ratio_ours_pld"] for r in records if math.isfinite(r["ratio_ours_pld"])]
    rdp_ratios = [r["ratio_ours_rdp"] for r in records if math.isfinite(r["ratio_ours_rdp"])]
    loosest = max(records, key=lambda r: r["ratio_ours_pld"] if r["pld"] > 0 else 0.0)
    per_family: dict[str, dict[str, float]] = {}
    for family in dict.fromkeys(r["family"] for r in records):
        ratios = [
            r["ratio_ours_pld"]
            for r in records
            if r["family"] == family and math.isfinite(r["ratio_ours_pld"])
        ]
        per_family[family] = {"max": max(ratios), "median": statistics.median(ratios)}
    return {
        "rows": len(records),
        "never_below": all(r["never_below"] for r in records),
        "failures": [r["label"] for r in records if not r["never_below"]],
        "ledger_equals_accounting": all(r["ledger_equals_accounting"] for r in records),
        "max_ratio_ours_pld": max(pld_ratios),
        "median_ratio_ours_pld": statistics.median(pld_ratios),
        "loosest_vs_pld": loosest["label"],
        "ratio_ours_pld_by_family": per_family,
        "max_ratio_ours_pld_lower": max(
            r["ours"] / r["pld_lower"] for r in records if r["pld_lower"] > 0
        ),
        "min_ratio_ours_rdp": min(rdp_ratios),
        "max_ratio_ours_rdp": max(rdp_ratios),
    }


def _print(console: Console, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    table = Table(title="Privacy accounting: the ledger's ε against dp-accounting (δ = 1e-5)")
    for column in ("row", "ours", "RDP", "PLD", "PLD lower", "ours/RDP", "ours/PLD", "ok"):
        table.add_column(column, justify="left" if column == "row" else "right")
    family = None
    for r in records:
        if r["family"] != family:
            family = r["family"]
            table.add_section()
        row = r["label"]
        if "sum_of_jobs" in r:
            row += f" (sum of jobs {r['sum_of_jobs']:.3f})"
        table.add_row(
            row,
            f"{r['ours']:.4f}",
            f"{r['rdp_reference']:.4f}",
            f"{r['pld']:.4f}",
            f"{r['pld_lower']:.4f}",
            f"{r['ratio_ours_rdp']:.4f}",
            f"{r['ratio_ours_pld']:.3f}",
            "yes" if r["never_below"] else "[red]BELOW[/red]",
        )
    console.print(table)
    verdict = (
        "never below"
        if summary["never_below"]
        else f"BELOW in {len(summary['failures'])} rows: " + "; ".join(summary["failures"])
    )
    console.print(
        f"accounting: {summary['rows']} rows, ours {verdict} the independent recomputations; "
        f"ours/PLD max {summary['max_ratio_ours_pld']:.3f} ({summary['loosest_vs_pld']}), "
        f"median {summary['median_ratio_ours_pld']:.3f} (at most "
        f"{summary['max_ratio_ours_pld_lower']:.3f}x the true ε's lower bound); ours/RDP "
        f"{summary['min_ratio_ours_rdp']:.4f} to {summary['max_ratio_ours_rdp']:.4f}"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.accounting", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small grid, coarse PLD")
    parser.add_argument("--out", type=Path, default=Path("results"), help="JSON folder")
    return parser.parse_args(argv)


QUICK = AccountingSettings(
    job_epsilons=(1.0, 8.0),
    jobs_per_dataset=(2,),
    rising_epsilons=(1.0, 8.0),
    statistic_epsilons=(1.0,),
    statistic_counts=(1, 10),
    mixes=2,
    extremes_only=True,
    pld_interval_sgd=1e-3,
    pld_interval_statistics=1e-3,
)


def main(argv: Sequence[str] | None = None, *, via: str | None = None) -> int:
    """Entry point: `python -m bench.accounting [--quick] [--out DIR]`.

    Args:
        argv: The flags (default: the process's own).
        via: The command that really ran, when another module called this one.

    Returns:
        0, or 1 when any row's epsilon is below an independent recomputation beyond the
        stated tolerance (or a ledger charged other than `epsilon_spent` of its events).
    """
    args = _parse(argv)
    settings = QUICK if args.quick else AccountingSettings()
    command = command_line("accounting", argv, via)
    console = make_console()
    path, passed = run(settings, args.out, command, console)
    console.print(f"wrote {path}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
