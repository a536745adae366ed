"""Generated department data with a known logistic signal, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
    render_node_config,
)
from silobridge.app_approvals import approve_release
from silobridge.flower_federation import app_root
from silobridge.officer_keys import generate_key_pair, load_private_key
from vocab.columns import ColumnClass, ColumnType
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.privacy import Budget

__all__ = ["COLUMNS", "make_rows", "synthetic_spec", "write_node"]

COLUMNS = (
    ColumnSpec("pid", ColumnType.INT, ColumnClass.RESTRICTED),
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


def synthetic_spec(name: str, **overrides: Any) -> RiskJobSpec:
    """A small risk job over the synthetic columns; keyword overrides go to [job], and an
    override of None removes the key (a DP-SGD value left to the nodes' defaults)."""
    job: dict[str, Any] = {
        "name": name, "target": "y", "positive": "1", "rounds": 2, "local_epochs": 2,
        "batch_size": 64, "learning_rate": 0.5, "epsilon": 1.0, "delta": 1e-5,
        "min_nodes": 2, "node_wait_s": 60.0, "round_timeout_s": 240.0,
    }  # fmt: skip
    job.update(overrides)
    job = {key: value for key, value in job.items() if value is not None}
    features = {
        "x1": {"lower": -4.0, "upper": 4.0},
        "x2": {"lower": -4.0, "upper": 4.0},
        "grp": {"categories": ["a", "b"]},
    }
    return parse_job_spec({"job": job, "features": features})


def write_node(
    folder: Path,
    name: str,
    budget: float,
    rows: pd.DataFrame | None,
    *,
    columns: tuple[ColumnSpec, ...] = COLUMNS,
    person_id: str | None = "pid",
    dataset: str = "people",
) -> NodeConfig:
    """Write a department folder (data.csv unless `rows` is None, node.toml); return its
    config. By default the rows are `make_rows`' synthetic columns."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.csv"
    if rows is not None:
        rows.to_csv(data, index=False)
    # The department's officer, who has reviewed this release and approved its bundle.
    officer = folder / "officer"
    if not (officer / "officer.key").exists():
        generate_key_pair(officer)
    approve_release(
        load_private_key(officer / "officer.key"), name, folder / "approvals", app_root()
    )
    cfg = NodeConfig(
        department=name,
        dataset=dataset,
        source=DataSourceSpec(SourceKind.CSV, data, None, None),
        columns=columns,
        person_id=person_id,
        budget=Budget(budget, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=0.25,
        split_seed=1,
        config_path=folder / "node.toml",
        # A published bound on the rows: their count rounded up to hundreds.
        public_rows=max(100, -(-len(rows) // 100) * 100) if rows is not None else 1000,
        officer=OfficerConfig(
            folder / "approvals", public_key_path=folder / "officer" / "officer.pub"
        ),
    )
    cfg.config_path.write_text(render_node_config(cfg))
    return cfg
