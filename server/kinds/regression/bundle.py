"""A regression job's result bundle: result.json (coefficients with intervals) and the card."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from server.one_shot import OneShot
from server.spec_record import spec_record
from vocab.bundle import CARD_FILE, RESULT_FILE
from vocab.jobs.regression import Family, RegressionSpec

__all__ = ["render_regression"]

RESULT_SCHEMA = "silobridge.regression.v1"


def _nodes(shots: Sequence[OneShot]) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for shot in shots:
        for report in shot.reports:
            node = nodes.setdefault(report.department, {"releases": []})
            node.update(
                status=report.status.value, code=report.code, reason=report.reason,
                epsilon_job=report.epsilon_job, epsilon_spent=report.epsilon_spent,
                epsilon_budget=report.epsilon_budget, delta=report.delta,
            )  # fmt: skip
            node["releases"].extend(dataclasses.asdict(r) for r in report.releases)
        for department, code, reason in shot.missing:
            node = nodes.setdefault(department, {"releases": []})
            if node.get("status", "ok") == "ok":
                node.update(status="no_answer" if code else "refused", code=code, reason=reason)
    return nodes


def _fmt(value: Any) -> str:
    return "—" if not isinstance(value, float) or not math.isfinite(value) else f"{value:.4g}"


def _card(spec: RegressionSpec, result: dict[str, Any]) -> str:
    fit = result.get("fit") or {}
    if spec.family is Family.LINEAR:
        method = (
            "noisy sufficient statistics (X'X, X'y, y'y with Gaussian noise, one release "
            "per department), pooled and solved with AdaSSP's ridge rule"
        )
    else:
        method = f"DP-SGD over {spec.rounds} round(s), the departments' models averaged"
        if spec.refines:
            method += (
                ", then one Newton step from each department's noisy score and Fisher "
                f"information at that model ({spec.refine_share:.0%} of epsilon planned for it)"
            )
    lines = [
        f"# Model card: {spec.name} ({spec.family.value} regression of {spec.target})",
        "",
        f"- status: **{result['status']}**"
        + (f" — {result['failure']}" if result["failure"] else ""),
        f"- purpose: {spec.purpose or '(none declared)'}; analyst: {spec.analyst or '-'}",
        f"- method: {method}",
        f"- privacy: ({spec.epsilon}, {spec.delta})-DP per department, charged to its ledger",
        f"- target clamped to [{spec.target_lower:g}, {spec.target_upper:g}], features to "
        "their declared bounds (clamping biases coefficients toward zero where data exceed "
        "them); the first level of each categorical feature is the reference",
        f"- departments combined: {', '.join(result['combined']) or 'none'}",
        "",
    ]
    rows = fit.get("coefficients", [])
    if spec.family is Family.LINEAR:
        lines += ["| coefficient | estimate | std error | 95 % interval |", "|---|---|---|---|"]
        lines += [
            f"| {r['name']} | {_fmt(r['estimate'])} | {_fmt(r['std_error'])} | "
            f"[{_fmt(r['lower'])}, {_fmt(r['upper'])}] |"
            for r in rows
        ]
        if rows:
            summary = (
                f"RMSE (noisy estimate): {_fmt(fit.get('rmse'))}; rows (noisy): "
                f"{_fmt(fit.get('n_estimate'))}; ridge: {_fmt(fit.get('ridge'))}"
            )
            lines += ["", summary]
    elif fit.get("refined"):
        lines += [
            "| coefficient | estimate (log rate) | std error | 95 % interval | rate ratio "
            "(95 % interval) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['name']} | {_fmt(r['estimate'])} | {_fmt(r['std_error'])} | "
            f"[{_fmt(r['lower'])}, {_fmt(r['upper'])}] | {_fmt(r['rate_ratio'])} "
            f"[{_fmt(r['rate_ratio_lower'])}, {_fmt(r['rate_ratio_upper'])}] |"
            for r in rows
        ]
        lines += [
            "",
            f"Dispersion (quasi-Poisson, >= 1): {_fmt(fit.get('dispersion'))}; weakest "
            f"direction's information: {_fmt(fit.get('weakest_snr'))} noise stds. Intervals "
            "cover sampling and DP noise, conditional on the DP-SGD start.",
        ]
    else:
        lines += ["| coefficient | estimate (log rate) | rate ratio |", "|---|---|---|"]
        lines += [
            f"| {r['name']} | {_fmt(r['estimate'])} | {_fmt(r['rate_ratio'])} |" for r in rows
        ]
        if rows:
            why = fit.get("note") or "the job did not refine (refine_share = 0)"
            lines += ["", f"No standard errors: {why}."]
    return "\n".join(lines) + "\n"


def render_regression(
    spec: RegressionSpec,
    job_id: str,
    *,
    status: str,
    failure: str,
    fit: dict[str, Any] | None,
    shots: Sequence[OneShot],
    combined: Sequence[str],
    seconds: float,
) -> dict[str, bytes]:
    """The bundle's files: the fit (post-processing of the nodes' noisy releases) and the
    public figures of each node's ledger."""
    result = {
        "schema": RESULT_SCHEMA,
        "job_id": job_id,
        "kind": spec.kind,
        "family": spec.family.value,
        "status": status,
        "failure": failure,
        "job": spec_record(spec),
        "combined": list(combined),
        "fit": fit,
        "nodes": _nodes(shots),
        "seconds": round(seconds, 3),
    }
    text = json.dumps(result, indent=2, default=lambda v: None)
    return {RESULT_FILE: text.encode(), CARD_FILE: _card(spec, result).encode()}
