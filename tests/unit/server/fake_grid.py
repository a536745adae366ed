"""A small in-process Grid standing in for the SuperLink in server unit tests.

It answers each pushed message at once through a per-node behaviour; the cases the tests
need (a node the SuperLink answers for, a malformed reply) cannot be produced on demand by
real processes. The real path is covered by tests/integration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid

__all__ = ["Behaviour", "InProcessGrid"]

Behaviour = Callable[[Message], Message | None]


class InProcessGrid(Grid):
    """Answers each pushed message at once through a per-node behaviour."""

    def __init__(self, nodes: dict[int, Behaviour]) -> None:
        self.nodes = nodes
        self.outbox: dict[str, Message] = {}
        self.count = 0

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

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
                self.outbox[mid] = reply
            ids.append(mid)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self.outbox.pop(m) for m in list(message_ids) if m in self.outbox]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:  # pragma: no cover - the job uses push/pull
        raise NotImplementedError

    def set_run(self, run: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def run(self) -> Any:  # pragma: no cover
        raise NotImplementedError
