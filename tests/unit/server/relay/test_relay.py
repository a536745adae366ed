"""The relay link on a real loopback gRPC server: a job driven in this process over a
`RelayGrid`, its Grid calls performed by `serve_relay` (the ServerApp's loop) on a grid of
departments with their real ClientApp functions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from flwr.serverapp import Grid

from protos.silobridge.v1 import grid_relay_pb2, grid_relay_pb2_grpc
from server.interruptions import JobCancelled, JobInterrupted
from server.relay.relay_grid import RelayGrid
from server.relay.relay_link import RelayLink, RelaySession
from server.relay.relay_serve import serve_relay
from server.run_config import RunMode, decode_relay_config
from server.service.grid_runner import GridRunner
from server.service.runner import RunRequest
from testkit.inprocess_federation import Federation
from testkit.synthetic import synthetic_spec
from vocab.errors import JobSpecError
from vocab.progress import JobEnd, ProgressEvent, QuoteResult

TOKEN = "the-run-token"


def _never() -> bool:
    return False


class Link:
    def __init__(self, link: RelayLink, address: str) -> None:
        self.link = link
        self.address = address
        self.threads: list[threading.Thread] = []

    def attach(self, grid: Grid, token: str = TOKEN, run_id: int = 7) -> threading.Thread:
        """The ServerApp side, in a thread, as the relay run runs it."""
        thread = threading.Thread(
            target=serve_relay, args=(grid, self.address, token, run_id), daemon=True
        )
        thread.start()
        self.threads.append(thread)
        return thread

    def session(self) -> RelaySession:
        session = self.link.wait_attached(10)
        assert session is not None, "the relay did not attach"
        return session


@pytest.fixture
def link() -> Iterator[Link]:
    relay_link = RelayLink(TOKEN)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    grid_relay_pb2_grpc.add_GridRelayServicer_to_server(relay_link, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    made = Link(relay_link, f"127.0.0.1:{port}")
    yield made
    relay_link.release("test over")
    server.stop(grace=1).wait(5)
    for thread in made.threads:
        thread.join(timeout=5)


@pytest.fixture
def federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Federation:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    return Federation(tmp_path / "federation")


def _runner(federation: Federation, session: RelaySession) -> GridRunner:
    def grids(should_stop: Callable[[], bool]) -> tuple[Grid, int]:
        return RelayGrid(session, should_stop), session.run_id

    return GridRunner(federation.home.root, grids)


def test_a_job_runs_end_to_end_through_the_relay(
    link: Link, federation: Federation, tmp_path: Path
) -> None:
    link.attach(federation.grid)
    runner = _runner(federation, link.session())
    events: list[ProgressEvent] = []
    spec = synthetic_spec("relayed", rounds=2, min_nodes=2)
    final = runner.run(
        RunRequest("job-1", spec, RunMode.RUN, tmp_path / "out"), events.append, bool
    )
    assert isinstance(final, JobEnd), final
    assert final.status == "succeeded", final.failure
    assert (tmp_path / "out" / "result.json").is_file()
    # Both departments were charged for the job under the service's id, through the relay.
    assert all(federation.charged(name, "job-1") > 0 for name in federation.nodes)
    quote = runner.run(
        RunRequest("quote-1", spec, RunMode.QUOTE, tmp_path / "q"), events.append, _never
    )
    assert isinstance(quote, QuoteResult) and quote.ok, quote
    assert {n.department for n in quote.nodes} == set(federation.nodes)
    assert (tmp_path / "q" / "quote.json").is_file()


def test_a_relay_without_the_runs_token_is_refused(link: Link, federation: Federation) -> None:
    channel = grpc.insecure_channel(link.address)
    stub = grid_relay_pb2_grpc.GridRelayStub(channel)  # type: ignore[no-untyped-call]
    hello = grid_relay_pb2.RelayUp(hello=grid_relay_pb2.RelayHello(token="guess", run_id=1))
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Attach(iter([hello]), timeout=10))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert link.link.session() is None
    channel.close()


def test_a_cancelled_job_stops_at_its_next_grid_call(link: Link, federation: Federation) -> None:
    link.attach(federation.grid)
    grid = RelayGrid(link.session(), should_stop=lambda: True)
    with pytest.raises(JobCancelled):
        grid.get_node_ids()


def test_losing_the_relay_interrupts_waiting_and_later_calls(link: Link) -> None:
    class Stuck(Grid):  # a SuperLink that never answers
        def __init__(self) -> None:
            self.release = threading.Event()

        def get_node_ids(self) -> list[int]:
            self.release.wait(20)
            return []

        set_run = create_message = push_messages = pull_messages = send_and_receive = None  # type: ignore[assignment]
        run = None  # type: ignore[assignment]

    stuck = Stuck()
    link.attach(stuck)
    session = link.session()
    grid = RelayGrid(session)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            grid.get_node_ids()
        except BaseException as err:
            errors.append(err)

    waiting = threading.Thread(target=call)
    waiting.start()
    time.sleep(0.3)
    link.link.release("the SuperLink restarted")
    waiting.join(timeout=10)
    stuck.release.set()
    assert len(errors) == 1 and isinstance(errors[0], JobInterrupted)
    assert "restarted" in str(errors[0])
    with pytest.raises(JobInterrupted):
        grid.get_node_ids()


def test_a_grid_call_the_superlink_fails_interrupts_the_job(link: Link) -> None:
    class Broken(Grid):
        def get_node_ids(self) -> list[int]:
            raise ConnectionError("SuperLink unreachable")

        set_run = create_message = push_messages = pull_messages = send_and_receive = None  # type: ignore[assignment]
        run = None  # type: ignore[assignment]

    link.attach(Broken())
    with pytest.raises(JobInterrupted, match="SuperLink unreachable"):
        RelayGrid(link.session()).get_node_ids()


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({}, "relay_token"),
        ({"relay": "127.0.0.1:5", "relay_token": ""}, "relay_token"),
        ({"relay": "10.0.0.8:5", "relay_token": "t"}, "loopback"),
        ({"relay": "127.0.0.1:5; rm", "relay_token": "t"}, "loopback"),
    ],
)
def test_the_relay_config_is_checked(config: dict[str, str], needle: str) -> None:
    with pytest.raises(JobSpecError, match=needle):
        decode_relay_config(config)
    assert decode_relay_config({"relay": "127.0.0.1:5", "relay_token": "t"}).token == "t"
