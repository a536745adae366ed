"""The node's answers: rounds outside the job, evaluations, and what an error reveals."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.job_handler import JobRequest, handle_request
from clients.node_audit import audit_path_for
from clients.sqlite_ledger import SqliteLedger
from silobridge.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_log import read_entries
from vocab.errors import RefusalCode
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus

SPEC = synthetic_spec("answers", rounds=2, local_epochs=1, epsilon=2.0)


def _request(round: int, train: bool = True) -> JobRequest:
    return JobRequest(SPEC, "answers#1", round, get_weights(build_model(SPEC)), train=train)


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, SqliteLedger]:
    cfg = write_node(tmp_path / "alpha", "alpha", 8.0, make_rows(600, seed=5))
    return cfg.config_path, SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)


def test_rounds_outside_the_job_are_refused_and_never_charged(
    node: tuple[Path, SqliteLedger],
) -> None:
    config, ledger = node
    for rnd in (0, 3, 99):
        outcome = handle_request(config, "alpha", _request(rnd))
        assert outcome.report.status is ReplyStatus.REFUSED
        assert outcome.report.code == RefusalCode.POLICY.value
        assert "rounds 1 to 2" in outcome.report.reason
        assert outcome.weights is None
    assert ledger.history() == []


def test_evaluation_only_after_training_and_only_once(node: tuple[Path, SqliteLedger]) -> None:
    config, ledger = node
    early = handle_request(config, "alpha", _request(3, train=False))
    assert early.report.status is ReplyStatus.REFUSED
    assert "trained no round" in early.report.reason
    assert early.holdout is None

    trained = handle_request(config, "alpha", _request(1))
    assert trained.report.status is ReplyStatus.OK, trained.report.reason
    first = handle_request(config, "alpha", _request(3, train=False))
    assert first.report.status is ReplyStatus.OK and first.holdout is not None
    # Other weights, same job: the node repeats its one evaluation.
    other = JobRequest(SPEC, "answers#1", 3, [w + 1.0 for w in _request(3).weights], train=False)
    again = handle_request(config, "alpha", other)
    assert again.holdout == first.holdout
    kinds = [e.kind for e in read_entries(audit_path_for(ledger.path))]
    assert kinds.count("resend") == 1
    assert len(ledger.history()) == 1  # evaluations charge nothing


def test_an_unexpected_error_keeps_its_text_at_the_node(
    node: tuple[Path, SqliteLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = node

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("row 17 has income 123456")

    monkeypatch.setattr("clients.job_handler.load_job_frames", boom)
    outcome = handle_request(config, "alpha", _request(1))
    assert outcome.report.code == RefusalCode.INTERNAL.value
    assert "ValueError" in outcome.report.reason
    assert "123456" not in outcome.report.reason
