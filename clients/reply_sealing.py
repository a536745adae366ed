"""Seals every reply the node sends with its identity key, so the department is provable.

The coordinator believes a reply's department only under this seal (`server/reply_check.py`).
The seal names the job id and round the message carried and the message kind, so it cannot
be moved onto another question.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Message, RecordDict

from clients.node_config import load_node_config
from clients.node_identity import node_identity
from vocab.errors import SilobridgeError
from vocab.reply_seal import content_digest, seal_reply
from vocab.wire import JOB

__all__ = ["job_ref", "sealed_reply"]

log = logging.getLogger(__name__)


def job_ref(msg: Message) -> tuple[str, int]:
    """The job id and round a message carries, or ("", 0) when it carries none."""
    job = msg.content.config_records.get(JOB)
    if job is None:
        return "", 0
    try:
        return str(job["job_id"]), int(job["round"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return "", 0


def sealed_reply(msg: Message, content: RecordDict, config_path: Path | None) -> Message:
    """The reply to `msg` with `content`, sealed by the node's key.

    Without a readable node config there is no key to seal with: the reply goes out
    unsealed and the coordinator will not count it (the node's log says why).
    """
    if config_path is not None:
        try:
            key = node_identity(load_node_config(config_path).ledger_path)
        except (SilobridgeError, OSError, ValueError) as err:
            log.error("reply sent unsealed: the node's identity key is out of reach: %s", err)
        else:
            job_id, rnd = job_ref(msg)
            kind = msg.metadata.message_type
            request = content_digest(msg.content)
            seal_reply(content, key, job_id=job_id, round=rnd, kind=kind, request=request)
    return Message(content, reply_to=msg)
