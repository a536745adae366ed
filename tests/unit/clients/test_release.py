"""The node's answers: rounds outside the job, evaluations, and what an error reveals."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.ledger.ledger import EntryStatus
from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.release import JobRequest, handle_request
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_log import read_entries
from vocab.errors import RefusalCode
from vocab.models import build_model, get_weights
from vocab.wire import EVALUATE, TRAIN, ReplyStatus

SPEC = synthetic_spec("answers", rounds=2, local_epochs=1, epsilon=2.0)


def _request(round: int, train: bool = True) -> JobRequest:
    return JobRequest(
        SPEC, "answers#1", round, get_weights(build_model(SPEC)), TRAIN if train else EVALUATE
    )


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


def test_every_evaluation_is_charged_and_answered_once(node: tuple[Path, SqliteLedger]) -> None:
    config, ledger = node
    final = SPEC.evaluation_round(SPEC.rounds)
    # No training first: an evaluation is a charged release of its own.
    first = handle_request(config, "alpha", _request(final, train=False))
    assert first.report.status is ReplyStatus.OK, first.report.reason
    assert first.holdout is not None and first.holdout.noise_std > 0
    (release,) = first.report.releases
    assert (release.what, release.mechanism) == ("evaluation", "gaussian")
    (entry,) = ledger.history()
    assert entry.round == final and entry.status is EntryStatus.COMMITTED
    assert ledger.job_epsilon("answers#1") == pytest.approx(release.epsilon)
    # Other weights, same message: the node repeats its one (charged) answer.
    other = JobRequest(SPEC, "answers#1", final, [w + 1.0 for w in _request(1).weights], EVALUATE)
    again = handle_request(config, "alpha", other)
    assert again.holdout == first.holdout
    kinds = [e.kind for e in read_entries(audit_path_for(ledger.path))]
    assert kinds.count("resend") == 1
    assert len(ledger.history()) == 1


def test_evaluations_the_spec_does_not_pay_for_are_refused(
    node: tuple[Path, SqliteLedger],
) -> None:
    config, ledger = node
    for rnd in (1, SPEC.evaluation_round(1), SPEC.evaluation_round(SPEC.rounds) + 1):
        outcome = handle_request(config, "alpha", _request(rnd, train=False))
        assert outcome.report.status is ReplyStatus.REFUSED
        assert "makes no evaluation" in outcome.report.reason
    assert ledger.history() == []


def test_an_unexpected_error_keeps_its_text_at_the_node(
    node: tuple[Path, SqliteLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = node

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("row 17 has income 123456")

    monkeypatch.setattr("clients.kinds.risk.read_job_frame", boom)
    outcome = handle_request(config, "alpha", _request(1))
    assert outcome.report.code == RefusalCode.INTERNAL.value
    assert "ValueError" in outcome.report.reason
    assert "123456" not in outcome.report.reason


def test_a_learning_curve_is_paid_for_and_stays_within_the_job_epsilon(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "alpha", "alpha", 8.0, make_rows(600, seed=6))
    spec = synthetic_spec("curve", rounds=2, local_epochs=1, epsilon=2.0, evaluation="rounds")
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    weights = get_weights(build_model(spec))
    # In time order: train 1, evaluate after 1, train 2, evaluate after 2.
    for rnd, train in ((1, True), (spec.evaluation_round(1), False), (2, True),
                       (spec.evaluation_round(2), False)):  # fmt: skip
        outcome = handle_request(
            cfg.config_path,
            "alpha",
            JobRequest(spec, "c#1", rnd, weights, TRAIN if train else EVALUATE),
        )
        assert outcome.report.status is ReplyStatus.OK, outcome.report.reason
        assert (outcome.holdout is None) == train
    kinds = [(e.round, e.event.mechanism.value) for e in ledger.history()]
    assert kinds == [(1, "subsampled_gaussian"), (3, "gaussian"), (2, "subsampled_gaussian"),
                     (4, "gaussian")]  # fmt: skip
    assert ledger.job_epsilon("c#1") <= spec.epsilon
