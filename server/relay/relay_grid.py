"""A Flower `Grid` in the service process whose calls the relaying ServerApp performs.

The job drivers (`server/kinds/`, `server/quote_round.py`, `server/one_shot.py`) use
`get_node_ids`, `push_messages` and `pull_messages`; messages cross the relay as Flower's
own protobuf serialization. A cancelled job stops at its next Grid call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import Message, RecordDict
from flwr.common.serde import message_from_proto, recorddict_to_proto
from flwr.proto.message_pb2 import Message as ProtoMessage
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from protos.silobridge.v1 import grid_relay_pb2
from server.interruptions import JobCancelled, JobInterrupted, never_stop
from server.relay.relay_link import RelaySession

__all__ = ["RelayGrid"]


class RelayGrid(Grid):
    """The Grid of one job.

    Args:
        session: The attached relay.
        should_stop: Polled before each call; True stops the job (`JobCancelled`).
    """

    def __init__(self, session: RelaySession, should_stop: Callable[[], bool] = never_stop) -> None:
        self._session = session
        self._should_stop = should_stop

    def _call(self, call: grid_relay_pb2.GridCall) -> grid_relay_pb2.GridAnswer:
        if self._should_stop():
            raise JobCancelled("the job was cancelled")
        answer = self._session.call(call)
        if answer.error:
            # The SuperLink refused or is gone: the job cannot go on in this run.
            self._session.close(f"the SuperLink failed a Grid call: {answer.error}")
            raise JobInterrupted(self._session.closed)
        return answer

    def set_run(self, run: Run) -> None:
        raise NotImplementedError("the relay's run is set when it attaches")

    @property
    def run(self) -> Run:
        return Run.create_empty(self._session.run_id)

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
        ttl: float | None = None,
    ) -> Message:  # fmt: skip
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        answer = self._call(grid_relay_pb2.GridCall(node_ids=grid_relay_pb2.NodeIdsCall()))
        return list(answer.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        out = [
            grid_relay_pb2.OutMessage(
                dst_node_id=msg.metadata.dst_node_id,
                message_type=msg.metadata.message_type,
                group_id=msg.metadata.group_id,
                ttl=msg.metadata.ttl,
                content=recorddict_to_proto(msg.content).SerializeToString(),
            )
            for msg in messages
        ]
        if not out:
            return []
        answer = self._call(grid_relay_pb2.GridCall(push=grid_relay_pb2.PushCall(messages=out)))
        return list(answer.message_ids)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        ids = list(message_ids)
        if not ids:
            return []
        answer = self._call(grid_relay_pb2.GridCall(pull=grid_relay_pb2.PullCall(message_ids=ids)))
        return [message_from_proto(ProtoMessage.FromString(raw)) for raw in answer.messages]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        # The job drivers push and pull themselves (server/exchange.py), matching replies
        # to the messages they answer.
        raise NotImplementedError("use push_messages and pull_messages")
