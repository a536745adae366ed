"""The ServerApp's end of the relay: attach to the service and perform its Grid calls.

It decides nothing and holds nothing: no coordinator key, no caps, no audit log. It turns
each call into the same call on its own Grid (the SuperLink's), one at a time, until the
service ends the stream.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator

import grpc
from flwr.app import Message
from flwr.common.serde import message_to_proto, recorddict_from_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict
from flwr.serverapp import Grid

from protos.silobridge.v1 import grid_relay_pb2, grid_relay_pb2_grpc

__all__ = ["MAX_MESSAGE_BYTES", "perform", "serve_relay"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
"""A push carries one model per node: the relay link takes what Flower's links take."""


def perform(grid: Grid, call: grid_relay_pb2.GridCall) -> grid_relay_pb2.GridAnswer:
    """One Grid call on `grid`; a failure is answered, not raised."""
    answer = grid_relay_pb2.GridAnswer(call_id=call.call_id)
    try:
        which = call.WhichOneof("call")
        if which == "node_ids":
            answer.node_ids.extend(grid.get_node_ids())
        elif which == "push":
            messages = [
                Message(
                    recorddict_from_proto(ProtoRecordDict.FromString(out.content)),
                    out.dst_node_id,
                    out.message_type,
                    ttl=out.ttl or None,
                    group_id=out.group_id,
                )
                for out in call.push.messages
            ]
            answer.message_ids.extend(mid or "" for mid in grid.push_messages(messages))
        elif which == "pull":
            replies = grid.pull_messages(list(call.pull.message_ids))
            answer.messages.extend(message_to_proto(m).SerializeToString() for m in replies)
        else:
            answer.error = f"unknown Grid call {which!r}"
    except Exception as err:  # the service decides what a failed call means for its job
        log.exception("Grid call %d failed", call.call_id)
        answer.error = f"{type(err).__name__}: {err}"[:2000]
    return answer


def serve_relay(grid: Grid, address: str, token: str, run_id: int) -> None:
    """Attach to the service at `address` and relay until it ends the stream."""
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    outbox: queue.Queue[grid_relay_pb2.RelayUp | None] = queue.Queue()
    outbox.put(grid_relay_pb2.RelayUp(hello=grid_relay_pb2.RelayHello(token=token, run_id=run_id)))

    def upstream() -> Iterator[grid_relay_pb2.RelayUp]:
        while (up := outbox.get()) is not None:
            yield up

    with grpc.insecure_channel(address, options=options) as channel:
        stub = grid_relay_pb2_grpc.GridRelayStub(channel)  # type: ignore[no-untyped-call]
        try:
            for call in stub.Attach(upstream()):
                outbox.put(grid_relay_pb2.RelayUp(answer=perform(grid, call)))
        except grpc.RpcError as err:
            log.warning(
                "the relay link ended: %s", err.details() if hasattr(err, "details") else err
            )
        finally:
            outbox.put(None)
