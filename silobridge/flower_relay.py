"""The coordinator's one Flower run: started on demand, attached over loopback, reused.

`FlowerRelay` serves the `GridRelay` API on a free loopback port, submits one run of the
released app to the SuperLink's Control API (through Flower's own CLI) with that address
and a fresh secret in its run config, and waits for the run's ServerApp to attach. Jobs
then get `RelayGrid`s over it: no Flower run is started per job, so a quote costs one
message round. If the run goes away (the SuperLink restarted, the run was stopped) the
next job starts another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from flwr.serverapp import Grid

from protos.silobridge.v1 import grid_relay_pb2_grpc
from server.interruptions import JobInterrupted
from server.relay.relay_grid import RelayGrid
from server.relay.relay_link import RelayLink, RelaySession
from server.relay.relay_serve import MAX_MESSAGE_BYTES
from silobridge.app_approvals import release_hash
from silobridge.daemons import toml_str
from silobridge.flower_federation import CONNECTION, Federation, app_root, run_flwr
from vocab.errors import SilobridgeError

__all__ = ["ATTACH_TIMEOUT_S", "FlowerRelay"]

log = logging.getLogger(__name__)

ATTACH_TIMEOUT_S = 180.0
"""Longest wait for a new run's ServerApp to attach (its start imports Flower and torch)."""
_STATUS_EVERY_S = 6.0
"""How often, while waiting, the run's status is read (a refused bundle ends the run)."""
_RUN_ID_RE = re.compile(r"Successfully started run (\d+)")


class FlowerRelay:
    """One relay run on `federation`, shared by every job of this process.

    Args:
        federation: The SuperLink's Control API (loopback in a deployment).
        flwr_home: Flower's CLI state for the relay's runs.
        app_dir: The released app to ship (default: this installation).
        attach_timeout_s: Longest wait for a run to attach.
    """

    def __init__(
        self, federation: Federation, flwr_home: Path, *, app_dir: Path | None = None,
        attach_timeout_s: float = ATTACH_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self._federation = federation
        self._flwr_home = flwr_home
        self._app_dir = app_dir or app_root()
        self._attach_timeout_s = attach_timeout_s
        self._token = secrets.token_urlsafe(32)
        self._link = RelayLink(self._token)
        self._starting = threading.Lock()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        # Two attach streams may overlap while a new run replaces an old one.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
        add_servicer = grid_relay_pb2_grpc.add_GridRelayServicer_to_server
        add_servicer(self._link, self._server)  # type: ignore[no-untyped-call]
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self._run_ids: list[int] = []

    def app_hash(self) -> str:
        """The shipped bundle's hash (built once per process)."""
        return release_hash(self._app_dir)

    @property
    def address(self) -> str:
        """Where the relay attaches (loopback)."""
        return f"127.0.0.1:{self._port}"

    def grid(self, should_stop: Callable[[], bool]) -> tuple[Grid, int]:
        """A job's Grid over the attached run (started first if none is), and its run id.

        Raises:
            JobInterrupted: If no run could be started or none attached in time: the job
                has not begun, and goes back to the queue like one whose link broke.
        """
        try:
            session = self.session()
        except SilobridgeError as err:
            raise JobInterrupted(f"no link to the federation: {err}") from err
        return RelayGrid(session, should_stop), session.run_id

    def session(self) -> RelaySession:
        """The attached relay, starting a run if none is attached."""
        with self._starting:
            session = self._link.session()
            if session is not None:
                return session
            run_id = self._start_run()
            session = self._wait_attached(run_id)
            log.info("jobs go through Flower run %d", run_id)
            return session

    def warm_up(self) -> None:
        """Start the run in the background, so the first job does not wait for it."""

        def start() -> None:
            try:
                self.session()
            except SilobridgeError as err:
                log.warning("the coordinator's Flower run could not start yet: %s", err)

        threading.Thread(target=start, name="relay-warm-up", daemon=True).start()

    def reset(self, reason: str) -> None:
        """Let the current run go (its ServerApp returns); the next job starts another."""
        self._link.release(reason)

    def close(self) -> None:
        """Let the run go and stop serving."""
        self.reset("the coordinator is stopping")
        self._server.stop(grace=2).wait(5)

    def __enter__(self) -> FlowerRelay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def _flwr(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return run_flwr(self._federation, self._flwr_home, *args, timeout_s=timeout_s)

    def _start_run(self) -> int:
        config = self._flwr_home / "relay-run.toml"
        self._flwr_home.mkdir(parents=True, exist_ok=True)
        config.touch(mode=0o600)
        config.write_text(
            f"relay = {toml_str(self.address)}\nrelay_token = {toml_str(self._token)}\n"
        )
        done = self._flwr("run", str(self._app_dir), CONNECTION, "--run-config", str(config))
        match = _RUN_ID_RE.search(done.stdout)
        if match is None:
            detail = (done.stderr.strip() or done.stdout.strip())[-1500:]
            raise SilobridgeError(
                f"the coordinator's Flower run did not start (flwr exited with "
                f"{done.returncode}): {detail}",
                f"is the SuperLink's Control API reachable at {self._federation.control_address}?",
            )
        run_id = int(match.group(1))
        self._run_ids.append(run_id)
        return run_id

    def _wait_attached(self, run_id: int) -> RelaySession:
        deadline = time.monotonic() + self._attach_timeout_s
        while (left := deadline - time.monotonic()) > 0:
            session = self._link.wait_attached(min(left, _STATUS_EVERY_S))
            if session is not None and session.run_id == run_id:
                return session
            if session is not None:  # an older run of ours came back: keep the newest
                session.close("a newer relay run was started")
            ended = self._ended(run_id)
            if ended:
                raise SilobridgeError(
                    f"the coordinator's Flower run {run_id} ended before it attached: {ended}",
                    "is the installed release approved on this coordinator "
                    "(`silobridge coordinator approve-app`)? See the launcher's log",
                )
        self._stop(run_id)
        raise SilobridgeError(
            f"the coordinator's Flower run {run_id} did not attach in "
            f"{self._attach_timeout_s:.0f} s",
            "see the ServerApp launcher's log; is the SuperLink's runtime API up?",
        )

    def _ended(self, run_id: int) -> str:
        """The run's end status and details once it finished, else ""."""
        done = self._flwr("ls", CONNECTION, "--run-id", str(run_id), "--format", "json")
        try:
            runs = json.loads(done.stdout).get("runs", [])
        except (json.JSONDecodeError, AttributeError):
            return ""
        for run in runs:
            status = str(run.get("status", ""))
            if status.startswith("finished"):
                return f"{status} ({run.get('status-details', '')})"
        return ""

    def _stop(self, run_id: int) -> None:
        with contextlib.suppress(SilobridgeError):
            self._flwr("stop", str(run_id), CONNECTION, timeout_s=20)
