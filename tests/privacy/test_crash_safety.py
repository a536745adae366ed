"""A node killed between reserve and commit: the charge stays, a retry never charges twice,
and the round is never trained again with fresh noise (each retry would be a free draw).

The process answering the round is a real Python process running the node's job handler
with real Opacus training; it is SIGKILLed while its reservation is open.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.ledger.ledger import EntryStatus
from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_identity import node_identity
from clients.release import JobRequest, handle_request
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.accounting import epsilon_spent
from vocab.audit_chain import verify_chain
from vocab.audit_log import read_entries
from vocab.errors import RefusalCode
from vocab.models import build_model, get_weights
from vocab.wire import TRAIN, ReplyStatus

JOB_ID = "crash#1"
# Long enough local training that the kill lands between reserve and commit.
SPEC_ARGS = {"local_epochs": 40, "rounds": 2, "epsilon": 2.0}

_CHILD = """
import sys
from pathlib import Path
from clients.release import JobRequest, handle_request
from testkit.synthetic import synthetic_spec
from vocab.models import build_model, get_weights
from vocab.wire import TRAIN

spec = synthetic_spec("crash", local_epochs=40, rounds=2, epsilon=2.0)
request = JobRequest(spec, "crash#1", int(sys.argv[2]), get_weights(build_model(spec)), TRAIN)
handle_request(Path(sys.argv[1]), "alpha", request)
"""


def _logged_reservation(audit: Path, rnd: int) -> bool:
    try:
        entries = read_entries(audit)
    except Exception:  # a line being written: look again
        return False
    return any(e.kind == "reservation" and e.data.get("round") == rnd for e in entries)


def _request(rnd: int) -> JobRequest:
    spec = synthetic_spec("crash", **SPEC_ARGS)
    return JobRequest(spec, JOB_ID, rnd, get_weights(build_model(spec)), TRAIN)


def _kill_while_reserved(config: Path, ledger: SqliteLedger, rnd: int, audit: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(config), str(rnd)], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = [e.status for e in ledger.history()]
            # Reserved in the ledger and logged: the kill lands in the noisy computation.
            if EntryStatus.RESERVED in statuses and _logged_reservation(audit, rnd):
                break
            assert child.poll() is None, f"node process ended first, ledger: {statuses}"
            time.sleep(0.01)
        else:
            pytest.fail("the node process never reserved its round")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)


def test_kill_between_reserve_and_commit_keeps_the_charge_and_never_double_charges(
    tmp_path: Path,
) -> None:
    rnd = 1
    cfg = write_node(tmp_path / "alpha", "alpha", 5.0, make_rows(1500, seed=3))
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    _kill_while_reserved(cfg.config_path, ledger, rnd, audit_path_for(cfg.ledger_path))

    # The crash lost nothing: the open reservation counts as spent.
    (entry,) = ledger.history()
    assert entry.status is EntryStatus.RESERVED
    charged = epsilon_spent([entry.event], cfg.budget.delta)
    assert ledger.spent() == charged
    audit = audit_path_for(cfg.ledger_path)
    kinds = [e.kind for e in read_entries(audit)]
    assert kinds == ["job_received", "reservation"]  # no charge, no release logged

    # The coordinator retries the round: the charge stands, and the round is not trained
    # again - it is committed as failed, and the reply carries nothing from the data.
    first = handle_request(cfg.config_path, "alpha", _request(rnd))
    assert first.report.status is ReplyStatus.REFUSED
    assert first.report.code == RefusalCode.ROUND_FAILED.value
    assert first.weights is None and first.holdout is None
    assert "stays charged" in first.report.reason
    (entry,) = ledger.history()
    assert entry.status is EntryStatus.COMMITTED
    assert ledger.spent() == charged
    resumed = [e for e in read_entries(audit) if e.kind == "reservation"][-1]
    assert resumed.data["resumed"] is True

    # A second retry gets the stored reply back: the same refusal, nothing charged.
    second = handle_request(cfg.config_path, "alpha", _request(rnd))
    assert second.report == dataclasses.replace(
        first.report,
        audit_seq=second.report.audit_seq,
        audit_head=second.report.audit_head,
        audit_sig=second.report.audit_sig,
    )
    assert len(ledger.history()) == 1
    assert ledger.spent() == charged
    assert "resend" in [e.kind for e in read_entries(audit)]
    assert verify_chain(read_entries(audit), node_identity(cfg.ledger_path).public).ok


def test_a_crash_in_the_jobs_last_round_is_closed_as_charged_on_retry(tmp_path: Path) -> None:
    # With round 1 committed, round 2 is the job's last training release: the retry must
    # close the open charge, not refuse for counting it twice and leave it open forever.
    cfg = write_node(tmp_path / "alpha", "alpha", 5.0, make_rows(1500, seed=3))
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    assert handle_request(cfg.config_path, "alpha", _request(1)).report.status is ReplyStatus.OK
    _kill_while_reserved(cfg.config_path, ledger, 2, audit_path_for(cfg.ledger_path))
    charged = ledger.spent()

    retry = handle_request(cfg.config_path, "alpha", _request(2))
    assert retry.report.code == RefusalCode.ROUND_FAILED.value, retry.report.reason
    assert [e.status for e in ledger.history()] == [EntryStatus.COMMITTED] * 2
    assert ledger.spent() == charged
