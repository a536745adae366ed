"""The demo cleans up every process it started when the user presses Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _processes_mentioning(needle: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            # Forked app processes carry the out dir only in their environment (FLWR_HOME).
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            continue
        if (needle in cmdline or needle in environ) and state != "Z":
            found.append(f"{pid}: {cmdline[:160]}")
    return found


def test_ctrl_c_during_a_round_stops_every_process(tmp_path: Path) -> None:
    out = tmp_path / "demo-interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "silobridge.cli.main", "demo", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "round 1/" in line or time.monotonic() > deadline:
            break
    assert any("round 1/" in line for line in seen), "".join(seen)
    assert _processes_mentioning(str(out)), "the federation should be running"
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest and "Traceback" not in rest
    time.sleep(1)
    assert _processes_mentioning(str(out)) == []
