"""The ClientApp that answers for a bundle the node did not approve: a refusal, nothing else.

Built entirely from the node's installed code (`clients/runtime/app_gate.py` uses it in place of
the bundle's app), so no code of the rejected bundle is imported to say no.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from clients.release import log_malformed
from clients.reply_sealing import job_ref, sealed_reply
from clients.runtime.app_gate import AppVerdict
from vocab.errors import RefusalCode
from vocab.wire import QUOTE, REPORT, NodeQuote, NodeReport, ReplyStatus

__all__ = ["refusal_app"]


def refusal_app(config_path: Path | None, department: str, verdict: AppVerdict) -> ClientApp:
    """A ClientApp whose every answer is an `app_not_approved` refusal, audited first."""
    app = ClientApp()
    code = RefusalCode.APP_NOT_APPROVED

    def _audited(msg: Message) -> tuple[int, str, str]:
        # The signed head, so the coordinator can record this refusal as the node's own.
        if config_path is None:
            return 0, "", ""
        head = log_malformed(config_path, code, verdict.reason, job_ref(msg)[0][:100])
        return (0, "", "") if head is None else (head.seq, head.hash, head.sig)

    def _refuse(msg: Message, context: Context) -> Message:
        del context
        seq, head, sig = _audited(msg)
        # A quote is answered with a NodeQuote, a round with a NodeReport: same fields here.
        answer = NodeQuote if msg.metadata.message_type == QUOTE else NodeReport
        record = answer(
            department, ReplyStatus.REFUSED, code.value, verdict.reason,
            audit_seq=seq, audit_head=head, audit_sig=sig,
        ).to_record()  # fmt: skip
        return sealed_reply(msg, RecordDict({REPORT: ConfigRecord(record)}), config_path)

    app.train()(_refuse)
    app.evaluate()(_refuse)
    app.query()(_refuse)
    return app
