"""The coordinator's job driver: admits or quotes a job, runs it, writes the bundle.

It runs in the coordinator's own process (the service, or `silobridge job run` on the
coordinator host) over a Grid the relaying ServerApp serves (`server/relay/`): the central
caps, the audit log and the coordinator key stay with it, never with Flower's processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flwr.serverapp import Grid

from server.central_budget.central_budget import CapExceeded, CentralBudget, CentralCheck
from server.exchange import AnswerStatus, Claimer, NodeReply
from server.home.coordinator_audit import CoordinatorAudit
from server.home.coordinator_home import RESULTS_DIR, CoordinatorHome
from server.interruptions import JobCancelled, JobInterrupted
from server.kinds.base import Drive, Finished
from server.kinds.registry import coordinator_kind
from server.quote_round import OnReply, QuoteOutcome, run_quote
from server.reply_check import ReplyCheck, registered_nodes
from server.run_config import RunConfig, RunMode, decode_run_config
from vocab.bundle import files_to_event, write_files
from vocab.errors import SilobridgeError
from vocab.job_claim import sign_claim
from vocab.progress import (
    Admission,
    Emit,
    Failed,
    JobEnd,
    JobStart,
    QuotePreview,
    QuoteResult,
)
from vocab.spec import JobEnvelope
from vocab.wire import EVALUATE, TRAIN

__all__ = ["charged_epsilon", "run_submission"]

log = logging.getLogger(__name__)

CANCELLED = "cancelled by the analyst"


def charged_epsilon(requested: float, replies: Sequence[NodeReply]) -> float:
    """What a finished job settles to against the central caps.

    The largest epsilon any node reported having charged for the job - more than requested
    if a node, pricing the job at its own delta, charged more. A training or evaluation
    message that got no usable answer may still have been charged at its node (only the
    reply may have been lost), so then the job counts at least its full reservation: the
    coordinator errs toward counting more.
    """
    reported = max((r.epsilon_job for r in replies), default=0.0)
    charged_kinds = (TRAIN, EVALUATE)
    if any(r.message_type in charged_kinds and r.status is AnswerStatus.NO_ANSWER for r in replies):
        return max(requested, reported)
    return reported


def _job_start(config: RunConfig, job_id: str) -> JobStart:
    spec = config.spec
    return JobStart(
        job=spec.name,
        job_id=job_id,
        job_kind=spec.kind,
        mode=config.mode.value,
        analyst=spec.analyst,
        project=spec.project,
        rounds=spec.message_rounds,
        epsilon=spec.epsilon,
        delta=spec.delta,
        min_nodes=spec.min_nodes,
        out=str(config.out or ""),
    )


def _refuse_over_cap(
    config: RunConfig,
    job_id: str,
    err: CapExceeded,
    audit: CoordinatorAudit,
    budget: CentralBudget,
    emit: Emit,
) -> None:
    spec = config.spec
    try:
        check = budget.check(spec.analyst, spec.project, spec.epsilon)
        audit.cap_check(job_id, check, mode=RunMode.RUN, reserved=False)
        audit.refusal(
            job_id,
            err.code.value,
            err.message,
            requested=err.requested,
            spent=err.spent,
            remaining=err.remaining,
            cap=err.budget,
        )
        audit.job_end(job_id, "refused", failure=err.message)
    except (OSError, SilobridgeError, sqlite3.Error):
        # The refusal stands whether or not it could be logged.
        log.exception("cannot log the refusal of job %s", job_id)
    emit(Failed(reason=str(err)))


def _preview(spec: JobEnvelope, nodes: int) -> QuotePreview:
    """The kind's public preview for a quote; none when the job cannot even be planned (the
    nodes refuse it then too, and their reasons say why)."""
    try:
        return coordinator_kind(spec).quote_preview(spec, nodes)
    except SilobridgeError as err:
        log.warning("no preview for job %s: %s", spec.name, err)
        return QuotePreview()


@dataclass(frozen=True)
class _Job:
    """One job being driven, with what the driver uses of the coordinator home."""

    grid: Grid
    config: RunConfig
    job_id: str
    audit: CoordinatorAudit
    budget: CentralBudget
    emit: Emit
    verify: ReplyCheck
    """Whether a reply speaks for the department it names (its registered key sealed it)."""
    claim: Claimer
    expected_nodes: int
    """The registered nodes: once that many are connected, no late joiner is waited for."""

    def quote_round(self, central: CentralCheck, on_reply: OnReply) -> QuoteOutcome:
        """Every connected node's quote of the whole job (a dry run, or the admission)."""
        return run_quote(
            self.grid, self.config.spec, self.job_id, central, self.emit, on_reply,
            self.audit.head, check=self.verify, claim=self.claim,
            expected_nodes=self.expected_nodes,
        )  # fmt: skip


