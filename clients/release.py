"""The one guarded path every job kind's release takes at the node.

answer again if answered -> plan (the kind) -> price once -> admit once -> reserve ->
execute (the kind) -> commit with the reply -> audit. A quote is the same path stopped
after admission.

Every number a reply carries is a charged release (a DP-SGD update, a noisy held-out
histogram, noisy statistics) or follows from public figures (the plan, the ledger's
epsilons). Once the noisy computation has started its charge stands, whatever happens next.

Flower-free so it can be tested directly; `client_app.py` adapts it to Flower messages.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from clients.kinds.base import JobRequest, NodeKind, Released
from clients.kinds.registry import node_kind
from clients.ledger.ledger import (
    ApprovalCap,
    DuplicateRelease,
    Ledger,
    Quote,
    Requester,
    Reservation,
)
from clients.ledger.node_audit import log_budget_change, node_audit_log, release_digest
from clients.ledger.reply_codec import JobOutcome, decode_reply, encode_reply
from clients.ledger.round_lock import RunSlots
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig, load_node_config
from clients.policy.column_policy import PolicyDecision, check_job_columns
from clients.runtime.app_identity import running_app_hash
from vocab.accounting import epsilon_spent
from vocab.approval import JobClaims
from vocab.audit_chain import SignedHead
from vocab.audit_log import AuditLog
from vocab.errors import (
    BudgetExceeded,
    ConfigError,
    DataError,
    InternalError,
    JobSpecError,
    RefusalCode,
    SilobridgeError,
)
from vocab.identity_key import public_identity_from_pem
from vocab.job_claim import claim_holds
from vocab.privacy import PrivacyEvent
from vocab.serde import spec_fingerprint
from vocab.spec import JobEnvelope
from vocab.wire import NodeQuote, NodeReport, NodeSchema, ReplyStatus

__all__ = [
    "JobOutcome",
    "JobRequest",
    "NodeBusy",
    "OtherDataset",
    "check_claim",
    "handle_quote",
    "handle_request",
    "log_malformed",
    "logged_answer",
    "open_node",
    "public_reason",
    "refusal",
]

log = logging.getLogger(__name__)

Kind = NodeKind[Any, Any, Any]


class NodeBusy(SilobridgeError):
    """The node is answering as many job messages as its [limits] allow."""

    code = RefusalCode.BUSY

    def __init__(self, slots: int) -> None:
        super().__init__(
            f"the node is already answering {slots} job message(s), its limit, and none "
            "finished in time",
            "retry later; the node's officer sets [limits] max_concurrent_runs",
        )


class Unclaimed(SilobridgeError):
    """The job is not signed by the coordinator key the node's officer trusts."""

    code = RefusalCode.UNCLAIMED

    def __init__(self, why: str) -> None:
        public = (
            f"the job {why}: this node answers only jobs its trusted coordinator signed "
            "(submit through the coordinator service)"
        )
        super().__init__(public, public=public)


def check_claim(cfg: NodeConfig, job_id: str, spec_bytes: bytes, claim: str) -> None:
    """Refuse a job the trusted coordinator did not sign (when the officer set one).

    Raises:
        Unclaimed: No claim came, or it is not the trusted key's over this job and spec.
    """
    if cfg.coordinator_key is None:
        return
    try:
        trusted = public_identity_from_pem(cfg.coordinator_key.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot read the trusted coordinator key {cfg.coordinator_key}: {err}",
            "the officer fixes [coordinator] public_key",
            public="the node's trusted coordinator key is unreadable; its officer must fix it",
        ) from None
    if not claim:
        raise Unclaimed("carries no coordinator signature")
    if not claim_holds(trusted, job_id, spec_bytes, claim):
        raise Unclaimed("is not signed by the coordinator this node trusts, for this spec")


class OtherDataset(SilobridgeError):
    """The job asks for a dataset this node does not hold: the node takes no part.

    Dataset names are public (the officer declares them); saying which one the node holds
    says nothing about its rows.
    """

    code = RefusalCode.OTHER_DATASET

    def __init__(self, asked: str, held: str) -> None:
        super().__init__(
            f"the job asks for dataset {asked!r}; this node holds {held!r}",
            "the coordinator counts this node out of the job",
        )


