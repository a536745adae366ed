"""The department node's Flower ClientApp: turns Flower messages into job requests and back."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.job_handler import JobOutcome, JobRequest, handle_quote, handle_request
from vocab.errors import RefusalCode, SilobridgeError
from vocab.serde import job_from_bytes
from vocab.wire import (
    ARRAYS,
    HOLDOUT,
    JOB,
    REPORT,
    NodeQuote,
    NodeReport,
    ReplyStatus,
    summary_to_record,
)

__all__ = ["CONFIG_KEY", "DEPARTMENT_KEY", "app"]

# Keys in Flower's --node-config that `silobridge node start` sets.
CONFIG_KEY = "silobridge-config"
DEPARTMENT_KEY = "department"

log = logging.getLogger(__name__)
app = ClientApp()


def _reply(msg: Message, outcome: JobOutcome) -> Message:
    content = RecordDict({REPORT: ConfigRecord(outcome.report.to_record())})
    if outcome.holdout is not None:
        content[HOLDOUT] = MetricRecord(summary_to_record(outcome.holdout))
    if outcome.weights is not None:
        content[ARRAYS] = ArrayRecord(outcome.weights)
    return Message(content, reply_to=msg)


def _answer(msg: Message, context: Context, *, train: bool) -> Message:
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = context.node_config.get(CONFIG_KEY)
    job = msg.content.config_records.get(JOB)
    arrays = msg.content.array_records.get(ARRAYS)
    if not config_path or job is None or arrays is None:
        reason = (
            "node has no silobridge config; start it with `silobridge node start --config ...`"
            if not config_path
            else "message carries no job or weights (coordinator runs another version?)"
        )
        report = NodeReport(
            department, ReplyStatus.REFUSED, RefusalCode.CONFIG_INVALID.value, reason
        )
        return _reply(msg, JobOutcome(report))
    try:
        spec = job_from_bytes(bytes(job["spec"]))  # type: ignore[arg-type]
    except SilobridgeError as err:
        report = NodeReport(department, ReplyStatus.REFUSED, err.code.value, str(err))
        return _reply(msg, JobOutcome(report))
    weights = [np.asarray(a, dtype=np.float32) for a in arrays.to_numpy_ndarrays()]
    request = JobRequest(
        spec=spec,
        job_id=str(job["job_id"]),
        round=int(job["round"]),  # type: ignore[arg-type]
        weights=weights,
        train=train,
    )
    return _reply(msg, handle_request(Path(str(config_path)), department, request))


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One DP-SGD round on this department's rows, charged to its ledger first."""
    return _answer(msg, context, train=True)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Held-out statistics of the final model; releases no weights and charges nothing."""
    return _answer(msg, context, train=False)


@app.query()
def quote(msg: Message, context: Context) -> Message:
    """A dry run: what the whole job would cost here, and whether this node would run it."""
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = context.node_config.get(CONFIG_KEY)
    job = msg.content.config_records.get(JOB)
    if not config_path or job is None:
        reason = "node has no silobridge config" if not config_path else "message carries no job"
        answer = NodeQuote(
            department, ReplyStatus.REFUSED, RefusalCode.CONFIG_INVALID.value, reason
        )
    else:
        try:
            spec = job_from_bytes(bytes(job["spec"]))  # type: ignore[arg-type]
        except SilobridgeError as err:
            answer = NodeQuote(department, ReplyStatus.REFUSED, err.code.value, str(err))
        else:
            answer = handle_quote(Path(str(config_path)), department, spec, str(job["job_id"]))
    return Message(RecordDict({REPORT: ConfigRecord(answer.to_record())}), reply_to=msg)
