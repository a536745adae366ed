"""Writes a job's result bundle: weights, result.json and a human-readable model card."""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np

from server.kinds.risk.rounds import JobOutcome
from vocab.bundle import CARD_FILE, RESULT_FILE, TORCH_FILE, WEIGHTS_FILE
from vocab.jobspec import RiskJobSpec
from vocab.target import TargetCondition

__all__ = ["render_bundle"]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


_DEFAULTED = (
    '"auto": each node chose it from public figures only - epsilon, delta, model, rounds, '
    "min_nodes and its officer's size figure (docs/job-spec.md, Defaults)"
)


def _set(value: float | None) -> str:
    return "auto" if value is None else f"{value:g}"


def _spec_dict(spec: RiskJobSpec) -> dict[str, Any]:
    data = asdict(spec)
    data.pop("_budget", None)
    data["model"] = spec.model.value
    data["aggregator"] = spec.aggregator.value
    data["evaluation"] = spec.evaluation.value
    return data


def _nodes(outcome: JobOutcome) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for tally in outcome.nodes.values():
        report = tally.last_report
        training = tally.training
        # Two nodes claiming one department (or two silent ones) must not overwrite.
        key = (
            tally.department
            if tally.department not in nodes
            else f"{tally.department}#{tally.node_id}"
        )
        nodes[key] = {
            "node_id": str(tally.node_id),
            "rounds": tally.rounds,
            "epsilon_spent": report.epsilon_job if report else 0.0,
            "epsilon_dataset_spent": report.epsilon_spent if report else None,
            "epsilon_budget": report.epsilon_budget if report else None,
            "epsilon_remaining": (
                max(0.0, report.epsilon_budget - report.epsilon_spent) if report else None
            ),
            "delta": report.delta if report else None,
            # The training rounds' DP-SGD figures (an evaluation's report carries none).
            "noise_multiplier": training.noise_multiplier if training else None,
            "sample_rate": training.sample_rate if training else None,
            "steps_per_round": training.steps if training else None,
            "releases": [asdict(r) for r in tally.releases],
            "refusals": tally.refusals,
            # The node's audit-log head as of its last reply: an anchor against truncation.
            "audit_head": (
                {"seq": report.audit_seq, "hash": report.audit_head}
                if report and report.audit_seq
                else None
            ),
        }
    return nodes


def _result(outcome: JobOutcome) -> dict[str, Any]:
    return {
        "schema": "silobridge.result.v2",
        "job_id": outcome.job_id,
        "status": outcome.status,
        "failure": outcome.failure,
        "job": _spec_dict(outcome.spec),
        "rounds": [
            {
                "round": r.round,
                "participants": list(r.participants),
                "refused": list(r.refused),
                "metrics_after_round": {k: _finite(v) for k, v in r.metrics.items()},
                "seconds": round(r.seconds, 3),
            }
            for r in outcome.rounds
        ],
        "metrics": {k: _finite(v) for k, v in outcome.final_metrics.items()},
        "metrics_privacy": "differentially private: each node released a held-out score "
        "histogram with discrete Gaussian noise (sensitivity 1), charged to its ledger as "
        "part of this job (see each node's releases); *_se is the noise's standard error",
        "nodes": _nodes(outcome),
        "seconds": round(outcome.seconds, 3),
    }


def _releases_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| department | round | release | mechanism | parameters | epsilon (alone) |",
        "|---|---|---|---|---|---|",
    ]
    for dept, n in sorted(result["nodes"].items()):
        for r in n["releases"]:
            params = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in r["params"].items()
            )
            lines.append(
                f"| {dept} | {r['round']} | {r['what']} | {r['mechanism']} | {params} | "
                f"{r['epsilon']:.4f} |"
            )
    return lines