_FAILED_REASON = (
    "round {round} of job {job!r} failed after its noisy computation started; the round "
    "stays charged and is never computed again"
)


def _requester(spec: JobEnvelope) -> Requester:
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


def public_reason(err: SilobridgeError) -> str:
    """What a refusal may tell the coordinator and analyst about `err`.

    A problem with the node's own data or configuration is named, not described: its text
    quotes node-local paths (and, for data, values); the node's log has it in full.
    """
    if err.public is not None:
        return f"{err.public} (the node's operator finds the details in the node's log)"
    if isinstance(err, DataError):
        return (
            "the node cannot read the data this job needs, or the data does not match the "
            "node's declared schema (the node's operator finds the details in the node's log)"
        )
    if isinstance(err, ConfigError) and not isinstance(err, JobSpecError):
        return (
            "the node's configuration cannot serve this job (the node's operator finds the "
            "details in the node's log)"
        )
    return str(err)


def refusal(err: Exception, what: str, logger: logging.Logger) -> tuple[RefusalCode, str]:
    """The code and public reason of a reply refusing `what` over `err`, logged in full.

    A policy or data refusal says what `public_reason` allows; an unexpected error says
    only its type: its text may quote data values or node-local paths, so it stays in the
    node's log (with its trace).
    """
    if isinstance(err, SilobridgeError):
        logger.warning("%s refused: %s", what, err)
        return err.code, public_reason(err)
    logger.exception("%s failed", what)
    return RefusalCode.INTERNAL, (
        f"bug: {type(err).__name__} at the node; details are in the node's log"
    )


def _check_policy(
    cfg: NodeConfig, claims: JobClaims, audit: AuditLog | None, job_id: str, epsilon: float
) -> PolicyDecision:
    """Column classes and signed approvals, before any data is read; logs approvals used.

    `epsilon` is what an approval's maximum must cover: the job's own, or - once the node
    has priced the job at its own delta - the larger of the two.
    """
    claims = dataclasses.replace(claims, epsilon=epsilon)
    decision: PolicyDecision = check_job_columns(cfg, claims)
    if audit is not None:
        for used in decision.approvals:
            audit.append("approval", {"job_id": job_id, **used.audit_record()})
    return decision


def _admit(
    cfg: NodeConfig,
    ledger: Ledger,
    audit: AuditLog,
    kind: Kind,
    spec: JobEnvelope,
    job_id: str,
    job_events: list[PrivacyEvent],
    rest: list[PrivacyEvent],
) -> tuple[Any, Quote, tuple[ApprovalCap, ...]]:
    """Every check before a release, on public figures and the data's schema alone.

    Column classes and approvals (of this exact spec, for the app the node's gate verified,
    covering the job as priced at this node's delta, with the rest of the job within what
    each approval has left), the data read and checked against its schema, then the rest of
    the job quoted against every budget. Returns the kind's data, the quote and the
    approvals the reservation must stay within. (The node's limits come first, in the
    kind's plan.)
    """
    claims = JobClaims.from_spec(spec, running_app_hash())
    decision = _check_policy(cfg, claims, audit, job_id, spec.epsilon)
    caps = tuple(ApprovalCap(used.digest, used.max_epsilon) for used in decision.approvals)
    if caps:
        # Priced at this dataset's delta the job may cost more than it claims: the approvals
        # must cover what it really costs here.
        priced = epsilon_spent(job_events, ledger.budget().delta)
        if priced > spec.epsilon:
            _check_policy(cfg, claims, None, job_id, priced)
        ledger.check_approvals(job_id, rest, caps)
    data = kind.load(cfg, spec, claims.columns)
    return data, ledger.quote(rest, _requester(spec)), caps


def _row_digest(ledger: Ledger, entry_id: int) -> str:
    """The digest of the ledger row just written, for the audit entry that records it."""
    row = ledger.entry(entry_id)
    if row is None:
        raise InternalError(f"bug: ledger entry {entry_id} vanished right after it was written")
    return release_digest(row)


