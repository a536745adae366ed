"""Dry-run quotes at the node: every check a run makes, only a row count read, nothing charged."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.ledger.ledger import Scope, ScopeKind
from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.release import handle_quote
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_log import read_entries
from vocab.errors import RefusalCode
from vocab.privacy import Budget
from vocab.wire import ReplyStatus


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, SqliteLedger]:
    cfg = write_node(tmp_path / "alpha", "alpha", 3.0, make_rows(400, seed=1))
    return cfg.config_path, SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget, "2026")


def test_quote_prices_the_whole_job_and_charges_nothing(
    node: tuple[Path, SqliteLedger],
) -> None:
    config, ledger = node
    quote = handle_quote(config, "alpha", synthetic_spec("q", epsilon=1.0), "q#1")
    assert quote.status is ReplyStatus.OK, quote.reason
    assert 0.9 < quote.requested <= 1.0  # calibrated to the job's epsilon, never above
    (total,) = quote.scopes
    assert (total.scope, total.epsilon, total.spent, total.fits) == ("period 2026", 3.0, 0.0, True)
    assert total.spent_after == pytest.approx(quote.requested)
    assert ledger.history() == []
    kinds = [e.kind for e in read_entries(audit_path_for(ledger.path))]
    assert kinds == ["job_received", "quote"]
    assert quote.audit_seq == 2 and quote.audit_head


def test_quote_names_the_budget_that_would_refuse(node: tuple[Path, SqliteLedger]) -> None:
    config, ledger = node
    ledger.set_budget(Scope(ScopeKind.ANALYST, "r.ahmed"), Budget(0.5, 1e-5))
    spec = synthetic_spec("q", epsilon=1.0, analyst="r.ahmed")
    quote = handle_quote(config, "alpha", spec, "q#2")
    assert quote.status is ReplyStatus.REFUSED
    assert quote.code == RefusalCode.BUDGET_EXCEEDED.value
    assert "budget: analyst r.ahmed" in quote.reason
    assert [s.scope for s in quote.scopes] == ["period 2026", "analyst r.ahmed"]
    assert [s.fits for s in quote.scopes] == [True, False]
    assert ledger.history() == []


def test_quote_refuses_a_restricted_column_like_a_run(node: tuple[Path, SqliteLedger]) -> None:
    config, _ = node
    spec = synthetic_spec("q", target="secret", positive="s1")
    quote = handle_quote(config, "alpha", spec, "q#3")
    assert quote.status is ReplyStatus.REFUSED
    assert quote.code == RefusalCode.POLICY.value
    assert "restricted" in quote.reason


def test_quote_on_a_broken_config_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "node.toml"
    bad.write_text("[node]\ndepartment = 'x'\n")
    quote = handle_quote(bad, "x", synthetic_spec("q"), "q#4")
    assert quote.status is ReplyStatus.REFUSED
    assert quote.code == RefusalCode.CONFIG_INVALID.value
