"""Attack: exhaust the node with a spec (1,000 epochs at batch 1, a 4,096-wide model, many
concurrent runs), so that it dies after reserving and burns its budget. The node's
[limits] refuse such a spec before anything is reserved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clients.ledger.round_lock import RunSlots
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig, NodeLimits, load_node_config, render_node_config
from clients.release import handle_quote
from testkit.synthetic import make_rows, synthetic_spec, write_node
from tests.adversarial.conftest import train_as_coordinator
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus


def _node(tmp_path: Path, **limits: int) -> NodeConfig:
    cfg = write_node(tmp_path / "tax", "tax", 50.0, make_rows(400, seed=5))
    cfg = dataclasses.replace(cfg, limits=NodeLimits(**limits))
    cfg.config_path.write_text(render_node_config(cfg))
    return load_node_config(cfg.config_path)


@pytest.mark.parametrize(
    ("job", "limit"),
    [
        ({"local_epochs": 1000, "batch_size": 1}, "max_steps_per_round"),
        ({"model": "mlp", "hidden": 4096}, "max_model_parameters"),
        ({"rounds": 500}, "max_rounds"),
    ],
)
def test_a_spec_over_a_node_limit_is_refused_before_reservation(
    tmp_path: Path, job: dict[str, object], limit: str
) -> None:
    cfg = _node(tmp_path, max_model_parameters=10_000)
    spec = synthetic_spec("big", epsilon=8.0, **job)
    outcome = train_as_coordinator(cfg, spec, "big#1", get_weights(build_model(spec)))
    assert outcome.report.status is ReplyStatus.REFUSED
    assert limit in outcome.report.reason
    quote = handle_quote(cfg.config_path, cfg.department, spec, "big#2")
    assert quote.status is ReplyStatus.REFUSED and limit in quote.reason
    assert SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).history() == []


def test_runs_beyond_the_concurrency_limit_are_refused_before_reservation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("clients.release.SLOT_WAIT_S", 0.3)
    cfg = _node(tmp_path, max_concurrent_runs=1)
    spec = synthetic_spec("busy", rounds=1)
    slots = RunSlots(cfg.ledger_path, 1)
    held = slots.acquire()  # another run is being answered
    assert held is not None
    try:
        outcome = train_as_coordinator(cfg, spec, "busy#1", get_weights(build_model(spec)))
        # Quotes read the data too: they wait for a slot like any job message.
        quote = handle_quote(cfg.config_path, cfg.department, spec, "busy#2")
    finally:
        slots.release(held)
    assert quote.status is ReplyStatus.REFUSED and quote.code == "busy"
    assert outcome.report.status is ReplyStatus.REFUSED and outcome.report.code == "busy"
    assert SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).history() == []
    # Once the other run is done, the same request is served.
    again = train_as_coordinator(cfg, spec, "busy#1", get_weights(build_model(spec)))
    assert again.report.status is ReplyStatus.OK, again.report.reason
