"""The ClientApp's edge: a message that is not a job is refused, logged, and never crashes."""

from __future__ import annotations

from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients.client_app import CONFIG_KEY, DEPARTMENT_KEY, _answer, quote
from clients.ledger.node_audit import audit_path_for
from clients.node_identity import node_identity
from testkit.synthetic import make_rows, write_node
from vocab.audit_chain import verify_chain
from vocab.audit_log import read_entries
from vocab.wire import JOB, QUOTE, REPORT, TRAIN, NodeQuote, NodeReport, ReplyStatus


def _context(config: Path) -> Context:
    node_config: dict[str, bool | float | int | str] = {
        CONFIG_KEY: str(config),
        DEPARTMENT_KEY: "alpha",
    }
    return Context(1, 1, node_config, RecordDict(), {})


def _message(content: RecordDict, message_type: str) -> Message:
    return Message(content, dst_node_id=1, message_type=message_type)


def test_malformed_messages_are_refused_and_logged(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "alpha", "alpha", 3.0, make_rows(50, seed=1))
    context = _context(cfg.config_path)
    garbage = RecordDict({JOB: ConfigRecord({"spec": b"\x00not a spec", "job_id": "j#1"})})
    no_round = RecordDict({JOB: ConfigRecord({"job_id": "j#1"})})
    for content in (RecordDict(), garbage, no_round):
        reply = _answer(_message(content, TRAIN), context, TRAIN)
        report = NodeReport.from_record(dict(reply.content.config_records[REPORT]))
        assert report.status is ReplyStatus.REFUSED and report.reason
        assert report.audit_seq > 0
    answer = quote(_message(garbage, QUOTE), context)
    node_quote = NodeQuote.from_record(dict(answer.content.config_records[REPORT]))
    assert node_quote.status is ReplyStatus.REFUSED and node_quote.audit_seq > 0
    entries = read_entries(audit_path_for(cfg.ledger_path))
    assert [e.kind for e in entries] == ["refusal"] * 4
    assert verify_chain(entries, node_identity(cfg.ledger_path).public).ok
