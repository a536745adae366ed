"""Talks to a SuperLink's Control API through Flower's own CLI: submits a job with `flwr run
--stream` and relays its progress events, registers a SuperNode's key with `flwr supernode
register`."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.run_config import RunMode
from silobridge.daemons import toml_str
from silobridge.processes import child_env, flower_executable
from vocab.bundle import files_from_event, write_files
from vocab.errors import ConfigError, SilobridgeError
from vocab.progress import (
    FINAL_KINDS,
    Failed,
    FinalEvent,
    JobEnd,
    ProgressEvent,
    ProgressEventError,
    QuoteResult,
    decode_event,
)
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope

__all__ = ["Federation", "app_root", "register_supernode", "submit_job"]

_RUN_ID_RE = re.compile(r"Successfully started run (\d+)")
_CONNECTION = "silobridge"
# Flower's error text when a key is registered already (ApiErrorCode.PUBLIC_KEY_ALREADY_IN_USE).
_KEY_IN_USE = "Public key already in use"


@dataclass(frozen=True)
class Federation:
    """Where the SuperLink's Control API listens, and how to reach it."""

    control_address: str
    root_certificates: Path | None = None

    def config_toml(self) -> str:
        lines = [
            "[superlink]",
            f'default = "{_CONNECTION}"',
            "",
            f"[superlink.{_CONNECTION}]",
            f'address = "{self.control_address}"',
        ]
        if self.root_certificates is None:
            lines.append("insecure = true")
        else:
            lines.append(f'root-certificates = "{self.root_certificates}"')
        return "\n".join(lines) + "\n"


