"""The cost of the node's governance machinery per round, next to a real training round.

Run: ``python -m bench.governance [--quick] [--out results]``

A synthetic department (`testkit.synthetic`: `write_node`, `make_rows`) with a real
SQLite ledger and hash-chained audit log, and a job (`synthetic_spec`) with the shipped demo
job's training settings (3 rounds, 8 local epochs, batch 256, epsilon 1). Timed side by side
in one process, the operations rotating their order every repetition, medians reported:

* ``quote``: `SqliteLedger.quote` of the job's 3 rounds (what a dry run and every round
  check);
* ``reserve`` and ``commit``: one round reserved and committed with a 10 KB reply payload;
* ``audit_append``: one `AuditLog.append` (file lock, tail read, fsync);
* ``audit_head``: `AuditLog.head`, which every reply calls to stamp the chain head;
* ``handle_quote``: the node's whole dry-run quote (`clients.release.handle_quote`);
* ``handle_request``: one real training round (`handle_request`, round 1 of a new job),
  with the DP-SGD itself (`train_round`) timed inside it.

Each is measured as the ledger grows: 0, 100 and 1000 prior committed rounds (with their
10 KB replies, and 4 audit entries each - received, reservation, charge, release - as the
handler writes them). The ledger recomputes epsilon from every stored release for every
decision, so two shapes of history are measured: ``repeated`` (every prior round is a round
of this same job, so their RDP curves merge into one term) and ``distinct`` (jobs of 3
rounds, each with its own noise multiplier and sampling rate: one RDP term per job).

Governance overhead per round = (reserve + commit + the audit appends a training round
makes + the head read) / the `handle_request` round time, per repetition, then the median.
``non_training_share`` is everything in a round but the DP-SGD steps - policy checks, data
load, the handler's quotes and budget figures, evaluation, audit - as a share of the round.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import clients.kinds.risk.trainer
from bench.report import command_line, environment, make_console, write_result
from clients.kinds.risk.plan import DpPlan, plan_for_node
from clients.ledger.ledger import EntryStatus, Requester
from clients.ledger.node_audit import node_audit_log
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from clients.release import JobRequest, handle_quote, handle_request
from clients.training.dp_sgd import RoundResult
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.accounting import epsilon_spent, forget_cached_curves
from vocab.audit_chain import ChainHead, make_entry
from vocab.audit_log import AuditLog
from vocab.errors import InternalError
from vocab.identity_key import IdentityKey
from vocab.jobspec import RiskJobSpec
from vocab.models import build_model, get_weights
from vocab.privacy import DpSgdEvent
from vocab.sqlite_tx import connect, write_locked
from vocab.wire import TRAIN, ReplyStatus

__all__ = ["GovernanceSettings", "HistoryShape", "main", "run"]

NAME = "governance"
PERIOD = "2026"
DEPARTMENT = "alpha"
OPS = ("quote", "reserve", "commit", "audit_append", "audit_head", "handle_quote", "handle_request")
AUDIT_ENTRIES_PER_PRIOR_ROUND = ("job_received", "reservation", "charge", "release")


class HistoryShape(enum.Enum):
    """How the prior committed rounds' parameters vary."""

    REPEATED = "repeated"
    """Every prior round is a round of this same job: one merged RDP term."""
    DISTINCT = "distinct"
    """Jobs of 3 rounds, each with its own sigma and rate: one RDP term per job."""


@dataclass(frozen=True)
class GovernanceSettings:
    """What to time, at which ledger sizes, how often."""

    ledger_sizes: tuple[int, ...] = (0, 100, 1000)
    shapes: tuple[HistoryShape, ...] = tuple(HistoryShape)
    repetitions: int = 7
    warmup: int = 1
    """Repetitions run first at each level and discarded (first-touch costs, page cache)."""

    rows: int = 2000
    """Synthetic department rows (a quarter goes to the holdout)."""

    reply_bytes: int = 10_000
    budget_epsilon: float = 1e4
    """The node's budget: large, so that no prior history makes a timed round refused."""

    seed: int = 0


