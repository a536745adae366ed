"""The department node's Flower ClientApp: turns Flower messages into job requests and back."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.release import (
    JobOutcome,
    JobRequest,
    handle_quote,
    handle_request,
    log_malformed,
)
from clients.reply_sealing import sealed_reply
from clients.runtime.node_context import CONFIG_KEY, DEPARTMENT_KEY
from clients.schema_answer import handle_schema
from vocab.audit_chain import SignedHead
from vocab.errors import ConfigError, JobSpecError, RefusalCode, SilobridgeError
from vocab.job_claim import CLAIM_SIG
from vocab.serde import job_from_bytes
from vocab.spec import JobEnvelope
from vocab.wire import (
    ARRAYS,
    EVALUATE,
    HOLDOUT,
    JOB,
    KIND_QUERIES,
    REPORT,
    RESULT,
    TRAIN,
    NodeQuote,
    NodeReport,
    NodeSchema,
    ReplyStatus,
    coordinator_head_from,
    histogram_to_record,
)

__all__ = ["CONFIG_KEY", "DEPARTMENT_KEY", "app"]


log = logging.getLogger(__name__)
app = ClientApp()


def _reply(msg: Message, outcome: JobOutcome, config_path: object = None) -> Message:
    content = RecordDict({REPORT: ConfigRecord(outcome.report.to_record())})
    if outcome.holdout is not None:
        content[HOLDOUT] = MetricRecord(histogram_to_record(outcome.holdout))
    if outcome.weights is not None:
        content[ARRAYS] = ArrayRecord(outcome.weights)
    if outcome.result:
        content[RESULT] = ConfigRecord({"json": outcome.result})
    return sealed_reply(msg, content, Path(str(config_path)) if config_path else None)


def _job(msg: Message) -> tuple[JobEnvelope, str, int, list[Any]]:
    """The job a message carries: spec, job id, round and (a risk model's) weights
    (`_claim` gives the spec's bytes and the coordinator's signature on them).

    Raises:
        JobSpecError: The message is not a silobridge job message.
    """
    job = msg.content.config_records.get(JOB)
    arrays = msg.content.array_records.get(ARRAYS)
    if job is None:
        raise JobSpecError(
            "message carries no job",
            "the coordinator runs another silobridge version; upgrade one side",
        )
    try:
        raw = bytes(job["spec"])  # type: ignore[arg-type]
        job_id, rnd = str(job["job_id"]), int(job["round"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as err:
        raise JobSpecError(f"message has no valid job spec, job id or round ({err})") from None
    spec = job_from_bytes(raw)
    found = [] if arrays is None else list(arrays.to_numpy_ndarrays())
    return spec, job_id, rnd, found


def _claim(msg: Message) -> tuple[bytes, str]:
    """The spec's bytes as they came and the coordinator's claim on them ("" when none)."""
    job = msg.content.config_records.get(JOB)
    if job is None:
        return b"", ""
    raw, claim = job.get("spec", b""), job.get(CLAIM_SIG, "")
    return (bytes(raw) if isinstance(raw, bytes) else b""), (
        claim if isinstance(claim, str) else ""
    )


def _coordinator_head(msg: Message) -> SignedHead | None:
    """The coordinator's signed audit chain head the JOB record carries (None: none).

    Raises:
        JobSpecError: The head's fields are there but do not form one.
    """
    try:
        return coordinator_head_from(msg.content.config_records[JOB])
    except ValueError as err:
        raise JobSpecError(f"message carries a malformed coordinator audit head ({err})") from None


def _malformed(config_path: object, department: str, err: SilobridgeError) -> NodeReport:
    head = log_malformed(Path(str(config_path)), err.code, str(err))
    report = NodeReport(department, ReplyStatus.REFUSED, err.code.value, str(err))
    if head is None:
        return report
    return dataclasses.replace(report, audit_seq=head.seq, audit_head=head.hash, audit_sig=head.sig)


def _answer(msg: Message, context: Context, message_type: str) -> Message:
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = context.node_config.get(CONFIG_KEY)
    if not config_path:
        reason = "node has no silobridge config; start it with `silobridge node start --config ...`"
        report = NodeReport(
            department, ReplyStatus.REFUSED, RefusalCode.CONFIG_INVALID.value, reason
        )
        return _reply(msg, JobOutcome(report))
    try:
        spec, job_id, rnd, arrays = _job(msg)
        anchor = _coordinator_head(msg)
    except SilobridgeError as err:
        return _reply(msg, JobOutcome(_malformed(config_path, department, err)), config_path)
    weights = [np.asarray(a, dtype=np.float32) for a in arrays]
    spec_bytes, claim = _claim(msg)
    request = JobRequest(
        spec=spec, job_id=job_id, round=rnd, weights=weights, message=message_type,
        coordinator_head=anchor, spec_bytes=spec_bytes, claim=claim,
    )  # fmt: skip
    return _reply(msg, handle_request(Path(str(config_path)), department, request), config_path)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One DP-SGD round on this department's rows, charged to its ledger first."""
    return _answer(msg, context, TRAIN)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """A noisy held-out histogram of the model sent, charged to the ledger first."""
    return _answer(msg, context, EVALUATE)


@app.query()
def quote(msg: Message, context: Context) -> Message:
    """A dry run: what the whole job would cost here, and whether this node would run it."""
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = context.node_config.get(CONFIG_KEY)
    if not config_path:
        answer = NodeQuote(
            department, ReplyStatus.REFUSED, RefusalCode.CONFIG_INVALID.value,
            "node has no silobridge config",
        )  # fmt: skip
    else:
        try:
            spec, job_id, _, _ = _job(msg)
            anchor = _coordinator_head(msg)
        except SilobridgeError as err:
            report = _malformed(config_path, department, err)
            answer = NodeQuote(
                department, ReplyStatus.REFUSED, report.code, report.reason,
                audit_seq=report.audit_seq, audit_head=report.audit_head,
                audit_sig=report.audit_sig,
            )  # fmt: skip
        else:
            spec_bytes, claim = _claim(msg)
            answer = handle_quote(
                Path(str(config_path)), department, spec, job_id, anchor,
                spec_bytes=spec_bytes, claim=claim,
            )  # fmt: skip
    content = RecordDict({REPORT: ConfigRecord(answer.to_record())})
    return sealed_reply(msg, content, Path(str(config_path)) if config_path else None)


@app.query("schema")
def schema(msg: Message, context: Context) -> Message:
    """The officer-declared open and conditional columns (`job schema`); nothing is read."""
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = context.node_config.get(CONFIG_KEY)
    job = msg.content.config_records.get(JOB)
    try:
        if not config_path:
            raise ConfigError("node has no silobridge config")
        if job is None:
            raise JobSpecError("schema request without a job record")
        job_id, dataset = str(job["job_id"]), str(job.get("dataset", ""))
        anchor = _coordinator_head(msg)
    except (SilobridgeError, KeyError) as err:
        code = err.code if isinstance(err, SilobridgeError) else RefusalCode.SPEC_INVALID
        answer = NodeSchema(department, ReplyStatus.REFUSED, code.value, str(err)[:300])
    else:
        _, claim = _claim(msg)
        answer = handle_schema(
            Path(str(config_path)), department, job_id, dataset, anchor, claim=claim
        )
    content = RecordDict({REPORT: ConfigRecord(answer.to_record())})
    return sealed_reply(msg, content, Path(str(config_path)) if config_path else None)


def _kind_query(message_type: str) -> None:
    """Registers the one-shot release of a job kind (`query.<kind>`)."""
    action = message_type.split(".", 1)[1]

    @app.query(action)
    def release(msg: Message, context: Context) -> Message:
        return _answer(msg, context, message_type)


for _message_type in KIND_QUERIES:
    _kind_query(_message_type)
