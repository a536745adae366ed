"""A real federation on loopback: one SuperLink and several SuperNodes with generated data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    SourceKind,
    render_node_config,
)
from silobridge.daemons import CoordinatorAddresses, superlink_argv
from silobridge.flower_runner import Federation, submit_job
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup, free_port, wait_for_port
from vocab.columns import ColumnClass, ColumnType
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.privacy import Budget

COLUMNS = (
    ColumnSpec("pid", ColumnType.INT, ColumnClass.OPEN),
    ColumnSpec("x1", ColumnType.FLOAT, ColumnClass.OPEN),
    ColumnSpec("x2", ColumnType.FLOAT, ColumnClass.OPEN),
    ColumnSpec("grp", ColumnType.STRING, ColumnClass.OPEN),
    ColumnSpec("secret", ColumnType.STRING, ColumnClass.RESTRICTED),
    ColumnSpec("y", ColumnType.INT, ColumnClass.OPEN),
)


def make_rows(n: int, seed: int) -> pd.DataFrame:
    """Rows whose label follows a known logistic model, so a trained model beats its start."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    grp = rng.choice(["a", "b"], size=n)
    logit = 1.8 * x1 - 1.2 * x2 + 0.8 * (grp == "a") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "pid": np.arange(n) + seed * 100_000,
            "x1": x1,
            "x2": x2,
            "grp": grp,
            "secret": [f"s{i}" for i in range(n)],
            "y": y,
        }
    )


def job_spec(name: str, **overrides: Any) -> RiskJobSpec:
    job = {
        "name": name,
        "target": "y",
        "positive": "1",
        "rounds": 2,
        "local_epochs": 2,
        "batch_size": 64,
        "learning_rate": 0.5,
        "epsilon": 1.0,
        "delta": 1e-5,
        "min_nodes": 2,
        "node_wait_s": 60.0,
        "round_timeout_s": 240.0,
    }
    job.update(overrides)
    return parse_job_spec(
        {
            "job": job,
            "features": {
                "x1": {"lower": -4.0, "upper": 4.0},
                "x2": {"lower": -4.0, "upper": 4.0},
                "grp": {"categories": ["a", "b"]},
            },
        }
    )


def write_node(folder: Path, name: str, budget: float, rows: pd.DataFrame | None) -> NodeConfig:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.csv"
    if rows is not None:
        rows.to_csv(data, index=False)
    cfg = NodeConfig(
        department=name,
        dataset="people",
        source=DataSourceSpec(SourceKind.CSV, data, None, None),
        columns=COLUMNS,
        person_id="pid",
        budget=Budget(budget, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=0.25,
        split_seed=1,
        approvals=(),
        config_path=folder / "node.toml",
    )
    cfg.config_path.write_text(render_node_config(cfg))
    return cfg


@dataclass
class LiveFederation:
    """Handles to a running federation and a helper to run jobs on it."""

    root: Path
    control: str
    nodes: dict[str, NodeConfig] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(self, spec: RiskJobSpec, out_name: str) -> dict[str, Any]:
        return submit_job(
            spec,
            self.root / out_name,
            Federation(self.control),
            self.root / "analyst-flwr",
            self.events.append,
        )


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFederation]:
    """SuperLink + 4 SuperNodes: two healthy, one with a tiny budget, one with a corrupt CSV."""
    root = tmp_path_factory.mktemp("federation")
    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    live = LiveFederation(root, addresses.control)
    live.nodes["alpha"] = write_node(root / "alpha", "alpha", 8.0, make_rows(700, 1))
    live.nodes["beta"] = write_node(root / "beta", "beta", 8.0, make_rows(700, 2))
    live.nodes["poor"] = write_node(root / "poor", "poor", 0.3, make_rows(700, 3))
    corrupt = write_node(root / "corrupt", "corrupt", 8.0, None)
    corrupt.source.path.write_text('pid,x1,x2,grp,secret,y\n1,0.5,"unterminated\n2,abc,1,a,s,1\n')  # type: ignore[union-attr]
    live.nodes["corrupt"] = corrupt
    group = ProcessGroup(root / "logs")
    with group.running():
        link = group.start(
            "superlink",
            superlink_argv(addresses, root / "superlink.db"),
            {"FLWR_HOME": str(root / "superlink-flwr")},
        )
        host, port = addresses.control.rsplit(":", 1)
        wait_for_port(host, int(port), 60, link)
        supernodes = [
            start_node(
                group,
                config_path=cfg.config_path,
                department=name,
                coordinator=addresses.fleet,
                port=free_port(),
                flwr_home=cfg.config_path.parent / ".flwr",
            )[0]
            for name, cfg in live.nodes.items()
        ]
        for daemon in supernodes:
            assert daemon.log_path is not None
            _wait_for_log(daemon.log_path, "SuperNode ID", 90)
        yield live


def _wait_for_log(path: Path, needle: str, timeout_s: float) -> None:
    """Block until a daemon's log shows it registered with the SuperLink."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{path.name} never logged {needle!r}")