def _card(outcome: JobOutcome, result: dict[str, Any]) -> str:
    spec = outcome.spec
    m = result["metrics"]
    share = (
        "no evaluation"
        if not spec.evaluations
        else f"{spec.evaluations} evaluation(s) ({spec.evaluation.value}), "
        f"{spec.evaluation_share:.0%} of the job's epsilon on their own"
    )
    lines = [
        f"# Model card: {spec.name}",
        "",
        f"- **Status**: {outcome.status}" + (f" — {outcome.failure}" if outcome.failure else ""),
        f"- **Job id**: `{outcome.job_id}`",
        f"- **Purpose**: {spec.purpose or '(not stated)'}",
        f"- **Analyst / project**: {spec.analyst or '(not stated)'} / "
        f"{spec.project or '(not stated)'}",
        f"- **Model**: {spec.model.value} binary classifier of "
        f"`{TargetCondition.parse(spec.positive).describe(spec.target)}` on "
        f"{len(spec.features)} features "
        f"({', '.join(f.column for f in spec.features)})",
        f"- **Training**: {spec.rounds} federated rounds x {_set(spec.local_epochs)} local "
        f"epoch(s), aggregator {spec.aggregator.value}, DP-SGD (Opacus) with Poisson "
        f"sampling, per-sample clipping at {_set(spec.max_grad_norm)}, batch "
        f"{_set(spec.batch_size)}, learning rate {_set(spec.learning_rate)}"
        + (f" ({_DEFAULTED})" if spec.left_to_nodes else ""),
        f"- **Evaluation**: {share}",
        "",
        "## Privacy guarantee",
        "",
        f"Each department's rows are protected by ({spec.epsilon}, {spec.delta})-differential "
        "privacy for this whole job - every training round and every evaluation composed - "
        "at the unit of privacy that the department's node config declares (a record, or a "
        "person when a person-id column is set). Every number a node sent is a release "
        "charged to its own ledger *before* it left (a DP-SGD model update, or a noisy "
        "held-out histogram), or a figure computed from public parameters (epsilons, noise "
        "multipliers, sampling rates planned from the officer's public size figure). The "
        "noise comes from a cryptographically secure generator at the node. Across jobs, each "
        "node composes all releases on its dataset against its officer's budget.",
        "",
        "| department | rounds | epsilon (this job) | dataset spent / budget | delta | refusals |",
        "|---|---|---|---|---|---|",
    ]
    for dept, n in sorted(result["nodes"].items()):
        spent = n["epsilon_dataset_spent"]
        budget = n["epsilon_budget"]
        used = f"{spent:.3f} / {budget:.3f}" if spent is not None and budget else "-"
        refusals = "; ".join(f"round {r['round']}: {r['code']}" for r in n["refusals"]) or "none"
        lines.append(
            f"| {dept} | {len(n['rounds'])} | {n['epsilon_spent']:.3f} | {used} | "
            f"{n['delta'] if n['delta'] is not None else '-'} | {refusals} |"
        )
    lines += ["", "## Every release", "", *_releases_table(result)]
    auc, acc = m.get("auc"), m.get("accuracy")
    lines += [
        "",
        "## Evaluation",
        "",
        f"Pooled over the departments' held-out rows (never used for training), from noisy "
        f"histograms: AUC {auc:.3f} ± {m.get('auc_se') or float('nan'):.3f}, accuracy "
        f"{acc:.3f} ± {m.get('accuracy_se') or float('nan'):.3f} (± is the standard error "
        "the DP noise alone causes)."
        if auc is not None and acc is not None
        else "No evaluation is available (the spec turned it off, or no node evaluated).",
        "",
        "These figures are differentially private: each node counted its held-out rows by "
        "class and predicted-probability bin (edges "
        f"{', '.join(f'{t:g}' for t in spec.thresholds)}), added discrete Gaussian noise to "
        "every count and charged that release to its ledger. They are coarse by design.",
        "",
        "## Files",
        "",
        f"- `{WEIGHTS_FILE}` / `{TORCH_FILE}`: final weights (numpy arrays / torch state dict)",
        f"- `{RESULT_FILE}`: machine-readable result (spec, rounds, metrics, per-node releases)",
    ]
    return "\n".join(lines) + "\n"


def render_bundle(outcome: JobOutcome) -> dict[str, bytes]:
    """The bundle's files: result.json, the model card and (if trained) the weights."""
    import torch

    from vocab.models import build_model, set_weights

    files: dict[str, bytes] = {}
    if outcome.weights and outcome.status == "succeeded":
        buffer = io.BytesIO()
        np.savez(buffer, *outcome.weights)
        files[WEIGHTS_FILE] = buffer.getvalue()
        model = build_model(outcome.spec)
        set_weights(model, outcome.weights)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        files[TORCH_FILE] = buffer.getvalue()
    result = _result(outcome)
    files[CARD_FILE] = _card(outcome, result).encode()
    files[RESULT_FILE] = json.dumps(result, indent=2).encode()
    return files