def _run(job: _Job) -> None:
    spec = job.config.spec
    try:
        kind = coordinator_kind(spec)
    except SilobridgeError as err:
        job.emit(Failed(reason=str(err)))
        return
    try:
        check = job.budget.reserve(job.job_id, spec.analyst, spec.project, spec.epsilon)
    except CapExceeded as err:
        _refuse_over_cap(job.config, job.job_id, err, job.audit, job.budget, job.emit)
        return
    except (SilobridgeError, sqlite3.Error) as err:
        job.emit(Failed(reason=f"the coordinator cannot check its central caps: {err}"))
        return
    replies: list[NodeReply] = []

    def on_reply(reply: NodeReply) -> None:
        replies.append(reply)
        job.audit.node_reply(job.job_id, reply)

    settled: float | None = None
    try:
        job.audit.cap_check(job.job_id, check, mode=RunMode.RUN, reserved=True)
        job.emit(_job_start(job.config, job.job_id))
        # Admission: every node runs the whole job's checks first, so no node is charged
        # for a job that a quorum would not take.
        admission = job.quote_round(check, on_reply)
        job.emit(admission.event(Admission, _preview(spec, admission.would_run)))
        drive = Drive(
            job.grid,
            job.job_id,
            admission,
            job.emit,
            on_reply,
            job.audit.head,
            job.verify,
            job.claim,
        )
        outcome: Finished = kind.run(spec, drive)
        settled = job.budget.settle(job.job_id, charged_epsilon(spec.epsilon, replies)).charged
        job.audit.job_end(
            job.job_id,
            outcome.status,
            failure=outcome.failure,
            epsilon_reserved=spec.epsilon,
            epsilon_settled=settled,
        )
    except JobInterrupted:
        raise  # nothing is settled: the job runs again under its id
    except Exception as err:  # the analyst gets a reason, not a silent stream end
        cancelled = isinstance(err, JobCancelled)
        if cancelled:
            reason = CANCELLED
        else:
            log.exception("job %s failed", job.job_id)
            reason = f"bug in the coordinator: {type(err).__name__}: {err}"
        # Settled from what the nodes reported charging so far; if even that fails, the
        # job keeps counting at its full reservation.
        if settled is None:
            with contextlib.suppress(Exception):
                settled = job.budget.settle(
                    job.job_id, charged_epsilon(spec.epsilon, replies)
                ).charged
        ended = {"failure": reason, "epsilon_reserved": spec.epsilon, "epsilon_settled": settled}
        with contextlib.suppress(Exception):
            job.audit.job_end(job.job_id, "cancelled" if cancelled else "failed", **ended)
        job.emit(Failed(reason=reason))
        return
    # A copy stays on the coordinator host; the analyst's CLI writes the inlined one.
    result_path = ""
    if job.config.out is not None:
        try:
            result_path = str(write_files(job.config.out, outcome.files))
        except OSError as err:
            log.warning(
                "cannot write the bundle to %s on the coordinator host: %s", job.config.out, err
            )
    job.emit(
        JobEnd(
            status=outcome.status,
            failure=outcome.failure,
            result=result_path,
            files=files_to_event(outcome.files),
            metrics=outcome.metrics,
            seconds=round(outcome.seconds, 2),
        )
    )


