"""A small in-process Grid standing in for the SuperLink in coordinator tests.

It answers each pushed message at once through a per-node behaviour; the cases the tests
need (a node the SuperLink answers for, a malformed reply) cannot be produced on demand by
real processes. The real path is covered by tests/integration.

Like real nodes, its nodes seal their replies: each department a reply names gets a key,
registered in `registry` (a node registry of the test's own, or the coordinator home's),
and `check` is the coordinator's real check against that registry. A reply that is already
sealed (a real ClientApp's) is passed on as it is.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flwr.app import Message
from flwr.serverapp import Grid

from clients.reply_sealing import job_ref
from server.home.node_registry import NodeRegistry
from server.reply_check import ReplyCheck, registered_nodes
from vocab.errors import ConfigError
from vocab.identity_key import IdentityKey
from vocab.reply_seal import SEAL, content_digest, seal_reply
from vocab.wire import REPORT

__all__ = ["Behaviour", "InProcessGrid", "PushPullGrid"]

Behaviour = Callable[[Message], Message | None]


class PushPullGrid(Grid):
    """A Grid for silobridge's job drivers, which use only node ids, push and pull: the
    Grid calls they never make raise."""

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:  # pragma: no cover - the job uses push/pull
        raise NotImplementedError

    def set_run(self, run: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def run(self) -> Any:  # pragma: no cover
        raise NotImplementedError


class InProcessGrid(PushPullGrid):
    """Answers each pushed message at once through a per-node behaviour."""

    def __init__(self, nodes: dict[int, Behaviour], registry: NodeRegistry | None = None) -> None:
        self.nodes = nodes
        self.outbox: dict[str, Message] = {}
        self.count = 0
        self.registry = registry or NodeRegistry(Path(tempfile.mkdtemp(prefix="registry-")))
        self._keys: dict[str, IdentityKey] = {}

    @property
    def check(self) -> ReplyCheck:
        """The coordinator's check against this grid's registry."""
        return registered_nodes(self.registry)

    def _seal(self, msg: Message, reply: Message) -> None:
        records = reply.content.config_records if not reply.has_error() else {}
        if SEAL in records or REPORT not in records:
            return
        department = str(records[REPORT].get("department", ""))
        if department not in self._keys:
            self._keys[department] = IdentityKey(Ed25519PrivateKey.generate())
            # An invalid name, or a department a real node registered, is not ours to enrol.
            with contextlib.suppress(ConfigError):
                self.registry.register(department, self._keys[department].public.pem())
        job_id, rnd = job_ref(msg)
        kind = msg.metadata.message_type
        request = content_digest(msg.content)
        key = self._keys[department]
        seal_reply(reply.content, key, job_id=job_id, round=rnd, kind=kind, request=request)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            self.count += 1
            mid = f"m{self.count}"
            msg.metadata.__dict__["_message_id"] = mid
            msg.metadata.__dict__["_src_node_id"] = 1
            reply = self.nodes[msg.metadata.dst_node_id](msg)
            if reply is not None:
                self._seal(msg, reply)
                self.outbox[mid] = reply
            ids.append(mid)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self.outbox.pop(m) for m in list(message_ids) if m in self.outbox]
