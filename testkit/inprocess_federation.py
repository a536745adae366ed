"""Departments answering over an in-process grid with their real ClientApp functions.

Real node configs, ledgers, audit logs and identity keys (registered at a real coordinator
home); only the SuperLink is stood in for (`fake_grid.InProcessGrid`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from flwr.app import Context, Message, RecordDict

from clients.client_app import CONFIG_KEY, DEPARTMENT_KEY, _answer, quote, schema
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from server.job_driver import run_submission
from server.run_config import RunMode
from testkit.fake_grid import InProcessGrid
from testkit.synthetic import make_rows, write_node
from vocab.progress import ProgressEvent
from vocab.serde import job_to_bytes
from vocab.spec import JobEnvelope
from vocab.wire import QUOTE, SCHEMA

__all__ = ["DEPARTMENTS", "Federation"]

DEPARTMENTS = ("tax", "health")


def _node_app(cfg: NodeConfig) -> Callable[[Message], Message]:
    context = Context(1, 1, {CONFIG_KEY: str(cfg.config_path), DEPARTMENT_KEY: cfg.department},
                      RecordDict(), {})  # fmt: skip

    def answer(msg: Message) -> Message:
        kind = msg.metadata.message_type
        if kind == QUOTE:
            return quote(msg, context)
        if kind == SCHEMA:
            return schema(msg, context)
        return _answer(msg, context, kind)

    return answer


class Federation:
    """Two departments with generated rows, and a coordinator home that knows their keys."""

    def __init__(self, root: Path, budget: float = 10.0) -> None:
        self.home = CoordinatorHome(root / "coordinator")
        self.home.root.mkdir(parents=True)
        self.rows = {name: make_rows(400 + 100 * i, seed=i) for i, name in enumerate(DEPARTMENTS)}
        self.nodes = {
            name: write_node(root / name, name, budget, self.rows[name]) for name in DEPARTMENTS
        }
        for name, cfg in self.nodes.items():
            self.home.nodes.register(name, node_identity(cfg.ledger_path).public.pem())
        self.grid = InProcessGrid(
            {11 + i: _node_app(self.nodes[n]) for i, n in enumerate(DEPARTMENTS)},
            self.home.nodes,
        )
        self.root = root

    def submit(
        self, spec: JobEnvelope, run_id: int, mode: RunMode = RunMode.RUN
    ) -> list[ProgressEvent]:
        events: list[ProgressEvent] = []
        job = base64.b64encode(job_to_bytes(spec)).decode()
        config = {"job": job, "out": str(self.root / "out"), "mode": mode.value}
        run_submission(self.grid, config, run_id, str(self.home.root), events.append)
        return events

    def charged(self, name: str, job_id: str) -> float:
        cfg = self.nodes[name]
        return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).job_epsilon(job_id)