def _quote(job: _Job) -> None:
    spec = job.config.spec
    try:
        central = job.budget.check(spec.analyst, spec.project, spec.epsilon)
        job.audit.cap_check(job.job_id, central, mode=RunMode.QUOTE, reserved=False)
        job.emit(_job_start(job.config, job.job_id))

        def on_reply(reply: NodeReply) -> None:
            job.audit.node_reply(job.job_id, reply)

        outcome = job.quote_round(central, on_reply)
        preview = _preview(spec, outcome.would_run)
        event = outcome.event(QuoteResult, preview)
        job.audit.quote(
            job.job_id,
            {
                "ok": outcome.ok,
                "reason": outcome.reason,
                "would_run": outcome.would_run,
                "min_nodes": spec.min_nodes,
                "nodes": [
                    {
                        "department": node.department,
                        "status": node.status,
                        "code": node.code,
                        "requested": node.requested,
                    }
                    for node in event.nodes
                ],
            },
        )
        job.audit.job_end(job.job_id, "quoted")
    except JobInterrupted:
        raise
    except JobCancelled:
        with contextlib.suppress(Exception):
            job.audit.job_end(job.job_id, "cancelled")
        job.emit(Failed(reason=CANCELLED))
        return
    except Exception as err:
        log.exception("quote %s failed", job.job_id)
        job.emit(Failed(reason=f"bug in the coordinator: {type(err).__name__}: {err}"))
        return
    job.emit(event)


def run_submission(
    grid: Grid,
    run_config: dict[str, Any],
    run_id: int,
    home_setting: str | None,
    emit: Emit,
) -> None:
    """See one submitted job through; every failure is a `failed` event.

    Without a coordinator home the run fails at once. Otherwise the job is logged, then
    either admitted against the central caps (refused before any node is contacted if it
    does not fit), trained and settled, or, in quote mode, priced by every node without
    charging anything.

    Args:
        grid: The federation (the relay's, in a deployment).
        run_config: The submission (`server.run_config`).
        run_id: The Flower run the grid belongs to (names the job when no id is given).
        home_setting: The coordinator home's absolute path.

    Raises:
        JobInterrupted: The grid's link was lost mid-job; nothing was settled.
    """
    try:
        home = CoordinatorHome.from_setting(home_setting)
        home.root.mkdir(parents=True, exist_ok=True)
    except SilobridgeError as err:
        emit(Failed(reason=str(err)))
        return
    except OSError as err:
        emit(Failed(reason=f"cannot create the coordinator home {home_setting}: {err}"))
        return
    try:
        audit = home.audit()  # reads (or makes) the coordinator's identity key
    except (OSError, ValueError) as err:
        emit(Failed(reason=f"cannot use the coordinator's key {home.identity_path}: {err}"))
        return
    try:
        config = decode_run_config(run_config)
    except SilobridgeError as err:
        with contextlib.suppress(OSError, SilobridgeError):
            audit.refusal(f"?#{run_id}", err.code.value, str(err))
        emit(Failed(reason=str(err)))
        return
    job_id = config.job_id or f"{config.spec.name}#{run_id}"
    if config.out is not None:
        # The coordinator's copy of the bundle goes under its home, whatever folder the run
        # config names: a submitter must not choose where the coordinator host writes.
        config = dataclasses.replace(config, out=home.root / RESULTS_DIR / job_id.replace("#", "-"))
    try:
        audit.job_received(config.spec, job_id, config.mode, config.app_hash)
        budget = home.budget()
    except (OSError, SilobridgeError, sqlite3.Error) as err:
        emit(Failed(reason=f"the coordinator cannot use its home {home.root}: {err}"))
        return
    # A reply speaks for a department only under the node key registered for it.
    verify = registered_nodes(home.nodes)
    identity = home.identity()

    def claim(spec_bytes: bytes) -> str:
        # Nodes that trust this coordinator's key check it signed this job id and spec.
        return sign_claim(identity, job_id, spec_bytes)

    try:
        expected = len(home.nodes.departments())
    except (OSError, SilobridgeError):
        expected = 0  # unknown: the full grace for late joiners
    job = _Job(grid, config, job_id, audit, budget, emit, verify, claim, expected)
    (_quote if config.mode is RunMode.QUOTE else _run)(job)
