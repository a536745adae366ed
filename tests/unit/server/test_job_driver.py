"""The ServerApp's submission path: coordinator home, central caps, audit log, quotes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from server.central_budget.central_budget import CapKind, ChargeStatus
from server.exchange import AnswerStatus, NodeReply
from server.home.coordinator_home import CoordinatorHome
from server.job_driver import charged_epsilon, run_submission
from server.run_config import RunMode, decode_run_config
from testkit.fake_grid import Behaviour, InProcessGrid
from vocab.audit_chain import verify_chain
from vocab.audit_log import read_entries
from vocab.errors import JobSpecError
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.metrics import score_histogram
from vocab.progress import Failed, JobEnd, JobStart, ProgressEvent, QuoteResult
from vocab.serde import job_to_bytes
from vocab.wire import (
    ARRAYS,
    EVALUATE,
    HOLDOUT,
    QUOTE,
    REPORT,
    TRAIN,
    NodeQuote,
    NodeReport,
    ReplyStatus,
    histogram_to_record,
)

pytestmark = pytest.mark.usefixtures("no_join_grace")


class Events:
    """Collects the progress events the ServerApp would print."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    @property
    def last(self) -> ProgressEvent:
        return self.events[-1]

    @property
    def failure(self) -> str:
        """The reason of the last event, which must be `failed`."""
        last = self.last
        assert isinstance(last, Failed), last
        return last.reason


def _spec(epsilon: float = 1.0) -> RiskJobSpec:
    return parse_job_spec(
        {
            "job": {"name": "risk", "target": "y", "positive": "1", "rounds": 2,
                    "min_nodes": 2, "epsilon": epsilon, "node_wait_s": 1.0,
                    "round_timeout_s": 2.0, "analyst": "r.ahmed", "project": "fraud",
                    "purpose": "fraud screening"},
            "features": {"x": {"lower": 0.0, "upper": 1.0}},
        }
    )  # fmt: skip


def _run_config(spec: RiskJobSpec, out: Path, mode: RunMode = RunMode.RUN) -> dict[str, Any]:
    job = base64.b64encode(job_to_bytes(spec)).decode()
    return {"job": job, "out": str(out), "mode": mode.value}


def _node(name: str, per_round: float = 0.3) -> Behaviour:
    """A node that trains (charging `per_round` a round), evaluates and quotes."""
    charged = {"epsilon": 0.0}

    def answer(msg: Message) -> Message:
        kind = msg.metadata.message_type
        if kind == QUOTE:
            quote = NodeQuote(name, ReplyStatus.OK, requested=0.6, audit_seq=3, audit_head="c" * 64)
            return Message(RecordDict({REPORT: ConfigRecord(quote.to_record())}), reply_to=msg)
        if kind == TRAIN:
            charged["epsilon"] += per_round
        report = NodeReport(name, ReplyStatus.OK, epsilon_job=charged["epsilon"],
                            epsilon_spent=charged["epsilon"], epsilon_budget=3.0, delta=1e-5,
                            audit_seq=5, audit_head="d" * 64)  # fmt: skip
        content = RecordDict({REPORT: ConfigRecord(report.to_record())})
        if kind == EVALUATE:
            holdout = score_histogram(
                np.array([-1.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0]), _spec().thresholds
            )
            content[HOLDOUT] = MetricRecord(histogram_to_record(holdout))
        if kind == TRAIN:
            weights = [w + 0.1 for w in msg.content.array_records[ARRAYS].to_numpy_ndarrays()]
            content[ARRAYS] = ArrayRecord(weights)
        return Message(content, reply_to=msg)

    return answer


def _home(tmp_path: Path) -> CoordinatorHome:
    home = CoordinatorHome(tmp_path / "coordinator")
    home.root.mkdir()
    return home


def test_without_a_home_the_job_fails_at_once_and_says_how_to_start(tmp_path: Path) -> None:
    grid = InProcessGrid({11: _node("tax"), 12: _node("health")})
    emit = Events()
    run_submission(grid, _run_config(_spec(), tmp_path / "out"), 7, None, emit)
    assert emit.kinds() == ["failed"]
    assert "SILOBRIDGE_COORDINATOR_HOME" in emit.failure
    assert "silobridge coordinator start" in emit.failure and "--home" in emit.failure
    assert grid.count == 0


