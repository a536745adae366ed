"""The service's end of the relay: the `GridRelay` servicer and its call multiplexing.

One relaying ServerApp is attached at a time (`RelaySession`). Jobs running in the
service's worker threads send Grid calls through it concurrently; each call waits for the
answer with its own id. When the ServerApp's stream ends - its run stopped, the SuperLink
went away, the service lets it go - every waiting call fails with `JobInterrupted`.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import grpc

from protos.silobridge.v1 import grid_relay_pb2, grid_relay_pb2_grpc
from server.interruptions import JobInterrupted

__all__ = ["RelayLink", "RelaySession"]

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 600.0
"""Longest a Grid call may wait for the relay's answer (a large push included)."""


class RelaySession:
    """One attached relay: calls go out in order, answers come back by call id."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._calls: queue.Queue[grid_relay_pb2.GridCall | None] = queue.Queue()
        self._pending: dict[int, Future[grid_relay_pb2.GridAnswer]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = ""

    @property
    def closed(self) -> str:
        """Why the session ended; empty while it is open."""
        return self._closed

    def call(
        self, call: grid_relay_pb2.GridCall, timeout_s: float = CALL_TIMEOUT_S
    ) -> grid_relay_pb2.GridAnswer:
        """Send `call` and wait for its answer.

        Raises:
            JobInterrupted: The session ended, or no answer came in `timeout_s`.
        """
        future: Future[grid_relay_pb2.GridAnswer] = Future()
        with self._lock:
            if self._closed:
                raise JobInterrupted(self._closed)
            call.call_id = next(self._ids)
            self._pending[call.call_id] = future
        self._calls.put(call)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            self.close(f"the relay gave no answer to a Grid call in {timeout_s:.0f} s")
            raise JobInterrupted(self._closed) from None

    def close(self, reason: str) -> None:
        """End the session: waiting and later calls fail with `reason`; the stream ends."""
        with self._lock:
            if self._closed:
                return
            self._closed = reason
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(JobInterrupted(reason))
        self._calls.put(None)

    def outgoing(self) -> Iterator[grid_relay_pb2.GridCall]:
        """The calls to send, until the session closes."""
        while (call := self._calls.get()) is not None:
            yield call

    def read(self, answers: Iterator[grid_relay_pb2.RelayUp]) -> None:
        """Resolve calls from the relay's answers until its stream ends."""
        try:
            for up in answers:
                if up.WhichOneof("kind") != "answer":
                    continue
                with self._lock:
                    future = self._pending.pop(up.answer.call_id, None)
                if future is not None:
                    future.set_result(up.answer)
        except grpc.RpcError:
            pass  # the stream broke; closing below says so to every waiting call
        finally:
            self.close("the link to the coordinator's Flower run was lost")


class RelayLink(grid_relay_pb2_grpc.GridRelayServicer):
    """The `GridRelay` servicer: admits the relay whose hello carries `token`.

    Args:
        token: The secret the service put in its relay run's config.
    """

    def __init__(self, token: str) -> None:
        self._token = token
        self._changed = threading.Condition()
        self._session: RelaySession | None = None

    def session(self) -> RelaySession | None:
        """The attached relay, if one is attached and open."""
        with self._changed:
            session = self._session
        return session if session is not None and not session.closed else None

    def wait_attached(self, timeout_s: float) -> RelaySession | None:
        """The attached relay, waiting up to `timeout_s` for one."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._session is not None and not self._session.closed, timeout_s
            )
        return self.session()

    def release(self, reason: str) -> None:
        """Let the attached relay go: its stream ends, so its run ends."""
        with self._changed:
            session, self._session = self._session, None
        if session is not None:
            session.close(reason)

    def Attach(  # noqa: N802 (gRPC's method name)
        self, request_iterator: Iterator[grid_relay_pb2.RelayUp], context: grpc.ServicerContext
    ) -> Iterator[grid_relay_pb2.GridCall]:
        first = next(request_iterator, None)
        hello = first.hello if first is not None and first.HasField("hello") else None
        if hello is None or not hmac.compare_digest(hello.token.encode(), self._token.encode()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "not this service's relay run")
            return
        session = RelaySession(hello.run_id)
        context.add_callback(lambda: session.close("the relay's stream ended"))
        with self._changed:
            previous, self._session = self._session, session
            self._changed.notify_all()
        if previous is not None:
            previous.close("another relay run attached")
        log.info("the relay of Flower run %d attached", hello.run_id)
        reader = threading.Thread(
            target=session.read, args=(request_iterator,), name="relay-reader", daemon=True
        )
        reader.start()
        yield from session.outgoing()
