"""A node's answer to one job message: check policy, check budget, reserve, train, commit.

Flower-free so it can be tested directly; `client_app.py` adapts it to Flower messages.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clients.audit_paths import audit_path_for
from clients.ledger import Ledger
from clients.node_config import NodeConfig, load_node_config
from clients.node_dataset import load_job_frames
from clients.sqlite_ledger import SqliteLedger
from vocab.audit_log import AuditLog
from vocab.errors import BudgetExceeded, InternalError, RefusalCode, SilobridgeError
from vocab.jobspec import RiskJobSpec
from vocab.metrics import HoldoutSummary
from vocab.wire import NodeReport, ReplyStatus

__all__ = ["JobOutcome", "JobRequest", "handle_request"]

log = logging.getLogger(__name__)

Weights = list[npt.NDArray[np.float32]]


@dataclass(frozen=True)
class JobRequest:
    """One message from the coordinator: train a round, or evaluate the final model."""

    spec: RiskJobSpec
    job_id: str
    round: int
    weights: Weights
    train: bool


@dataclass(frozen=True)
class JobOutcome:
    """The node's reply: always a report; weights only for a charged training round."""

    report: NodeReport
    holdout: HoldoutSummary | None = None
    weights: Weights | None = None


def _figures(ledger: Ledger, job_id: str) -> dict[str, Any]:
    budget = ledger.budget()
    return {
        "epsilon_job": ledger.job_epsilon(job_id),
        "epsilon_spent": ledger.spent(),
        "epsilon_budget": budget.epsilon,
        "delta": budget.delta,
    }


def _refused(
    department: str,
    code: RefusalCode,
    reason: str,
    ledger: Ledger | None,
    job_id: str,
    requested: float = 0.0,
) -> JobOutcome:
    try:
        figures = _figures(ledger, job_id) if ledger is not None else {}
    except Exception:  # a broken ledger must not stop the refusal from going out
        log.exception("could not read ledger figures for a refusal")
        figures = {}
    return JobOutcome(
        NodeReport(
            department=department,
            status=ReplyStatus.REFUSED,
            code=code.value,
            reason=reason,
            requested=requested,
            **figures,
        )
    )


