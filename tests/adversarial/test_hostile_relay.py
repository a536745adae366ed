"""Attack: the relay. Every job's messages pass through the one ServerApp the service keeps
open (`server/relay/`), which the nodes do not trust and the coordinator must not either.

A local process that attaches without the run's token is refused. A relay that does attach
(a hostile ServerApp, or a compromised SuperLink under it) can drop replies, but what it
forges, edits or replays is not believed: each reply must carry its department's
registered node key's seal over that job, round, kind, request and content. Here the
departments are real ClientApp functions with real ledgers (`testkit.inprocess_federation`)
behind a real loopback gRPC relay link.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from protos.silobridge.v1 import grid_relay_pb2, grid_relay_pb2_grpc
from server.relay.relay_grid import RelayGrid
from server.relay.relay_link import RelayLink
from server.relay.relay_serve import serve_relay
from server.run_config import RunMode
from server.service.grid_runner import GridRunner
from server.service.runner import RunRequest
from testkit.fake_grid import PushPullGrid
from testkit.inprocess_federation import Federation
from testkit.synthetic import synthetic_spec
from vocab.progress import JobEnd, QuoteResult
from vocab.wire import REPORT

TOKEN = "relay-run-token"


class Hostile(PushPullGrid):
    """The real federation's grid, with `tamper` applied to every reply pulled."""

    def __init__(self, inner: Grid, tamper: Callable[[Message], Message]) -> None:
        self.inner = inner
        self.tamper = tamper

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self.tamper(m) for m in self.inner.pull_messages(message_ids)]


@pytest.fixture
def link() -> Iterator[tuple[RelayLink, str]]:
    relay_link = RelayLink(TOKEN)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    grid_relay_pb2_grpc.add_GridRelayServicer_to_server(relay_link, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield relay_link, f"127.0.0.1:{port}"
    relay_link.release("test over")
    server.stop(grace=1).wait(5)


@pytest.fixture
def federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Federation:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    return Federation(tmp_path / "federation")


def _through(
    link: tuple[RelayLink, str], federation: Federation, relay_grid: Grid, tmp_path: Path,
    mode: RunMode, job_id: str,
) -> Any:  # fmt: skip
    relay_link, address = link
    thread = threading.Thread(target=serve_relay, args=(relay_grid, address, TOKEN, 9), daemon=True)
    thread.start()
    session = relay_link.wait_attached(10)
    assert session is not None

    def grids(should_stop: Callable[[], bool]) -> tuple[Grid, int]:
        return RelayGrid(session, should_stop), session.run_id

    runner = GridRunner(federation.home.root, grids)
    spec = synthetic_spec("relayed", rounds=1, min_nodes=2)
    request = RunRequest(job_id, spec, mode, tmp_path / job_id)
    return runner.run(request, lambda _e: None, lambda: False)


def test_a_process_without_the_runs_token_cannot_attach(link: tuple[RelayLink, str]) -> None:
    relay_link, address = link
    with grpc.insecure_channel(address) as channel:
        stub = grid_relay_pb2_grpc.GridRelayStub(channel)  # type: ignore[no-untyped-call]
        for token in ("", "relay-run-toke", TOKEN + "x"):
            hello = grid_relay_pb2.RelayUp(hello=grid_relay_pb2.RelayHello(token=token))
            with pytest.raises(grpc.RpcError) as err:
                list(stub.Attach(iter([hello]), timeout=10))
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # An answer before any hello is no hello either.
        answer = grid_relay_pb2.RelayUp(answer=grid_relay_pb2.GridAnswer(call_id=1))
        with pytest.raises(grpc.RpcError):
            list(stub.Attach(iter([answer]), timeout=10))
    assert relay_link.session() is None


def _forged(reply: Message) -> Message:
    """In place of the node's reply, one the relay made up: 'would run', at no cost."""
    report = ConfigRecord({"department": "tax", "status": "ok", "epsilon_job": 0.0})
    forged = Message(RecordDict({REPORT: report}), reply_to=_request_of(reply))
    forged.metadata.__dict__["_src_node_id"] = reply.metadata.src_node_id
    return forged


def _under_reported(reply: Message) -> Message:
    """The real, sealed reply with the node's charge edited down (to dodge central caps)."""
    if not reply.has_error() and REPORT in reply.content.config_records:
        reply.content.config_records[REPORT]["epsilon_job"] = 0.0
        reply.content.config_records[REPORT]["requested"] = 0.0
    return reply


@pytest.mark.parametrize("mode", [RunMode.QUOTE, RunMode.RUN], ids=lambda m: m.value)
def test_replies_a_relay_edits_are_not_believed(
    link: tuple[RelayLink, str], federation: Federation, tmp_path: Path, mode: RunMode
) -> None:
    final = _through(
        link, federation, Hostile(federation.grid, _under_reported), tmp_path, mode, "edited"
    )
    if mode is RunMode.QUOTE:
        assert isinstance(final, QuoteResult) and not final.ok
        assert {n.code for n in final.nodes} == {"unverified"}, final.nodes
    else:
        # Not admitted: no node's edited word counted, so no round ran and none was charged.
        assert isinstance(final, JobEnd) and final.status == "failed", final
        assert "not started" in final.failure
        assert all(federation.charged(name, "edited") == 0.0 for name in federation.nodes)


def test_replies_a_relay_forges_are_not_believed(
    link: tuple[RelayLink, str], federation: Federation, tmp_path: Path
) -> None:
    final = _through(
        link, federation, Hostile(federation.grid, _forged), tmp_path, RunMode.QUOTE, "forged"
    )
    assert isinstance(final, QuoteResult) and not final.ok
    # Each forged answer arrived in time, and none was believed.
    assert {n.code for n in final.nodes} == {"unverified"}, final.nodes


def test_a_reply_replayed_into_another_job_is_not_believed(
    link: tuple[RelayLink, str], federation: Federation, tmp_path: Path
) -> None:
    kept: list[Message] = []

    def keep(reply: Message) -> Message:
        kept.append(reply)
        return reply

    first = _through(
        link, federation, Hostile(federation.grid, keep), tmp_path, RunMode.QUOTE, "first"
    )
    assert isinstance(first, QuoteResult) and first.ok and kept
    link[0].release("next job")
    by_node = {m.metadata.src_node_id: m for m in kept}

    def replay(reply: Message) -> Message:
        # Job "second"'s replies swapped for job "first"'s, re-addressed to this message.
        old = by_node.get(reply.metadata.src_node_id)
        if old is None:
            return reply
        swapped = Message(old.content, reply_to=_request_of(reply))
        swapped.metadata.__dict__["_src_node_id"] = reply.metadata.src_node_id
        return swapped

    second = _through(
        link, federation, Hostile(federation.grid, replay), tmp_path, RunMode.QUOTE, "second"
    )
    assert isinstance(second, QuoteResult) and not second.ok
    assert {n.code for n in second.nodes} == {"unverified"}, second.nodes


def _request_of(reply: Message) -> Message:
    """A stand-in for the message `reply` answers (what `reply_to` reads from it)."""
    request = Message(RecordDict(), dst_node_id=reply.metadata.src_node_id, message_type="query")
    request.metadata.__dict__["_message_id"] = reply.metadata.reply_to_message_id
    request.metadata.__dict__["_src_node_id"] = reply.metadata.dst_node_id
    request.metadata.__dict__["_run_id"] = reply.metadata.run_id
    return request
