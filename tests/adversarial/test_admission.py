"""Attack: start a job that cannot finish, so the nodes that accept pay for nothing.

`job run` used to start round 1 without asking whether a quorum would take the job: with
three of five departments out of budget and a quorum of four, the two that accepted
trained, were charged, and the job failed with no model. Now the coordinator admits the
whole job first - each node runs its real checks (limits, policy, approvals, schema,
every budget) - and starts round 1 only with a quorum.

The nodes here are the real ClientApp functions on real node configs and ledgers; only
the SuperLink is replaced by an in-process grid (tests/integration runs real processes).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, Message, RecordDict

from clients.client_app import CONFIG_KEY, DEPARTMENT_KEY, evaluate, quote, train
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from server.job_driver import run_submission
from server.run_config import RunMode
from testkit.fake_grid import InProcessGrid
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.jobspec import RiskJobSpec
from vocab.progress import JobEnd, ProgressEvent
from vocab.serde import job_to_bytes
from vocab.wire import EVALUATE, QUOTE, TRAIN


def _behaviour(cfg: NodeConfig) -> Any:
    node_config: dict[str, bool | float | int | str] = {
        CONFIG_KEY: str(cfg.config_path),
        DEPARTMENT_KEY: cfg.department,
    }
    context = Context(1, 1, node_config, RecordDict(), {})
    handlers = {TRAIN: train, EVALUATE: evaluate, QUOTE: quote}

    def answer(msg: Message) -> Message:
        reply: Message = handlers[msg.metadata.message_type](msg, context)
        return reply

    return answer


def _federation(tmp_path: Path) -> dict[str, NodeConfig]:
    budgets = {"tax": 8.0, "health": 8.0, "welfare": 0.3, "transport": 0.3, "police": 0.3}
    return {
        name: write_node(tmp_path / name, name, budget, make_rows(400, seed=i))
        for i, (name, budget) in enumerate(budgets.items())
    }


def _submit(tmp_path: Path, nodes: dict[str, NodeConfig], spec: RiskJobSpec) -> list[ProgressEvent]:
    grid = InProcessGrid({i + 10: _behaviour(cfg) for i, cfg in enumerate(nodes.values())})
    home = CoordinatorHome(tmp_path / "coordinator")
    home.root.mkdir(exist_ok=True)
    for name, cfg in nodes.items():  # enrolment: the coordinator knows each node's key
        home.nodes.register(name, node_identity(cfg.ledger_path).public.pem(), replace=True)
    events: list[ProgressEvent] = []
    config = {
        "job": base64.b64encode(job_to_bytes(spec)).decode(),
        "out": str(tmp_path / "out" / spec.name),
        "mode": RunMode.RUN.value,
    }
    run_submission(grid, config, 1, str(home.root), events.append)
    return events


@pytest.fixture(autouse=True)
def _no_join_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)


def test_a_job_a_quorum_would_not_admit_charges_no_node(tmp_path: Path) -> None:
    nodes = _federation(tmp_path)
    spec = synthetic_spec("quorum", rounds=1, epsilon=1.0, min_nodes=4, node_wait_s=5.0)
    events = _submit(tmp_path, nodes, spec)
    end = events[-1]
    assert isinstance(end, JobEnd) and end.status == "failed"
    assert "nothing charged" in end.failure and "needs 4" in end.failure
    assert "round_start" not in [e.kind for e in events]
    for cfg in nodes.values():
        assert SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).history() == []


def test_with_a_quorum_the_admitted_nodes_train(tmp_path: Path) -> None:
    nodes = _federation(tmp_path)
    spec = synthetic_spec("quorum-ok", rounds=1, epsilon=1.0, min_nodes=2, node_wait_s=5.0)
    end = _submit(tmp_path, nodes, spec)[-1]
    assert isinstance(end, JobEnd) and end.status == "succeeded", end
    charged = {
        name for name, cfg in nodes.items()
        if SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).history()
    }  # fmt: skip
    assert charged == {"tax", "health"}