def _reserve(
    ledger: Ledger,
    audit: AuditLog,
    req: JobRequest,
    event: PrivacyEvent,
    approvals: tuple[ApprovalCap, ...] = (),
) -> Reservation:
    # The job's own epsilon and its approvals' totals are checked inside the reservation's
    # transaction, so messages racing each other cannot take either past its bound.
    reservation = ledger.reserve(
        req.job_id, req.round, event, _requester(req.spec), spec_fingerprint(req.spec),
        job_budget=req.spec.budget, approvals=approvals,
    )  # fmt: skip
    audit.append(
        "reservation",
        {**_where(req.job_id, req.round), "ledger_entry": reservation.entry_id,
         "mechanism": event.mechanism.value, **event.params(), "resumed": reservation.resumed,
         "dataset": ledger.dataset, "ledger_row": _row_digest(ledger, reservation.entry_id)},
    )  # fmt: skip
    for cap in approvals:
        audit.append(
            "approval_use",
            {**_where(req.job_id, req.round), "digest": cap.digest,
             "epsilon_used": ledger.approval_spent(cap.digest), "max_epsilon": cap.epsilon},
        )  # fmt: skip
    return reservation


def _commit(
    cfg: NodeConfig,
    ledger: Ledger,
    audit: AuditLog,
    kind: Kind,
    plan: Any,
    req: JobRequest,
    reservation: Reservation,
    released: Released | None,
) -> JobOutcome:
    """Commits a reserved release with its reply; `released` None means it failed."""
    event = reservation.event
    figures = _figures(ledger, req.job_id)  # a reservation already counts as spent
    epsilon = epsilon_spent([event], figures["delta"])
    release = kind.release_record(req.spec, plan, req, event, epsilon)
    if released is None:
        reason = _FAILED_REASON.format(round=req.round, job=req.spec.name)
        report = NodeReport(
            cfg.department, ReplyStatus.REFUSED, RefusalCode.ROUND_FAILED.value, reason,
            releases=(release,), **figures,
        )  # fmt: skip
        released = Released()
    else:
        report = NodeReport(
            cfg.department, ReplyStatus.OK, releases=(release,),
            **kind.report_fields(plan, req), **figures,
        )  # fmt: skip
    outcome = JobOutcome(report, released.holdout, released.weights, released.result)
    ledger.commit(reservation, encode_reply(outcome))
    audit.append(
        "charge",
        {**_where(req.job_id, req.round), "ledger_entry": reservation.entry_id,
         "epsilon_spent": report.epsilon_spent, "period": ledger.period(),
         "failed": report.status is not ReplyStatus.OK, "dataset": ledger.dataset,
         "ledger_row": _row_digest(ledger, reservation.entry_id)},
    )  # fmt: skip
    log.info("job %s message %d: charged %s", req.job_id, req.round, event.mechanism.value)
    return outcome


def _plan(cfg: NodeConfig, spec: JobEnvelope) -> tuple[Kind, Any]:
    """The job's kind and plan, refused first if the job is for another dataset or asks
    more than the node's limits allow (before any model or data is touched: public
    figures only).

    Raises:
        OtherDataset: The job asks for a dataset this node does not hold.
    """
    if spec.dataset and spec.dataset != cfg.dataset:
        raise OtherDataset(spec.dataset, cfg.dataset)
    kind = node_kind(spec)
    return kind, kind.plan(cfg, spec)