def _serve(cfg: NodeConfig, ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome:
    # Imports torch/opacus only once policy and config checks have passed.
    from clients.dp_trainer import evaluate, plan_dp, train_round
    from vocab.features import encode_features, encode_target
    from vocab.models import build_model, get_weights, set_weights

    spec = req.spec
    # load_job_frames checks the column policy before it touches any data.
    train_df, holdout_df = load_job_frames(cfg, spec.columns, spec.name)
    model = build_model(spec)
    try:
        set_weights(model, req.weights)
    except (ValueError, RuntimeError) as err:
        raise InternalError(f"coordinator weights do not fit the spec's model: {err}") from err
    holdout = evaluate(model, encode_features(holdout_df, spec), encode_target(holdout_df, spec))
    if not req.train:
        return JobOutcome(
            NodeReport(cfg.department, ReplyStatus.OK, **_figures(ledger, req.job_id)), holdout
        )

    plan = plan_dp(spec, len(train_df))
    rounds_left = spec.rounds - req.round + 1
    quote = ledger.quote(plan.events_for(rounds_left))
    if not quote.fits:
        # Refuse the rest of the job up front rather than spend on rounds it cannot finish.
        raise BudgetExceeded(
            requested=quote.requested,
            spent=quote.spent,
            remaining=quote.remaining,
            budget=quote.budget.epsilon,
            scope=f"the remaining {rounds_left} round(s) of job {spec.name!r}",
        )
    event = plan.round_event()
    reservation = ledger.reserve(req.job_id, req.round, event)
    audit.append(
        "reservation",
        {
            **_where(req),
            "ledger_entry": reservation.entry_id,
            "noise_multiplier": event.noise_multiplier,
            "sample_rate": event.sample_rate,
            "steps": event.steps,
        },
    )
    try:
        result = train_round(
            model, encode_features(train_df, spec), encode_target(train_df, spec), spec, plan
        )
        if result.steps != plan.steps_per_round:
            raise InternalError(f"ran {result.steps} steps, charged {plan.steps_per_round}")
        weights = get_weights(result.model)
        if not all(np.all(np.isfinite(w)) for w in weights):
            raise InternalError("training produced non-finite weights")
    except BaseException:
        # Nothing left the node: the reservation is released, not charged.
        ledger.cancel(reservation)
        audit.append("cancel", {**_where(req), "ledger_entry": reservation.entry_id})
        raise
    ledger.commit(reservation)
    audit.append(
        "charge",
        {**_where(req), "ledger_entry": reservation.entry_id, "epsilon_spent": ledger.spent()},
    )
    log.info("job %s round %d: charged %d DP-SGD steps", req.job_id, req.round, result.steps)
    report = NodeReport(
        cfg.department,
        ReplyStatus.OK,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=result.steps,
        **_figures(ledger, req.job_id),
    )
    return JobOutcome(report, holdout, weights)


def _where(req: JobRequest) -> dict[str, Any]:
    return {"job_id": req.job_id, "round": req.round}


def _record_outcome(audit: AuditLog, req: JobRequest, outcome: JobOutcome) -> JobOutcome:
    """Log what is about to leave the node, then stamp the chain head on the report."""
    report = outcome.report
    if report.status is ReplyStatus.OK:
        released = ["holdout_statistics"] + (["model_update"] if outcome.weights else [])
        audit.append("release", {**_where(req), "released": released})
    else:
        audit.append("refusal", {**_where(req), "code": report.code, "reason": report.reason})
    head = audit.head()
    if head is None:
        return outcome
    return dataclasses.replace(
        outcome, report=dataclasses.replace(report, audit_seq=head.seq, audit_head=head.hash)
    )


def handle_request(config_path: Path, department_hint: str, req: JobRequest) -> JobOutcome:
    """Answer one job message. Never raises: every failure becomes a refusal report.

    Every step is appended to the node's hash-chained audit log; a reply carries the log's
    head so the coordinator can anchor it (truncation becomes detectable).
    """
    department = department_hint
    ledger: Ledger | None = None
    audit: AuditLog | None = None
    try:
        cfg = load_node_config(config_path)
        department = cfg.department
        audit = AuditLog(audit_path_for(cfg.ledger_path))
        audit.append(
            "job_received",
            {**_where(req), "job": req.spec.name, "purpose": req.spec.purpose,
             "kind": "train" if req.train else "evaluate", "columns": list(req.spec.columns),
             "epsilon": req.spec.epsilon, "delta": req.spec.delta},
        )  # fmt: skip
        ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
        outcome = _serve(cfg, ledger, audit, req)
    except SilobridgeError as err:
        log.warning("job %s round %d refused: %s", req.job_id, req.round, err)
        requested = err.requested if isinstance(err, BudgetExceeded) else 0.0
        outcome = _refused(department, err.code, str(err), ledger, req.job_id, requested)
    except Exception as err:  # a daemon answers, it does not crash
        log.exception("job %s round %d failed", req.job_id, req.round)
        reason = str(err) if isinstance(err, InternalError) else f"bug: {type(err).__name__}: {err}"
        outcome = _refused(department, RefusalCode.INTERNAL, reason, ledger, req.job_id)
    if audit is None:
        return outcome
    try:
        return _record_outcome(audit, req, outcome)
    except Exception as err:
        # Nothing leaves the node unlogged: an update that cannot be recorded is withheld.
        log.exception("audit log %s cannot be written", audit.path)
        return _refused(
            department,
            RefusalCode.INTERNAL,
            f"the node's audit log cannot be written: {err}",
            ledger,
            req.job_id,
        )
