"""Governance on real processes: node budgets refuse a second job, central caps refuse before
any node is asked, quotes charge nothing, and the node and coordinator audit logs agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from server.run_config import RunMode
from silobridge.flower_federation import Federation
from silobridge.flower_runner import submit_job
from testkit.synthetic import synthetic_spec
from tests.integration.conftest import LiveFederation
from vocab.audit_log import read_entries
from vocab.progress import Failed, FinalEvent, JobEnd, NodeQuoteView, QuoteResult

pytestmark = pytest.mark.integration

ANALYST = "tester"
CAPPED = ("alpha", "beta")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "silobridge.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def _quote(fed: LiveFederation, name: str) -> FinalEvent:
    spec = synthetic_spec(name, analyst=ANALYST, epsilon=1.0)
    return submit_job(
        spec, fed.root / name, Federation(fed.control, fed.root_certificates),
        fed.root / "analyst-flwr",
        fed.events.append, home=fed.root / "coordinator", mode=RunMode.QUOTE,
    )  # fmt: skip


def _by_department(quote: FinalEvent) -> dict[str, NodeQuoteView]:
    assert isinstance(quote, QuoteResult), quote
    return {node.department: node for node in quote.nodes}


def _ledger(fed: LiveFederation, name: str) -> SqliteLedger:
    cfg = fed.nodes[name]
    return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)


@pytest.fixture(scope="module")
def coordinator_home(federation: LiveFederation) -> Path:
    return federation.root / "coordinator"


def test_second_job_is_refused_because_the_first_spent_the_analyst_budget(
    federation: LiveFederation, coordinator_home: Path
) -> None:
    # Each capped department's officer gives the analyst room for one job of epsilon 1.
    for name in CAPPED:
        config = str(federation.nodes[name].config_path)
        proc = _cli("budget", "set", "--node-config", config, "--analyst", ANALYST,
                    "--epsilon", "1.2")  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    spent_before = {name: _ledger(federation, name).spent() for name in CAPPED}

    quote = _quote(federation, "gov-quote-1")
    assert isinstance(quote, QuoteResult), quote
    nodes = _by_department(quote)
    for name in CAPPED:
        assert nodes[name].would_run, nodes[name]
        assert [s.scope for s in nodes[name].scopes][1:] == [f"analyst {ANALYST}"]
    assert not nodes["poor"].would_run and nodes["poor"].code == "budget_exceeded"
    # The quote charged nothing anywhere.
    assert {name: _ledger(federation, name).spent() for name in CAPPED} == spent_before

    first = federation.run(synthetic_spec("gov-1", analyst=ANALYST, epsilon=1.0), "gov-1")
    assert isinstance(first, JobEnd) and first.status == "succeeded", first

    quote = _by_department(_quote(federation, "gov-quote-2"))
    for name in CAPPED:
        assert not quote[name].would_run
        assert f"budget: analyst {ANALYST}" in quote[name].reason

    final = federation.run(synthetic_spec("gov-2", analyst=ANALYST, epsilon=1.0), "gov-2")
    assert isinstance(final, JobEnd) and final.status == "failed", final
    second = json.loads(Path(final.result).read_text())
    for name in CAPPED:
        ledger = _ledger(federation, name)
        assert ledger.job_epsilon(second["job_id"]) == 0.0
        node_log = read_entries(audit_path_for(federation.nodes[name].ledger_path))
        # Refused at admission: the node's quote of the whole job said no.
        refusals = [e for e in node_log
                    if e.kind == "quote" and e.data["job_id"] == second["job_id"]]  # fmt: skip
        assert refusals and refusals[0].data["code"] == "budget_exceeded"
        assert f"budget: analyst {ANALYST}" in refusals[0].data["reason"]

    # The coordinator recorded the same refusals, with each node's chain head.
    coordinator_log = read_entries(coordinator_home / "coordinator.audit.jsonl")
    replies = [e for e in coordinator_log
               if e.kind == "node_reply" and e.data["job_id"] == second["job_id"]]  # fmt: skip
    refused = {e.data["department"] for e in replies if e.data["code"] == "budget_exceeded"}
    assert set(CAPPED) <= refused


def test_central_cap_refuses_before_any_node_is_asked(
    federation: LiveFederation, coordinator_home: Path
) -> None:
    proc = _cli("budget", "set", "--coordinator-home", str(coordinator_home),
                "--analyst", "capped", "--epsilon", "0.5")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before = {n: len(read_entries(audit_path_for(c.ledger_path)))
              for n, c in federation.nodes.items()}  # fmt: skip
    final = federation.run(synthetic_spec("gov-capped", analyst="capped", epsilon=1.0), "capped")
    assert isinstance(final, Failed)
    assert "capped" in final.reason and "0.5" in final.reason
    after = {n: len(read_entries(audit_path_for(c.ledger_path)))
             for n, c in federation.nodes.items()}  # fmt: skip
    assert after == before  # no node heard of the job


def test_node_and_coordinator_audit_logs_agree(
    federation: LiveFederation, coordinator_home: Path
) -> None:
    proc = _cli("audit", "verify", "--coordinator-home", str(coordinator_home))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, cfg in federation.nodes.items():
        proc = _cli("audit", "crosscheck", "--coordinator-home", str(coordinator_home),
                    "--node-config", str(cfg.config_path))  # fmt: skip
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
    # Truncating a node's log is caught by the heads the coordinator recorded.
    alpha_log = audit_path_for(federation.nodes["alpha"].ledger_path)
    lines = alpha_log.read_text().splitlines(keepends=True)
    alpha_log.write_text("".join(lines[:-3]))
    try:
        proc = _cli("audit", "crosscheck", "--coordinator-home", str(coordinator_home),
                    "--node-config", str(federation.nodes["alpha"].config_path))  # fmt: skip
        assert proc.returncode != 0
    finally:
        alpha_log.write_text("".join(lines))
