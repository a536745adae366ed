"""`silobridge node start` without --port: a free port is picked and printed, so several
nodes on one host need no flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from silobridge.cli.main import app
from silobridge.processes import Daemon
from testkit.synthetic import make_rows, write_node


def test_each_node_gets_a_free_port_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports: list[int] = []

    def fake_start_node(group: Any, **kwargs: Any) -> None:
        ports.append(kwargs["port"])
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        group.daemons.append(Daemon("supernode", proc, None))

    monkeypatch.setattr("silobridge.cli.node_cmd.start_node", fake_start_node)
    outputs = []
    for name in ("tax", "health"):
        cfg = write_node(tmp_path / name, name, 3.0, make_rows(50, 1))
        result = CliRunner().invoke(
            app, ["node", "start", "--config", str(cfg.config_path), "--coordinator",
                  "127.0.0.1:9092"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert len(set(ports)) == 2 and all(1024 < p < 65536 for p in ports)
    for port, output in zip(ports, outputs, strict=True):
        assert f"runtime API on 127.0.0.1:{port}" in output
