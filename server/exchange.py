"""One message per node over the Grid, replies matched back, and the record of each answer."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from vocab.audit_chain import SignedHead
from vocab.job_claim import CLAIM_SIG
from vocab.progress import Answers, Emit, NodesConnected
from vocab.wire import coordinator_head_fields

__all__ = [
    "AnswerStatus",
    "Claimer",
    "HeadSource",
    "NodeReply",
    "answers_to",
    "job_config",
    "no_claim",
    "no_head",
    "push_and_pull",
    "wait_for_nodes",
]

HeadSource = Callable[[], SignedHead | None]
Claimer = Callable[[bytes], str]
"""The coordinator's signature on this job running exactly these spec bytes
(`vocab.job_claim`); every message carries it."""
"""The coordinator's current signed audit chain head, read as each message is built."""

# A SuperNode polls every 3 s; waiting this long after quorum lets nodes that are
# still connecting join the first round.
JOIN_GRACE_S = 4.0
PULL_INTERVAL_S = 0.5


class AnswerStatus(enum.Enum):
    """How a node answered one message."""

    OK = "ok"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    """No usable reply: silent, an error from Flower, or a reply this coordinator cannot read."""


@dataclass(frozen=True)
class NodeReply:
    """One node's answer to one message, as the coordinator's audit log records it.

    Metadata only. `code` says why for REFUSED (the node's refusal code) and NO_ANSWER
    (`no_reply`, `node_error` or `bad_reply`); `epsilon_job` is what the node reported
    having charged for the whole job so far; `audit_seq`/`audit_head` anchor the node's
    own audit chain (0 and "" when the node sent none), `audit_sig` is the node's signature
    over that head.
    """

    node_id: int
    department: str
    round: int
    message_type: str
    status: AnswerStatus
    code: str = ""
    reason: str = ""
    epsilon_job: float = 0.0
    audit_seq: int = 0
    audit_head: str = ""
    audit_sig: str = ""


def no_head() -> SignedHead | None:
    """A HeadSource for callers without a coordinator log (tests, tools)."""
    return None


def no_claim(spec_bytes: bytes) -> str:
    """A Claimer for callers without a coordinator key (tests, tools): no claim."""
    del spec_bytes
    return ""


def job_config(
    spec_bytes: bytes, job_id: str, rnd: int, head: SignedHead | None = None, claim: str = ""
) -> ConfigRecord:
    """The JOB record every message carries: the encoded spec, the job id, the round, the
    coordinator's signed audit chain head (which the node records in its own log) and its
    claim on the job (which a node that trusts the coordinator's key checks)."""
    claimed = {CLAIM_SIG: claim} if claim else {}
    return ConfigRecord(
        {"spec": spec_bytes, "job_id": job_id, "round": rnd, **coordinator_head_fields(head),
         **claimed}
    )  # fmt: skip


def wait_for_nodes(
    grid: Grid, min_nodes: int, wait_s: float, emit: Emit, expected: int = 0
) -> list[int]:
    """The connected nodes: once `min_nodes` are there (plus a grace), or after `wait_s`.

    With `expected` (the nodes registered with the coordinator) the grace ends as soon as
    that many are connected: then no one is left to wait for.
    """
    deadline = time.monotonic() + wait_s
    ids = sorted(grid.get_node_ids())
    while len(ids) < min_nodes and time.monotonic() < deadline:
        time.sleep(PULL_INTERVAL_S)
        ids = sorted(grid.get_node_ids())
    if len(ids) >= min_nodes:
        grace_end = time.monotonic() + JOIN_GRACE_S
        while (expected <= 0 or len(ids) < expected) and time.monotonic() < grace_end:
            time.sleep(min(PULL_INTERVAL_S, max(0.0, grace_end - time.monotonic())))
            ids = sorted(grid.get_node_ids())
    emit(NodesConnected(connected=len(ids), min_nodes=min_nodes))
    return ids


def push_and_pull(
    grid: Grid,
    node_ids: list[int],
    content: Callable[[], RecordDict],
    message_type: str,
    group_id: str,
    timeout_s: float,
    on_answers: Callable[[int, int], None] | None = None,
) -> list[tuple[int, Message]]:
    """Push one message per node and pull replies until all answered or time runs out.

    Replies are matched to nodes by the message they answer, not by their sender: the
    SuperLink itself answers for a node it cannot reach. Polling every `PULL_INTERVAL_S`
    (Flower's own loop sleeps 3 s) keeps the round overhead low. Nodes missing from the
    result did not answer in time. `on_answers(answered, asked)` hears of each arrival.
    """
    messages = [
        Message(content(), dst_node_id=node_id, message_type=message_type, group_id=group_id)
        for node_id in node_ids
    ]
    message_ids = list(grid.push_messages(messages))
    pending = {mid: nid for mid, nid in zip(message_ids, node_ids, strict=False) if mid}
    replies: list[tuple[int, Message]] = []
    deadline = time.monotonic() + timeout_s
    asked = len(pending)
    while pending and time.monotonic() < deadline:
        before = len(replies)
        for reply in grid.pull_messages(list(pending)):
            node_id = pending.pop(reply.metadata.reply_to_message_id, None)
            if node_id is not None:
                replies.append((node_id, reply))
        if on_answers is not None and len(replies) > before:
            on_answers(len(replies), asked)
        if pending:
            time.sleep(PULL_INTERVAL_S)
    return replies


def answers_to(emit: Emit, rnd: int) -> Callable[[int, int], None]:
    """`push_and_pull`'s `on_answers`, as `Answers` progress events for round `rnd`."""

    def report(answered: int, asked: int) -> None:
        emit(Answers(round=rnd, answered=answered, asked=asked))

    return report