_JOB = {
    "rounds": 3,
    "local_epochs": 8,
    "batch_size": 256,
    "learning_rate": 4.0,
    "max_grad_norm": 0.5,
    "epsilon": 1.0,
    "delta": 1e-5,
}
"""The shipped demo job's training settings (examples/jobs/lending_risk.toml)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _prior_events(
    shape: HistoryShape, rounds: int, plan: DpPlan, rng: random.Random
) -> list[DpSgdEvent]:
    """The events of `rounds` prior committed rounds, in jobs of 3 rounds."""
    if shape is HistoryShape.REPEATED:
        return [plan.round_event()] * rounds
    events: list[DpSgdEvent] = []
    while len(events) < rounds:
        # A department's jobs differ in rows, batch size and epsilon: other rates and sigmas.
        rate = min(1.0, 256 / rng.uniform(1000, 4000))
        sigma = plan.noise_multiplier * rng.uniform(0.8, 1.6)
        event = DpSgdEvent(sigma, rate, max(1, round(8 / rate)))
        events.extend([event] * min(3, rounds - len(events)))
    return events


def _write_history(cfg: NodeConfig, events: list[DpSgdEvent], reply: bytes, who: Requester) -> None:
    """Writes prior committed rounds straight into the ledger file, in one transaction.

    Row for row what `reserve` + `commit` leave behind (a committed release and its reply).
    Going through the API would replay every earlier round's epsilon recomputation - a cost
    quadratic in the history, minutes for 1000 distinct rounds - just to set the stage.
    `_check_history` then reads the rows back through the ledger's own API.
    """
    now = _now()
    with connect(cfg.ledger_path) as conn, write_locked(conn):
        for i, event in enumerate(events):
            cursor = conn.execute(
                "INSERT INTO releases (dataset, period, job_id, round, purpose, analyst, "
                "project, mechanism, params, status, owner, fingerprint, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cfg.dataset, PERIOD, f"prior-{i // 3}", i % 3 + 1, who.purpose, who.analyst,
                 who.project, event.mechanism.value, json.dumps(event.params()),
                 EntryStatus.COMMITTED.value, f"pid {os.getpid()}", "", now, now),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO replies (release_id, payload) VALUES (?, ?)",
                (cursor.lastrowid, reply),
            )


def _check_history(ledger: SqliteLedger, events: list[DpSgdEvent]) -> None:
    history = ledger.history()
    if len(history) != len(events) or any(e.status is not EntryStatus.COMMITTED for e in history):
        raise InternalError(f"benchmark: the ledger reads {len(history)} rounds back")
    if ledger.spent() != epsilon_spent(events, ledger.budget().delta):
        raise InternalError("benchmark: the ledger does not charge the prior rounds")


def _write_audit_history(path: Path, events: list[DpSgdEvent], key: IdentityKey) -> None:
    """A valid signed hash chain of the entries the handler writes for each prior round."""
    head: ChainHead | None = None
    lines = []
    ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    for i, event in enumerate(events):
        where = {"job_id": f"prior-{i // 3}", "round": i % 3 + 1}
        data: dict[str, dict[str, Any]] = {
            "job_received": {**where, "job": "prior", "kind": "train", "epsilon": 1.0},
            "reservation": {**where, "ledger_entry": i + 1, "mechanism": event.mechanism.value,
                            **event.params(), "resumed": False},
            "charge": {**where, "ledger_entry": i + 1, "epsilon_spent": 1.0, "period": PERIOD},
            "release": {**where, "released": ["holdout_statistics", "model_update"]},
        }  # fmt: skip
        for kind in AUDIT_ENTRIES_PER_PRIOR_ROUND:
            entry = make_entry(head, ts, kind, data[kind], key)
            head = ChainHead(entry.seq, entry.hash)
            lines.append(entry.to_json() + "\n")
    path.write_text("".join(lines), encoding="utf-8")


@dataclass
class _TimedTrainRound:
    """Wraps `clients.kinds.risk.trainer.train_round` to time the DP-SGD inside `handle_request`."""

    seconds: float = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = clients.kinds.risk.trainer.train_round

        def timed(*args: Any, **kwargs: Any) -> RoundResult:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds = time.perf_counter() - start

        # `_serve` imports train_round from the module at call time, so this is what it runs.
        clients.kinds.risk.trainer.train_round = timed
        try:
            yield
        finally:
            clients.kinds.risk.trainer.train_round = original


@dataclass
class _Level:
    """One node with a given history, and the operations timed on it."""

    cfg: NodeConfig
    spec: RiskJobSpec
    plan: DpPlan
    ledger: SqliteLedger
    audit: AuditLog
    reply: bytes
    who: Requester
    prior: list[DpSgdEvent]
    counter: int = 0

    def next_id(self, what: str) -> str:
        self.counter += 1
        return f"bench-{what}-{self.counter}"


def _setup(folder: Path, shape: HistoryShape, prior: int, settings: GovernanceSettings) -> _Level:
    rng = random.Random(settings.seed)
    cfg = write_node(
        folder, DEPARTMENT, settings.budget_epsilon, make_rows(settings.rows, settings.seed)
    )
    spec = synthetic_spec("governance", **_JOB)
    plan = plan_for_node(cfg, spec)
    who = Requester(spec.purpose, spec.analyst, spec.project)
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget, PERIOD)
    reply = rng.randbytes(settings.reply_bytes)
    events = _prior_events(shape, prior, plan, rng)
    _write_history(cfg, events, reply, who)
    _check_history(ledger, events)
    audit = node_audit_log(cfg.ledger_path)
    _write_audit_history(audit.path, events, node_identity(cfg.ledger_path))
    return _Level(cfg, spec, plan, ledger, audit, reply, who, events)


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _repetition(level: _Level, rep: int) -> dict[str, float]:
    """Every operation once, in an order rotated by `rep`; seconds per operation."""
    out: dict[str, float] = {}

    def reserve_commit() -> None:
        job_id = level.next_id("reserve")
        event = level.plan.round_event()
        start = time.perf_counter()
        reservation = level.ledger.reserve(job_id, 1, event, level.who)
        out["reserve"] = time.perf_counter() - start
        start = time.perf_counter()
        level.ledger.commit(reservation, level.reply)
        out["commit"] = time.perf_counter() - start

    def quote() -> None:
        out["quote"] = _time(lambda: level.ledger.quote(level.plan.events_for(3), level.who))

    def append() -> None:
        event = level.plan.round_event()
        data = {"job_id": level.next_id("audit"), "round": 1, "ledger_entry": 0,
                "mechanism": event.mechanism.value, **event.params(), "resumed": False}  # fmt: skip
        out["audit_append"] = _time(lambda: level.audit.append("reservation", data))

    def head() -> None:
        out["audit_head"] = _time(level.audit.head)

    def node_quote() -> None:
        job_id = level.next_id("quote")
        start = time.perf_counter()
        answer = handle_quote(level.cfg.config_path, DEPARTMENT, level.spec, job_id)
        out["handle_quote"] = time.perf_counter() - start
        if answer.status is not ReplyStatus.OK:
            raise InternalError(f"benchmark: the quote was refused: {answer.reason}")

    def node_round() -> None:
        job_id = level.next_id("train")
        weights = get_weights(build_model(level.spec))
        request = JobRequest(level.spec, job_id, 1, weights, TRAIN)
        before = len(level.audit.path.read_bytes().splitlines())
        timer = _TimedTrainRound()
        with timer.installed():
            start = time.perf_counter()
            outcome = handle_request(level.cfg.config_path, DEPARTMENT, request)
            out["handle_request"] = time.perf_counter() - start
        if outcome.report.status is not ReplyStatus.OK:
            raise InternalError(f"benchmark: the round was refused: {outcome.report}")
        out["train_round"] = timer.seconds
        out["audit_entries_per_round"] = len(level.audit.path.read_bytes().splitlines()) - before

    ops: list[Callable[[], None]] = [quote, reserve_commit, append, head, node_quote, node_round]
    shift = rep % len(ops)
    for op in ops[shift:] + ops[:shift]:
        # Each ClientApp is a fresh process: nothing it computed before is remembered.
        forget_cached_curves()
        op()
    return out


def _median_ms(samples: list[dict[str, float]], key: str) -> float:
    return 1000 * statistics.median(s[key] for s in samples)


def _summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    governance = []
    ratios = []
    versus_sgd = []
    shares = []
    for s in samples:
        per_round = (
            s["reserve"] + s["commit"] + s["audit_entries_per_round"] * s["audit_append"]
        ) + s["audit_head"]
        governance.append(per_round)
        ratios.append(per_round / s["handle_request"])
        versus_sgd.append(per_round / s["train_round"])
        shares.append((s["handle_request"] - s["train_round"]) / s["handle_request"])
    return {
        "median_ms": {k: _median_ms(samples, k) for k in (*OPS, "train_round")},
        "audit_entries_per_round": statistics.median(s["audit_entries_per_round"] for s in samples),
        "governance_per_round_ms": 1000 * statistics.median(governance),
        "governance_ratio": statistics.median(ratios),
        "governance_vs_train_round": statistics.median(versus_sgd),
        "non_training_share": statistics.median(shares),
    }


def run(settings: GovernanceSettings, out_dir: Path, command: str, console: Console) -> Path:
    """Time every operation at every ledger size and history shape; print; write the JSON."""
    levels = []
    for shape in settings.shapes:
        for prior in settings.ledger_sizes:
            with tempfile.TemporaryDirectory(prefix="silobridge-bench-governance-") as tmp:
                with console.status(f"{shape.value} history, {prior} prior rounds: setting up"):
                    level = _setup(Path(tmp) / DEPARTMENT, shape, prior, settings)
                samples = []
                total = settings.warmup + settings.repetitions
                for rep in range(total):
                    with console.status(
                        f"{shape.value} history, {prior} prior rounds: repetition {rep + 1}/{total}"
                    ):
                        sample = _repetition(level, rep)
                    if rep >= settings.warmup:
                        samples.append(sample)
                levels.append(
                    {
                        "shape": shape.value,
                        "prior_rounds": prior,
                        "distinct_rdp_terms_before": len(set(level.prior)),
                        "rounds_after": len(level.ledger.history()),
                        "ledger_bytes_after": level.cfg.ledger_path.stat().st_size,
                        "audit_bytes_after": level.audit.path.stat().st_size,
                        **_summarise(samples),
                        "samples_s": samples,
                    }
                )
    spec = synthetic_spec("governance", **_JOB)
    payload = {
        **environment(command),
        "benchmark": "governance cost per round (BENCHMARKS.md section 3 style: side by side)",
        "settings": {
            **dataclasses.asdict(settings),
            "shapes": [shape.value for shape in settings.shapes],
            "job": _JOB,
            "features": list(spec.columns),
            "audit_entries_per_prior_round": list(AUDIT_ENTRIES_PER_PRIOR_ROUND),
            "notes": [
                "Times are medians over repetitions; the operations rotate their order each "
                "repetition; the first `warmup` repetitions are discarded. Each repetition "
                "commits 2 more rounds (reserve+commit and handle_request), so a level ends "
                "with prior_rounds + 2 x (warmup + repetitions).",
                "governance_per_round = reserve + commit + audit_entries_per_round x "
                "audit_append + audit_head; governance_ratio = that / handle_request, per "
                "repetition, median; governance_vs_train_round divides by the DP-SGD steps "
                "alone (train_round inside handle_request). audit_entries_per_round is "
                "counted from the real round.",
                "non_training_share = (handle_request - train_round) / handle_request: "
                "policy and approval checks, CSV read, plan_dp calibration, the handler's "
                "quotes, job total and budget figures, evaluation, reply encoding, audit.",
                "Prior rounds are written in one SQL transaction exactly as reserve+commit "
                "leave them, then read back through the ledger API (count and epsilon).",
            ],
        },
        "records": levels,
    }
    path = write_result(out_dir, NAME, payload)
    _print(console, levels)
    return path


def _print(console: Console, levels: list[dict[str, Any]]) -> None:
    table = Table(
        title="Governance per round: median ms as the ledger grows (synthetic node, "
        f"{levels[0]['median_ms']['train_round']:.0f} ms of DP-SGD per round). append/head: "
        "audit log; node quote/round: handle_quote/handle_request; gov./round: reserve + "
        "commit + the round's appends + head, over the round and over its DP-SGD; non-DP: "
        "share of the round that is not DP-SGD"
    )
    columns = (
        "prior rounds", "quote", "reserve", "commit", "append", "head", "node quote",
        "node round", "gov./round", "/round", "/DP-SGD", "non-DP",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "history" else "right")
    for level in levels:
        ms = level["median_ms"]
        table.add_row(
            f"{level['prior_rounds']} {level['shape']}",
            *(f"{ms[k]:.1f}" for k in OPS),
            f"{level['governance_per_round_ms']:.1f}",
            f"{level['governance_ratio']:.3f}",
            f"{level['governance_vs_train_round']:.2f}x",
            f"{100 * level['non_training_share']:.0f}%",
        )
    console.print(table)
    first, last = levels[0], levels[-1]
    console.print(
        f"governance per round: {first['governance_per_round_ms']:.1f} ms "
        f"({first['governance_ratio']:.1%} of a round) with a {first['shape']} history of "
        f"{first['prior_rounds']} rounds, {last['governance_per_round_ms']:.1f} ms "
        f"({last['governance_ratio']:.1%}) with {last['shape']} {last['prior_rounds']}; "
        f"quote {first['median_ms']['quote']:.1f} -> {last['median_ms']['quote']:.1f} ms"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.governance", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small ledgers, 3 repetitions")
    parser.add_argument("--out", type=Path, default=Path("results"), help="JSON folder")
    return parser.parse_args(argv)


QUICK = GovernanceSettings(ledger_sizes=(0, 100), repetitions=3, rows=600)


def main(argv: Sequence[str] | None = None, *, via: str | None = None) -> int:
    """Entry point: `python -m bench.governance [--quick] [--out DIR]`.

    Args:
        argv: The flags (default: the process's own).
        via: The command that really ran, when another module called this one.
    """
    args = _parse(argv)
    settings = QUICK if args.quick else GovernanceSettings()
    command = command_line("governance", argv, via)
    console = make_console()
    path = run(settings, args.out, command, console)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
