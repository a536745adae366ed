"""Column policy: which job columns a node accepts, and what a refusal says."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.column_policy import check_job_columns
from clients.node_config import Approval, ColumnSpec, DataSourceSpec, NodeConfig, SourceKind
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import PolicyRefusal
from vocab.privacy import Budget


def _config(*approvals: Approval) -> NodeConfig:
    return NodeConfig(
        department="northeast",
        dataset="lending",
        source=DataSourceSpec(SourceKind.CSV, Path("/data/loans.csv"), None, None),
        columns=(
            ColumnSpec("person_id", ColumnType.STRING, ColumnClass.RESTRICTED),
            ColumnSpec("member_no", ColumnType.INT, ColumnClass.OPEN),
            ColumnSpec("int_rate", ColumnType.FLOAT, ColumnClass.OPEN),
            ColumnSpec("grade", ColumnType.STRING, ColumnClass.OPEN),
            ColumnSpec("annual_inc", ColumnType.FLOAT, ColumnClass.CONDITIONAL),
            ColumnSpec("zip3", ColumnType.STRING, ColumnClass.CONDITIONAL),
            ColumnSpec("ssn", ColumnType.STRING, ColumnClass.RESTRICTED),
        ),
        person_id="member_no",
        budget=Budget(3.0, 1e-5),
        ledger_path=Path("/data/ledger.sqlite"),
        holdout_fraction=0.2,
        split_seed=0,
        approvals=approvals,
        config_path=Path("/etc/silobridge/node.toml"),
    )


def _refusal(job: str, used: list[str], config: NodeConfig) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        check_job_columns(job, used, config)
    assert f"`{job}`" in info.value.message
    return info.value


def test_open_columns_are_allowed() -> None:
    check_job_columns("risk", ["int_rate", "grade"], _config())


def test_approved_conditional_columns_are_allowed() -> None:
    config = _config(
        Approval("risk", frozenset({"annual_inc"})), Approval("risk", frozenset({"zip3"}))
    )
    check_job_columns("risk", ["int_rate", "annual_inc", "zip3"], config)


def test_unknown_column_is_named_with_close_matches() -> None:
    refusal = _refusal("risk", ["int_rate", "anual_inc", "colour"], _config())

    assert "`anual_inc`" in refusal.message
    assert "`colour`" in refusal.message
    assert "did you mean `annual_inc`" in refusal.message
    assert "[columns]" in refusal.hint


def test_restricted_column_is_refused() -> None:
    refusal = _refusal("risk", ["int_rate", "ssn", "person_id"], _config())
    assert "restricted" in refusal.message
    assert "`ssn`" in refusal.message
    assert "`person_id`" in refusal.message
    assert "`int_rate`" not in refusal.message


def test_restricted_column_is_refused_even_with_an_approval() -> None:
    # The loader rejects such approvals; the policy must not rely on that.
    refusal = _refusal("risk", ["ssn"], _config(Approval("risk", frozenset({"ssn"}))))
    assert "`ssn`" in refusal.message


def test_person_id_column_is_refused() -> None:
    refusal = _refusal("risk", ["member_no"], _config())
    assert "`member_no`" in refusal.message
    assert "person-id" in refusal.message


def test_conditional_column_without_approval_is_refused() -> None:
    refusal = _refusal("risk", ["int_rate", "annual_inc", "zip3"], _config())

    assert "conditional" in refusal.message
    assert "`annual_inc`" in refusal.message
    assert "`zip3`" in refusal.message
    assert 'job = "risk"' in refusal.hint
    assert '"annual_inc", "zip3"' in refusal.hint


def test_approval_for_another_job_does_not_count() -> None:
    refusal = _refusal(
        "risk", ["annual_inc"], _config(Approval("census", frozenset({"annual_inc"})))
    )
    assert "`annual_inc`" in refusal.message


def test_approval_covers_only_the_columns_it_names() -> None:
    refusal = _refusal(
        "risk", ["annual_inc", "zip3"], _config(Approval("risk", frozenset({"annual_inc"})))
    )
    assert "`zip3`" in refusal.message
    assert "`annual_inc`" not in refusal.message
