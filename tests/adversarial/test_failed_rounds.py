"""Attack: make a round fail after training, then retry it for fresh noise.

A round that failed after training used to cancel its reservation and send a refusal: a
free, uncharged bit about the noisy computation, repeatable at will. Now a round whose
noisy computation started stays charged whatever happens, is never computed again, and its
reply says nothing that depends on the data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clients.ledger.ledger import EntryStatus
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeLimits, load_node_config, render_node_config
from testkit.synthetic import make_rows, synthetic_spec, write_node
from tests.adversarial.conftest import train_as_coordinator
from vocab.errors import RefusalCode
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus

# Far more DP-SGD steps (40,000) than one second holds, however fast a step gets: the
# wall-time limit stops the round mid-training.
SPEC = synthetic_spec("slow", rounds=1, batch_size=2, local_epochs=100, epsilon=4.0)


def _slow_node(folder: Path, seed: int) -> tuple[Path, SqliteLedger]:
    cfg = write_node(folder, folder.name, 20.0, make_rows(500 + 37 * seed, seed=seed))
    # The same public figures on every node; only the rows differ.
    limits = NodeLimits(max_round_seconds=1, max_steps_per_round=50_000)
    cfg = dataclasses.replace(cfg, limits=limits, public_rows=800)
    cfg.config_path.write_text(render_node_config(cfg))
    return cfg.config_path, SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)


def test_a_round_that_fails_after_training_stays_charged_and_is_never_retrained(
    tmp_path: Path,
) -> None:
    config, ledger = _slow_node(tmp_path / "tax", 1)
    cfg = load_node_config(config)
    weights = get_weights(build_model(SPEC))
    failed = train_as_coordinator(cfg, SPEC, "slow#1", weights)
    assert failed.report.status is ReplyStatus.REFUSED
    assert failed.report.code == RefusalCode.ROUND_FAILED.value
    assert failed.weights is None and failed.holdout is None
    (entry,) = ledger.history()
    assert entry.status is EntryStatus.COMMITTED  # charged, not cancelled
    assert failed.report.epsilon_job == pytest.approx(ledger.job_epsilon("slow#1"))
    # The retry gets the same answer: no fresh noise, no new charge.
    again = train_as_coordinator(cfg, SPEC, "slow#1", weights)
    assert (again.report.code, again.report.reason) == (failed.report.code, failed.report.reason)
    assert len(ledger.history()) == 1


def test_a_failed_rounds_reply_does_not_depend_on_the_data(tmp_path: Path) -> None:
    replies = []
    for i, name in enumerate(("tax", "health")):
        config, _ = _slow_node(tmp_path / name, i + 2)  # different rows, different counts
        cfg = load_node_config(config)
        outcome = train_as_coordinator(cfg, SPEC, "slow#1", get_weights(build_model(SPEC)))
        assert outcome.report.code == RefusalCode.ROUND_FAILED.value
        record = outcome.report.to_record()
        for key in ("department", "audit_seq", "audit_head", "audit_sig"):
            record.pop(key)
        replies.append(record)
    assert replies[0] == replies[1]
