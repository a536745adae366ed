"""Starts and reliably stops the Flower daemons silobridge launches (SuperLink, SuperNodes)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from vocab.errors import ConfigError, SilobridgeError

__all__ = [
    "Daemon",
    "ProcessGroup",
    "child_env",
    "descendants",
    "flower_executable",
    "free_port",
    "wait_for_port",
]

log = logging.getLogger(__name__)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def descendants(root: int) -> set[int]:
    """All live descendants of `root`, from /proc (empty where /proc does not exist)."""
    children: dict[int, list[int]] = {}
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return set()
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Field 4 of /proc/PID/stat is the parent pid; the name (field 2) may hold spaces.
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, with this interpreter's scripts on PATH,
    safe import paths and Flower's telemetry off.

    Flower daemons spawn helpers (`flower-superexec`, `flwr-serverapp`) by name.
    """
    env = {**os.environ, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # `python -m clients.runtime.warm_superexec` must import the installed gate, never a `clients/`
    # folder that happens to be in the operator's working directory.
    env["PYTHONSAFEPATH"] = "1"
    # Flower reports usage events to its makers by default: nothing leaves a department.
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, daemon: Daemon) -> None:
    """Block until `host:port` accepts TCP connections, the daemon dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            raise SilobridgeError(
                f"{daemon.name} exited with code {daemon.proc.returncode} before listening on "
                f"{host}:{port}",
                f"see {daemon.log_path}",
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise SilobridgeError(
        f"{daemon.name}: nothing listens on {host}:{port} after {timeout_s:.0f}s",
        f"see {daemon.log_path}",
    )


def flower_executable(name: str) -> str:
    """Path of a Flower console script installed beside this Python."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"`{name}` not found",
            "install silobridge into this environment: `make install` or `pip install -e .`",
        )
    return found


@dataclass
class Daemon:
    """A started process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path | None


@dataclass
class ProcessGroup:
    """Owns every daemon it starts and stops them all on exit, Ctrl-C or SIGTERM.

    Each daemon gets its own session so its whole process tree (Flower spawns app
    processes) can be signalled at once.
    """

    log_dir: Path | None
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Daemon:
        """Start `argv`; output goes to `log_dir/name.log`, or this terminal if no log_dir."""
        if self.log_dir is None:
            proc = subprocess.Popen(list(argv), env=child_env(env), start_new_session=True)
            daemon = Daemon(name, proc, None)
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{name}.log"
            with open(log_path, "ab") as fh:
                proc = subprocess.Popen(
                    list(argv),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=child_env(env),
                    start_new_session=True,
                )
            daemon = Daemon(name, proc, log_path)
        self.daemons.append(daemon)
        log.debug("started %s (pid %d): %s", name, proc.pid, " ".join(argv))
        return daemon

    def wait_any(self) -> Daemon:
        """Block until one daemon exits; returns it (the others keep running)."""
        while True:
            for daemon in self.daemons:
                if daemon.proc.poll() is not None:
                    return daemon
            time.sleep(0.5)

    def stop_all(self, grace_s: float = 8.0) -> None:
        """SIGTERM every process tree, then SIGKILL what is left after `grace_s`.

        Flower starts some app processes in sessions of their own (the ServerApp), so
        signalling each daemon's process group is not enough: every descendant found
        before the first signal is signalled too.
        """
        tree = {pid for d in self.daemons for pid in descendants(d.proc.pid)}
        for daemon in reversed(self.daemons):
            if daemon.proc.poll() is None:
                _signal_group(daemon.proc.pid, signal.SIGTERM)
        for pid in tree:
            _signal_pid(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for daemon in self.daemons:
            remaining = max(0.1, deadline - time.monotonic())
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.proc.wait(timeout=remaining)
            _signal_group(daemon.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.proc.wait(timeout=5)
        for pid in tree:
            _signal_pid(pid, signal.SIGKILL)
        self.daemons.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcessGroup]:
        """Stop everything on leaving the block, including via SIGTERM (turned into exit)."""

        def _on_term(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, _on_term)
        try:
            yield self
        finally:
            try:
                self.stop_all()
            finally:
                signal.signal(signal.SIGTERM, previous)