def app_root() -> Path:
    """The folder holding the Flower App's pyproject.toml (this source checkout)."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or "[tool.flwr.app]" not in pyproject.read_text():
        raise ConfigError(
            f"no Flower App pyproject.toml at {root}",
            "install silobridge from its source checkout in editable mode (`make install`)",
        )
    return root


def submit_job(
    spec: JobEnvelope,
    out_dir: Path,
    federation: Federation,
    flwr_home: Path,
    on_event: Callable[[ProgressEvent], None],
    *,
    mode: RunMode = RunMode.RUN,
    app_dir: Path | None = None,
    job_id: str = "",
    should_stop: Callable[[], bool] | None = None,
) -> FinalEvent:
    """Run (or, with `mode` QUOTE, only price) `spec` on the federation; blocks until done.

    The run ships the app bundle of `app_dir` (default: this installation's checkout).
    `job_id` (the coordinator service's) names the job at the nodes instead of the name
    and Flower's run id. When `should_stop` turns True the run is stopped (`flwr stop`).

    Returns the last event (`job_end` or `failed`; a quote ends in `quote_result` or
    `failed`); the result bundle the last event carries is written to `out_dir`. The raw
    stream goes to `out_dir/flwr-run.log`. A progress line that is not a well-formed event
    is left in that log and not shown.

    Raises:
        SilobridgeError: if the run could not be started, ended without a result, or its
            last event is malformed.
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(federation.config_toml())
    run_config = out_dir / "run-config.toml"
    encoded = base64.b64encode(job_to_bytes(spec)).decode()
    run_config.write_text(
        f"job = {toml_str(encoded)}\nout = {toml_str(str(out_dir))}\n"
        f"mode = {toml_str(mode.value)}\njob_id = {toml_str(job_id)}\n"
    )
    argv = [
        flower_executable("flwr"),
        "run",
        str(app_dir or app_root()),
        _CONNECTION,
        "--stream",
        "--run-config",
        str(run_config),
    ]
    env = {"FLWR_HOME": str(flwr_home), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    final: FinalEvent | None = None
    malformed: ProgressEventError | None = None
    run_id = ""
    tail: list[str] = []
    log_path = out_dir / "flwr-run.log"
    with open(log_path, "w") as log_fh:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        ids: dict[str, str] = {}
        watcher = _stop_watcher(proc, ids, env, should_stop) if should_stop else None
        try:
            for line in proc.stdout:
                log_fh.write(line)
                log_fh.flush()
                tail = [*tail, line.rstrip()][-15:]
                if match := _RUN_ID_RE.search(line):
                    run_id = ids["run"] = match.group(1)
                try:
                    event = decode_event(line)
                except ProgressEventError as err:
                    if err.kind not in FINAL_KINDS:
                        continue  # an unreadable progress line costs the analyst that line
                    malformed = err
                    break
                if event is None:
                    continue
                on_event(event)
                if isinstance(event, JobEnd | Failed | QuoteResult):
                    final = event
                    break
            _drain(proc, log_fh)
        except KeyboardInterrupt:
            if run_id:
                _stop_run(run_id, env)
            raise
        finally:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            if watcher is not None:
                watcher.join(timeout=5)
    if malformed is not None:
        raise SilobridgeError(malformed.message, f"{malformed.hint}; full log: {log_path}")
    if final is None:
        detail = "\n".join(t for t in tail if t.strip())
        hint = (
            f"the run started (id {run_id}) but its ServerApp stopped early"
            if run_id
            else f"is the coordinator reachable at {federation.control_address}?"
        )
        raise SilobridgeError(
            f"the run ended without a result (flwr exited with {proc.returncode}):\n{detail}",
            f"{hint}; full log: {log_path}",
        )
    files = files_from_event(final.files) if isinstance(final, JobEnd) else None
    if files:
        # The analyst's copy: the coordinator keeps its own under its home.
        write_files(out_dir, files)
    return final


def register_supernode(federation: Federation, public_key: Path, flwr_home: Path) -> str | None:
    """Register a SuperNode's authentication key with the SuperLink (its Control API).

    Returns the node id Flower gave the key, or None if the key was registered already.

    Raises:
        SilobridgeError: If the SuperLink cannot be reached or refuses the key.
    """
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(federation.config_toml())
    argv = [
        flower_executable("flwr"),
        "supernode",
        "register",
        str(public_key.resolve()),
        _CONNECTION,
        "--format",
        "json",
    ]
    env = {"FLWR_HOME": str(flwr_home), "NO_COLOR": "1"}
    try:
        done = subprocess.run(
            argv,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise SilobridgeError(
            "registering the SuperNode key got no answer in 120 s",
            f"is the coordinator's Control API reachable at {federation.control_address}?",
        ) from None
    try:
        reply = json.loads(done.stdout)
    except json.JSONDecodeError:
        reply = {}
    if reply.get("success"):
        return str(reply["node-id"])
    message = str(reply.get("error-message") or done.stderr.strip() or done.stdout.strip())
    if _KEY_IN_USE in message:
        return None
    raise SilobridgeError(
        f"the SuperLink did not register the key {public_key}: {message}",
        f"check the Control API address ({federation.control_address}), that the coordinator "
        "runs with TLS (pass its CA with --root-certificates) and that the file is the node's "
        ".pub key",
    )


def _drain(proc: subprocess.Popen[str], log_fh: Any) -> None:
    # The stream may stay open briefly after the ServerApp's last line; keep its tail.
    with contextlib.suppress(subprocess.TimeoutExpired):
        out, _ = proc.communicate(timeout=15)
        if out:
            log_fh.write(out)


def _stop_watcher(
    proc: subprocess.Popen[str], ids: dict[str, str], env: dict[str, str],
    should_stop: Callable[[], bool],
) -> threading.Thread:  # fmt: skip
    """A thread that stops the run once `should_stop` says so (polled every second)."""

    def watch() -> None:
        while proc.poll() is None:
            if should_stop():
                if "run" in ids:
                    _stop_run(ids["run"], env)
                proc.terminate()
                return
            time.sleep(1.0)

    thread = threading.Thread(target=watch, name="run-stop-watcher", daemon=True)
    thread.start()
    return thread


def _stop_run(run_id: str, env: dict[str, str]) -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [flower_executable("flwr"), "stop", run_id, _CONNECTION],
            env=child_env(env),
            timeout=20,
            capture_output=True,
        )
