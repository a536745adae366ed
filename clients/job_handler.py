"""A node's answer to one job message: check policy, check budget, reserve, train, commit.

Flower-free so it can be tested directly; `client_app.py` adapts it to Flower messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clients.column_policy import PolicyDecision, check_job_columns
from clients.ledger import DuplicateRelease, Ledger, Requester
from clients.node_audit import audit_path_for, log_budget_change
from clients.node_config import NodeConfig, load_node_config
from clients.node_dataset import load_job_frames
from clients.reply_codec import decode_reply, encode_reply
from clients.sqlite_ledger import SqliteLedger
from vocab.accounting import epsilon_spent
from vocab.approval import JobClaims
from vocab.audit_chain import ChainHead
from vocab.audit_log import AuditLog
from vocab.errors import (
    BudgetExceeded,
    InternalError,
    PolicyRefusal,
    RefusalCode,
    SilobridgeError,
)
from vocab.jobspec import RiskJobSpec
from vocab.metrics import HoldoutSummary
from vocab.privacy import PrivacyEvent
from vocab.serde import job_to_bytes
from vocab.wire import NodeQuote, NodeReport, ReplyStatus

__all__ = ["JobOutcome", "JobRequest", "handle_quote", "handle_request", "log_malformed"]

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


def _requester(spec: RiskJobSpec) -> Requester:
    return Requester(purpose=spec.purpose, analyst=spec.analyst, project=spec.project)


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


def _where(job_id: str, round: int) -> dict[str, Any]:
    return {"job_id": job_id, "round": round}


def fingerprint(spec: RiskJobSpec) -> str:
    """What a retried round must match to be resumed or answered again: the exact spec."""
    return hashlib.sha256(job_to_bytes(spec)).hexdigest()


def _check_policy(
    cfg: NodeConfig, spec: RiskJobSpec, audit: AuditLog | None, job_id: str, epsilon: float
) -> PolicyDecision:
    """Column classes and signed approvals, before any data is read; logs approvals used.

    `epsilon` is what the approvals' maximum must cover: the job's own, or - once the node
    has priced the job at its own delta - the larger of the two.
    """
    claims = dataclasses.replace(JobClaims.from_spec(spec), epsilon=epsilon)
    decision: PolicyDecision = check_job_columns(cfg, claims)
    if audit is not None:
        for used in decision.approvals:
            audit.append("approval", {"job_id": job_id, **used.audit_record()})
    return decision


def _check_round(spec: RiskJobSpec, round: int) -> None:
    if not 1 <= round <= spec.rounds:
        raise PolicyRefusal(
            f"job {spec.name!r} has rounds 1 to {spec.rounds}; round {round} is not one of them",
            "the coordinator asks only for the rounds the job spec names",
        )


def _check_job_total(ledger: Ledger, spec: RiskJobSpec, job_id: str, event: PrivacyEvent) -> None:
    """The job never costs more than its own epsilon, whatever the coordinator asks."""
    total = epsilon_spent([*ledger.job_events(job_id), event], spec.delta)
    if total > spec.epsilon:
        raise PolicyRefusal(
            f"another round of job {spec.name!r} would bring it to epsilon {total:.4f} at delta "
            f"{spec.delta:g}, above the job's own epsilon {spec.epsilon:g}",
            "the job has used its epsilon; start a new job",
        )


def _serve(cfg: NodeConfig, ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome:
    # Imports torch/opacus only once policy and config checks have passed.
    from clients.dp_trainer import evaluate, plan_dp, train_round
    from vocab.features import encode_features, encode_target
    from vocab.models import build_model, get_weights, set_weights

    spec = req.spec
    if req.train:
        _check_round(spec, req.round)
    elif ledger.committed_rounds(req.job_id) == 0:
        # Evaluation statistics are not charged: only a job that trained here gets them.
        raise PolicyRefusal(
            f"job {spec.name!r} trained no round on this node, so it gets no evaluation",
            "evaluation follows training on the same node",
        )
    decision = _check_policy(cfg, spec, audit, req.job_id, spec.epsilon)
    train_df, holdout_df = load_job_frames(cfg, JobClaims.from_spec(spec))
    model = build_model(spec)
    try:
        set_weights(model, req.weights)
    except (ValueError, RuntimeError) as err:
        raise InternalError(f"coordinator weights do not fit the spec's model: {err}") from err
    holdout = evaluate(model, encode_features(holdout_df, spec), encode_target(holdout_df, spec))
    if not req.train:
        report = NodeReport(cfg.department, ReplyStatus.OK, **_figures(ledger, req.job_id))
        # One evaluation per job: a second request gets the first answer again.
        first = ledger.store_evaluation(req.job_id, encode_reply(report, holdout, []))
        stored_report, stored_holdout, _ = decode_reply(first)
        return JobOutcome(stored_report, stored_holdout)

    plan = plan_dp(spec, len(train_df))
    if decision.approvals:
        # Priced at this dataset's delta the job may cost more than it claims: the approvals
        # must cover what it really costs here. (The job alone: no history is needed.)
        priced = epsilon_spent(plan.events_for(spec.rounds), ledger.budget().delta)
        if priced > spec.epsilon:
            _check_policy(cfg, spec, None, req.job_id, priced)
    rounds_left = spec.rounds - req.round + 1
    quote = ledger.quote(plan.events_for(rounds_left), _requester(spec))
    if not quote.fits:
        # Refuse the rest of the job up front rather than spend on rounds it cannot finish.
        raise quote.refusal(f"the remaining {rounds_left} round(s) of job {spec.name!r}")
    event = plan.round_event()
    _check_job_total(ledger, spec, req.job_id, event)
    reservation = ledger.reserve(req.job_id, req.round, event, _requester(spec), fingerprint(spec))
    audit.append(
        "reservation",
        {**_where(req.job_id, req.round), "ledger_entry": reservation.entry_id,
         "mechanism": event.mechanism.value, **event.params(), "resumed": reservation.resumed},
    )  # fmt: skip
    try:
        result = train_round(
            model, encode_features(train_df, spec), encode_target(train_df, spec), spec, plan
        )
        if result.steps != plan.steps_per_round:
            raise InternalError(f"ran {result.steps} steps, charged {plan.steps_per_round}")
        weights = get_weights(result.model)
        if not all(np.all(np.isfinite(w)) for w in weights):
            raise InternalError("training produced non-finite weights")
        # A reservation counts as spent, so these figures already hold after the commit.
        report = NodeReport(
            cfg.department,
            ReplyStatus.OK,
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            steps=result.steps,
            **_figures(ledger, req.job_id),
        )
        payload = encode_reply(report, holdout, weights)
    except BaseException:
        # Nothing left the node: the reservation is released, not charged.
        ledger.cancel(reservation)
        audit.append(
            "cancel", {**_where(req.job_id, req.round), "ledger_entry": reservation.entry_id}
        )
        raise
    ledger.commit(reservation, payload)
    audit.append(
        "charge",
        {**_where(req.job_id, req.round), "ledger_entry": reservation.entry_id,
         "epsilon_spent": report.epsilon_spent, "period": ledger.period()},
    )  # fmt: skip
    log.info("job %s round %d: charged %d DP-SGD steps", req.job_id, req.round, result.steps)
    return JobOutcome(report, holdout, weights)


def _resend(ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome | None:
    """The reply already given for this round or evaluation, if any: same bytes, no charge."""
    if req.train:
        payload = ledger.stored_reply(req.job_id, req.round, fingerprint(req.spec))
    else:
        payload = ledger.stored_evaluation(req.job_id)
    if payload is None:
        return None
    report, holdout, weights = decode_reply(payload)
    audit.append("resend", _where(req.job_id, req.round))
    return JobOutcome(report, holdout, weights or None)


def _answer(cfg: NodeConfig, ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome:
    try:
        return _resend(ledger, audit, req) or _serve(cfg, ledger, audit, req)
    except DuplicateRelease:
        # The round may have been committed by a concurrent attempt since we looked.
        again = _resend(ledger, audit, req)
        if again is None:
            raise
        return again


def _stamp_head(report: NodeReport, head: ChainHead | None) -> NodeReport:
    if head is None:
        return report
    return dataclasses.replace(report, audit_seq=head.seq, audit_head=head.hash)


def _record_outcome(audit: AuditLog, req: JobRequest, outcome: JobOutcome) -> JobOutcome:
    """Log what is about to leave the node, then stamp the chain head on the report."""
    report = outcome.report
    where = _where(req.job_id, req.round)
    if report.status is ReplyStatus.OK:
        released = ["holdout_statistics"] + (["model_update"] if outcome.weights else [])
        audit.append("release", {**where, "released": released})
    else:
        audit.append("refusal", {**where, "code": report.code, "reason": report.reason})
    return dataclasses.replace(outcome, report=_stamp_head(report, audit.head()))


def _open(config_path: Path) -> tuple[NodeConfig, AuditLog]:
    cfg = load_node_config(config_path)
    return cfg, AuditLog(audit_path_for(cfg.ledger_path))


def _log_received(audit: AuditLog, spec: RiskJobSpec, job_id: str, round: int, kind: str) -> None:
    audit.append(
        "job_received",
        {**_where(job_id, round), "job": spec.name, "purpose": spec.purpose,
         "analyst": spec.analyst, "project": spec.project, "kind": kind,
         "columns": list(spec.columns), "epsilon": spec.epsilon, "delta": spec.delta},
    )  # fmt: skip


def handle_request(config_path: Path, department_hint: str, req: JobRequest) -> JobOutcome:
    """Answer one job message. Never raises: every failure becomes a refusal report.

    Every step is appended to the node's hash-chained audit log; a reply carries the log's
    head so the coordinator can anchor it (truncation becomes detectable). A round that
    was already committed is answered with the stored reply (idempotent, never recharged).
    """
    department = department_hint
    ledger: Ledger | None = None
    audit: AuditLog | None = None
    try:
        cfg, audit = _open(config_path)
        department = cfg.department
        _log_received(audit, req.spec, req.job_id, req.round, "train" if req.train else "evaluate")
        ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
        log_budget_change(audit, ledger.config_change)
        outcome = _answer(cfg, ledger, audit, req)
    except SilobridgeError as err:
        log.warning("job %s round %d refused: %s", req.job_id, req.round, err)
        requested = err.requested if isinstance(err, BudgetExceeded) else 0.0
        outcome = _refused(department, err.code, str(err), ledger, req.job_id, requested)
    except Exception as err:  # a daemon answers, it does not crash
        log.exception("job %s round %d failed", req.job_id, req.round)
        # The text of an unexpected error may quote data values: it stays in the node's log.
        reason = (
            str(err)
            if isinstance(err, InternalError)
            else f"bug: {type(err).__name__} at the node; details are in the node's log"
        )
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


def _quote(cfg: NodeConfig, audit: AuditLog, spec: RiskJobSpec, job_id: str) -> NodeQuote:
    from clients.dp_trainer import plan_dp
    from clients.row_count import count_train_rows

    decision = _check_policy(cfg, spec, audit, job_id, spec.epsilon)
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    log_budget_change(audit, ledger.config_change)
    plan = plan_dp(spec, max(1, count_train_rows(cfg, spec.target)))
    quote = ledger.quote(plan.events_for(spec.rounds), _requester(spec))
    if decision.approvals and quote.requested > spec.epsilon:
        _check_policy(cfg, spec, None, job_id, quote.requested)
    refusal = None if quote.fits else quote.refusal(f"job {spec.name!r}")
    return NodeQuote(
        department=cfg.department,
        status=ReplyStatus.OK if refusal is None else ReplyStatus.REFUSED,
        code="" if refusal is None else refusal.code.value,
        reason="" if refusal is None else str(refusal),
        requested=quote.requested,
        scopes=quote.scopes,
    )


def handle_quote(
    config_path: Path, department_hint: str, spec: RiskJobSpec, job_id: str
) -> NodeQuote:
    """Price a whole job without running it. Never raises; charges and releases nothing.

    The node runs every check a real run would - column classes, approvals, every budget
    scope - but reads only the row count the sampling rate needs. A quote is a snapshot:
    the real run checks again.
    """
    audit: AuditLog | None = None
    department = department_hint
    try:
        cfg, audit = _open(config_path)
        department = cfg.department
        _log_received(audit, spec, job_id, 0, "quote")
        quote = _quote(cfg, audit, spec, job_id)
    except SilobridgeError as err:
        quote = NodeQuote(department, ReplyStatus.REFUSED, err.code.value, str(err))
    except Exception as err:  # a daemon answers, it does not crash
        log.exception("quote for job %s failed", job_id)
        quote = NodeQuote(
            department, ReplyStatus.REFUSED, RefusalCode.INTERNAL.value,
            f"bug: {type(err).__name__} at the node; details are in the node's log",
        )  # fmt: skip
    if audit is None:
        return quote
    try:
        audit.append(
            "quote",
            {"job_id": job_id, "would_run": quote.status is ReplyStatus.OK,
             "requested": quote.requested, "code": quote.code, "reason": quote.reason,
             "scopes": [s.scope for s in quote.scopes]},
        )  # fmt: skip
        head = audit.head()
    except Exception as err:
        log.exception("audit log %s cannot be written", audit.path)
        return NodeQuote(
            department, ReplyStatus.REFUSED, RefusalCode.INTERNAL.value,
            f"the node's audit log cannot be written: {err}",
        )  # fmt: skip
    if head is None:
        return quote
    return dataclasses.replace(quote, audit_seq=head.seq, audit_head=head.hash)


def log_malformed(config_path: Path, code: RefusalCode, reason: str) -> ChainHead | None:
    """Logs the refusal of a message that is not a job at all (no job record, a spec that
    does not decode); returns the log's head, or None when the node's log is out of reach."""
    try:
        _, audit = _open(config_path)
        audit.append("refusal", {"job_id": "", "round": 0, "code": code.value, "reason": reason})
        return audit.head()
    except Exception:  # the refusal still goes out; the node's own log says why not here
        log.exception("cannot log the refusal of a malformed message")
        return None