def test_a_relative_home_is_refused(tmp_path: Path) -> None:
    emit = Events()
    run_submission(InProcessGrid({}), _run_config(_spec(), tmp_path), 7, "rel/home", emit)
    assert emit.kinds() == ["failed"] and "absolute" in emit.failure


def test_a_job_is_admitted_logged_and_settled(tmp_path: Path) -> None:
    home = _home(tmp_path)
    home.set_cap(CapKind.ANALYST, "r.ahmed", 5.0)
    grid = InProcessGrid({11: _node("tax", 0.3), 12: _node("health", 0.45)}, registry=home.nodes)
    emit = Events()
    run_submission(grid, _run_config(_spec(), tmp_path / "out"), 7, str(home.root), emit)
    end = emit.last
    assert isinstance(end, JobEnd) and end.status == "succeeded"
    start = next(e for e in emit.events if isinstance(e, JobStart))
    assert (start.mode, start.analyst, start.project) == ("run", "r.ahmed", "fraud")
    # Settled to the largest epsilon a node reported: health, two rounds of 0.45.
    (charge,) = home.budget().charges()
    assert (charge.job_id, charge.status) == ("risk#7", ChargeStatus.SETTLED)
    assert charge.charged == pytest.approx(0.9)
    entries = read_entries(home.audit_path)
    assert verify_chain(entries, home.identity().public).ok
    kinds = [e.kind for e in entries]
    assert kinds[:3] == ["cap_change", "job_received", "cap_check"]
    assert kinds[-1] == "job_end"
    received = entries[1].data
    assert received == {
        "job": "risk", "job_id": "risk#7", "kind": "risk", "dataset": "",
        "analyst": "r.ahmed", "project": "fraud",
        "purpose": "fraud screening", "epsilon": 1.0, "delta": 1e-5, "rounds": 2,
        "min_nodes": 2, "columns": ["x", "y"], "mode": "run",
    }  # fmt: skip
    assert entries[2].data["reserved"] is True and entries[2].data["fits"] is True
    replies = [e.data for e in entries if e.kind == "node_reply"]
    # Admission, two training rounds and the final evaluation, for each of the two nodes.
    assert len(replies) == 8
    assert {(r["department"], r["round"], r["message_type"]) for r in replies} >= {
        ("tax", 0, QUOTE), ("tax", 1, TRAIN), ("health", 2, TRAIN), ("tax", 4, EVALUATE)
    }  # fmt: skip
    assert all(r["audit_seq"] == 5 and r["audit_head"] == "d" * 64 for r in replies
               if r["message_type"] != QUOTE)  # fmt: skip
    end = entries[-1].data
    assert end["status"] == "succeeded" and end["epsilon_settled"] == pytest.approx(0.9)
    # Metadata only: no weights, no statistics.
    text = home.audit_path.read_text()
    assert "arrays" not in text and "holdout" not in text and len(text) < 20_000


def test_over_cap_is_refused_before_any_node_is_contacted(tmp_path: Path) -> None:
    home = _home(tmp_path)
    home.set_cap(CapKind.PROJECT, "fraud", 1.5)
    home.budget().reserve("earlier#1", "l.chen", "fraud", 1.0)
    grid = InProcessGrid({11: _node("tax"), 12: _node("health")}, registry=home.nodes)
    emit = Events()
    run_submission(grid, _run_config(_spec(), tmp_path / "out"), 8, str(home.root), emit)
    assert emit.kinds() == ["failed"]
    assert emit.failure.startswith(
        "the central cap of project 'fraud' would bring epsilon spent from 1.0000 to 2.0000, "
        "above the cap 1.5000"
    )
    assert grid.count == 0
    assert [c.job_id for c in home.budget().charges()] == ["earlier#1"]
    entries = read_entries(home.audit_path)
    assert [e.kind for e in entries] == [
        "cap_change", "job_received", "cap_check", "refusal", "job_end"
    ]  # fmt: skip
    refusal = entries[3].data
    assert (refusal["code"], refusal["requested"], refusal["spent"], refusal["cap"]) == (
        "budget_exceeded", 1.0, 1.0, 1.5
    )  # fmt: skip
    assert entries[4].data["status"] == "refused"