def _serve(cfg: NodeConfig, ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome:
    spec = req.spec
    kind, plan = _plan(cfg, spec)
    planned = kind.planned(spec, plan, req)
    if ledger.has_reservation(req.job_id, req.round):
        # An attempt that died left this release reserved (charged): it may have computed,
        # so it is closed as failed and never computed again. Checked before admission,
        # which would count the open charge twice.
        reservation = _reserve(ledger, audit, req, planned.event)
        return _commit(cfg, ledger, audit, kind, plan, req, reservation, None)
    prepared = kind.prepare(spec, req)
    data, quote, caps = _admit(
        cfg, ledger, audit, kind, spec, req.job_id, kind.job_events(spec, plan), planned.rest
    )
    if not quote.fits:
        # Refuse the rest of the job up front rather than spend on releases it cannot finish.
        raise quote.refusal(f"the rest of job {spec.name!r}")
    reservation = _reserve(ledger, audit, req, planned.event, caps)
    released: Released | None = None
    if not reservation.resumed:  # one that died in between may have computed: never again
        try:
            released = kind.execute(cfg, spec, plan, req, prepared, data)
        except Exception:
            # Charge what ran: the computation started, so whatever it was stays spent.
            log.exception("job %s message %d failed after it started", req.job_id, req.round)
    return _commit(cfg, ledger, audit, kind, plan, req, reservation, released)


def _resend(ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome | None:
    """The reply already given for this message, if any: same bytes, no charge."""
    payload = ledger.stored_reply(req.job_id, req.round, spec_fingerprint(req.spec))
    if payload is None:
        return None
    outcome = decode_reply(payload)
    audit.append("resend", _where(req.job_id, req.round))
    return outcome


def _answer(cfg: NodeConfig, ledger: Ledger, audit: AuditLog, req: JobRequest) -> JobOutcome:
    try:
        return _resend(ledger, audit, req) or _serve(cfg, ledger, audit, req)
    except DuplicateRelease:
        # The round may have been committed by a concurrent attempt since we looked.
        again = _resend(ledger, audit, req)
        if again is None:
            raise
        return again


def _stamp_head(report: NodeReport, head: SignedHead | None) -> NodeReport:
    if head is None:
        return report
    return dataclasses.replace(report, audit_seq=head.seq, audit_head=head.hash, audit_sig=head.sig)


def _record_outcome(audit: AuditLog, req: JobRequest, outcome: JobOutcome) -> JobOutcome:
    """Log what is about to leave the node, then stamp the chain head on the report."""
    report = outcome.report
    where = _where(req.job_id, req.round)
    if report.status is ReplyStatus.OK:
        released = [r.what for r in report.releases]
        audit.append("release", {**where, "released": released})
    else:
        audit.append("refusal", {**where, "code": report.code, "reason": report.reason})
    return dataclasses.replace(outcome, report=_stamp_head(report, audit.head()))


def open_node(config_path: Path) -> tuple[NodeConfig, AuditLog]:
    cfg = load_node_config(config_path)
    return cfg, node_audit_log(cfg.ledger_path)


def _log_received(
    audit: AuditLog,
    spec: JobEnvelope,
    job_id: str,
    round: int,
    kind: str,
    coordinator_head: SignedHead | None,
) -> None:
    # The coordinator's signed head anchors its log here: `audit crosscheck` finds a job
    # deleted from the coordinator's log, even one re-signed with its key, from this record.
    anchor = None if coordinator_head is None else coordinator_head.to_record()
    audit.append(
        "job_received",
        {**_where(job_id, round), "job": spec.name, "purpose": spec.purpose,
         "analyst": spec.analyst, "project": spec.project, "kind": kind,
         "job_kind": spec.kind, "dataset": spec.dataset,
         "columns": list(spec.columns), "epsilon": spec.epsilon, "delta": spec.delta,
         "coordinator_head": anchor},
    )  # fmt: skip


_T = TypeVar("_T")

SLOT_WAIT_S = 30.0
"""How long a message waits for a run slot before the node answers `busy`."""


def _in_slot(cfg: NodeConfig, work: Callable[[], _T]) -> _T:
    """Runs `work` in one of the node's run slots ([limits] max_concurrent_runs).

    Raises:
        NodeBusy: Every slot is taken.
    """
    slots = RunSlots(cfg.ledger_path, cfg.limits.max_concurrent_runs)
    # A short wait rather than a refusal: the coordinator drops a node that refuses.
    slot = slots.acquire(SLOT_WAIT_S)
    if slot is None:
        raise NodeBusy(cfg.limits.max_concurrent_runs)
    try:
        return work()
    finally:
        slots.release(slot)


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
        cfg, audit = open_node(config_path)
        department = cfg.department
        _log_received(audit, req.spec, req.job_id, req.round, req.message, req.coordinator_head)
        check_claim(cfg, req.job_id, req.spec_bytes, req.claim)
        ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
        log_budget_change(audit, ledger.config_change)
        outcome = _in_slot(cfg, lambda: _answer(cfg, ledger, audit, req))
    except Exception as err:  # a daemon answers, it does not crash
        code, reason = refusal(err, f"job {req.job_id} round {req.round}", log)
        requested = err.requested if isinstance(err, BudgetExceeded) else 0.0
        outcome = _refused(department, code, reason, ledger, req.job_id, requested)
    if audit is None:
        return outcome
    try:
        return _record_outcome(audit, req, outcome)
    except Exception:
        # Nothing leaves the node unlogged: an update that cannot be recorded is withheld.
        log.exception("audit log %s cannot be written", audit.path)
        return _refused(
            department,
            RefusalCode.INTERNAL,
            "the node's audit log cannot be written; details are in the node's log",
            ledger,
            req.job_id,
        )


def _quote(cfg: NodeConfig, audit: AuditLog, spec: JobEnvelope, job_id: str) -> NodeQuote:
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    log_budget_change(audit, ledger.config_change)
    kind, plan = _plan(cfg, spec)
    events = kind.job_events(spec, plan)
    _, quote, _ = _admit(cfg, ledger, audit, kind, spec, job_id, events, events)
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
    config_path: Path,
    department_hint: str,
    spec: JobEnvelope,
    job_id: str,
    coordinator_head: SignedHead | None = None,
    *,
    spec_bytes: bytes = b"",
    claim: str = "",
) -> NodeQuote:
    """Price and admit a whole job without running it. Never raises; charges nothing.

    The node runs every check a real run would - its limits, column classes, approvals,
    the data's schema, every budget scope - and prices the job from public figures only,
    so the answer holds no figure computed from the rows. The coordinator admits a job
    with these answers before round 1; each round checks again.
    """
    audit: AuditLog | None = None
    department = department_hint
    try:
        cfg, audit = open_node(config_path)
        department = cfg.department
        _log_received(audit, spec, job_id, 0, "quote", coordinator_head)
        check_claim(cfg, job_id, spec_bytes, claim)
        # A quote reads the data too: it takes a run slot like any job message.
        quote = _in_slot(cfg, lambda: _quote(cfg, audit, spec, job_id))
    except Exception as err:  # a daemon answers, it does not crash
        code, reason = refusal(err, f"quote for job {job_id}", log)
        quote = NodeQuote(department, ReplyStatus.REFUSED, code.value, reason)
    if audit is None:
        return quote
    entry = {
        "job_id": job_id, "would_run": quote.status is ReplyStatus.OK,
        "requested": quote.requested, "code": quote.code, "reason": quote.reason,
        "scopes": [s.scope for s in quote.scopes],
    }  # fmt: skip
    return logged_answer(audit, "quote", entry, quote)


_Answer = TypeVar("_Answer", NodeQuote, NodeSchema)


def logged_answer(audit: AuditLog, kind: str, entry: dict[str, Any], answer: _Answer) -> _Answer:
    """`answer` once `entry` is in the node's audit log, stamped with the log's signed head;
    a refusal instead when the log cannot be written (nothing unlogged leaves the node)."""
    try:
        audit.append(kind, entry)
        head = audit.head()
    except Exception:
        log.exception("audit log %s cannot be written", audit.path)
        return type(answer)(
            answer.department, ReplyStatus.REFUSED, RefusalCode.INTERNAL.value,
            "the node's audit log cannot be written; details are in the node's log",
        )  # fmt: skip
    if head is None:
        return answer
    return dataclasses.replace(answer, audit_seq=head.seq, audit_head=head.hash, audit_sig=head.sig)


def log_malformed(
    config_path: Path, code: RefusalCode, reason: str, job_id: str = ""
) -> SignedHead | None:
    """Logs the refusal of a message that is not a job at all (no job record, a spec that
    does not decode); returns the log's head, or None when the node's log is out of reach."""
    try:
        _, audit = open_node(config_path)
        audit.append(
            "refusal", {"job_id": job_id, "round": 0, "code": code.value, "reason": reason}
        )
        return audit.head()
    except Exception:  # the refusal still goes out; the node's own log says why not here
        log.exception("cannot log the refusal of a malformed message")
        return None