def test_quote_mode_prices_the_job_and_charges_nothing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    home.set_cap(CapKind.ANALYST, "r.ahmed", 0.5)  # the job would not fit centrally
    grid = InProcessGrid({11: _node("tax"), 12: _node("health")}, registry=home.nodes)
    emit = Events()
    config = _run_config(_spec(), Path(""), RunMode.QUOTE)
    config["out"] = ""
    run_submission(grid, config, 9, str(home.root), emit)
    result = emit.last
    assert isinstance(result, QuoteResult), emit.events
    assert result.would_run == 2 and not result.ok
    assert "central cap of analyst 'r.ahmed'" in result.reason
    assert [n.department for n in result.nodes] == ["health", "tax"]
    assert home.budget().charges() == []
    kinds = [e.kind for e in read_entries(home.audit_path)]
    assert kinds == ["cap_change", "job_received", "cap_check", "node_reply", "node_reply",
                     "quote", "job_end"]  # fmt: skip
    assert grid.count == 2


def test_a_bad_run_config_fails_and_is_logged(tmp_path: Path) -> None:
    home = _home(tmp_path)
    emit = Events()
    run_submission(InProcessGrid({}), {"job": "!!", "out": "x"}, 3, str(home.root), emit)
    assert emit.kinds() == ["failed"] and "base64" in emit.failure
    (entry,) = read_entries(home.audit_path)
    assert (entry.kind, entry.data["job_id"]) == ("refusal", "?#3")


def test_run_config_mode_defaults_to_run_and_rejects_others(tmp_path: Path) -> None:
    config = _run_config(_spec(), tmp_path)
    del config["mode"]
    assert decode_run_config(config).mode is RunMode.RUN
    with pytest.raises(JobSpecError, match="mode"):
        decode_run_config({**config, "mode": "maybe"})
    with pytest.raises(JobSpecError, match="lacks"):
        decode_run_config({**config, "out": ""})
    assert decode_run_config({**config, "out": "", "mode": "quote"}).out is None


def _reply(kind: str, status: AnswerStatus, epsilon: float = 0.0) -> NodeReply:
    return NodeReply(1, "tax", 1, kind, status, epsilon_job=epsilon)


def test_settlement_is_the_largest_reported_charge() -> None:
    ok = AnswerStatus.OK
    assert charged_epsilon(1.0, []) == 0.0
    assert charged_epsilon(1.0, [_reply(TRAIN, ok, 0.3), _reply(EVALUATE, ok, 0.6)]) == 0.6
    # A node pricing the job at its own (smaller) delta may charge more: that is recorded.
    assert charged_epsilon(1.0, [_reply(TRAIN, ok, 1.7)]) == 1.7
    refused = _reply(TRAIN, AnswerStatus.REFUSED, 0.2)
    assert charged_epsilon(1.0, [refused]) == 0.2


def test_a_lost_charged_reply_keeps_the_full_reservation() -> None:
    ok = AnswerStatus.OK
    silent = _reply(TRAIN, AnswerStatus.NO_ANSWER)
    assert charged_epsilon(1.0, [_reply(TRAIN, ok, 0.3), silent]) == 1.0
    # Evaluations are charged releases too.
    assert charged_epsilon(1.0, [_reply(EVALUATE, AnswerStatus.NO_ANSWER)]) == 1.0
    # A lost quote reply charged nothing.
    assert charged_epsilon(1.0, [_reply(QUOTE, AnswerStatus.NO_ANSWER)]) == 0.0


def test_an_unreachable_node_during_training_keeps_the_reservation(tmp_path: Path) -> None:
    quoting = _node("transport")

    def unreachable(msg: Message) -> Message:
        # Admits the job, then cannot be reached: its round may have been charged.
        if msg.metadata.message_type == QUOTE:
            return quoting(msg)
        return Message(Error(code=3, reason="node unavailable"), reply_to=msg)

    home = _home(tmp_path)
    grid = InProcessGrid(
        {11: _node("tax"), 12: _node("health"), 13: unreachable}, registry=home.nodes
    )
    emit = Events()
    run_submission(grid, _run_config(_spec(), tmp_path / "out"), 4, str(home.root), emit)
    end = emit.last
    assert isinstance(end, JobEnd)
    (charge,) = home.budget().charges()
    assert charge.charged == 1.0
    # The coordinator's copy is under its home, not where the run config said.
    kept = Path(end.result)
    assert kept.is_relative_to(home.root / "results") and not (tmp_path / "out").exists()
    result = json.loads(kept.read_text())
    assert (result["job"]["analyst"], result["job"]["project"]) == ("r.ahmed", "fraud")
