"""Attack: rewrite history after the fact - a job deleted from a node's or the coordinator's
audit log and the chain recomputed, a release row edited or deleted to refund budget.

The logs here are made by the real thing: the coordinator's job driver (`run_submission`)
runs two jobs against two nodes whose real ClientApp functions answer over an in-process
grid, with real ledgers and keys. Re-chaining without the writer's key fails `audit
verify`; re-chaining *with* it (a hostile host re-signing its own log) still fails `audit
crosscheck`, from the heads the other side recorded; a ledger row edited or deleted fails
`audit verify --node-config`.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flwr.app import Context, Message, RecordDict
from typer.testing import CliRunner

from clients.client_app import CONFIG_KEY, DEPARTMENT_KEY, _answer, quote
from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig, load_node_config
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from server.job_driver import run_submission
from server.run_config import RunMode
from silobridge.cli.main import app
from testkit.fake_grid import InProcessGrid
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_chain import GENESIS, AuditEntry, entry_hash, make_entry
from vocab.audit_log import read_entries
from vocab.identity_key import IdentityKey
from vocab.progress import Failed, ProgressEvent
from vocab.serde import job_to_bytes
from vocab.wire import QUOTE

runner = CliRunner()
SPEC = synthetic_spec(
    "audit", rounds=1, local_epochs=1, min_nodes=2, node_wait_s=1.0, round_timeout_s=60.0
)
DEPARTMENTS = ("tax", "health")
DOOMED = "audit#1"  # the job the attacker makes disappear
KEPT = "audit#2"


@dataclass(frozen=True)
class Deployment:
    home: CoordinatorHome
    nodes: dict[str, NodeConfig]


def _node_app(cfg: NodeConfig) -> Callable[[Message], Message]:
    context = Context(1, 1, {CONFIG_KEY: str(cfg.config_path), DEPARTMENT_KEY: cfg.department},
                      RecordDict(), {})  # fmt: skip

    def answer(msg: Message) -> Message:
        kind = msg.metadata.message_type
        if kind == QUOTE:
            return quote(msg, context)
        return _answer(msg, context, kind)

    return answer


def _events(event: ProgressEvent) -> None:
    if isinstance(event, Failed):
        raise AssertionError(event)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    root = tmp_path_factory.mktemp("audit")
    home = CoordinatorHome(root / "coordinator")
    home.root.mkdir()
    nodes = {
        name: write_node(root / name, name, 10.0, make_rows(300 + 50 * i, seed=i))
        for i, name in enumerate(DEPARTMENTS)
    }
    for name, cfg in nodes.items():  # enrolment: the coordinator knows each node's key
        home.nodes.register(name, node_identity(cfg.ledger_path).public.pem())
    grid = InProcessGrid({11 + i: _node_app(nodes[n]) for i, n in enumerate(DEPARTMENTS)})
    job = base64.b64encode(job_to_bytes(SPEC)).decode()
    config = {"job": job, "out": str(root / "results"), "mode": RunMode.RUN.value}
    for run_id in (1, 2):
        run_submission(grid, config, run_id, str(home.root), _events)
    monkeypatch.undo()
    return Deployment(home, nodes)


@pytest.fixture
def fresh(deployment: Deployment, tmp_path: Path) -> Deployment:
    """A copy of the deployment's state for one attack (keys, logs and ledgers)."""
    src = deployment.home.root.parent
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    nodes = {}
    for name, cfg in deployment.nodes.items():
        moved = dst / name / "node.toml"
        text = cfg.config_path.read_text().replace(str(src), str(dst))
        moved.write_text(text)
        nodes[name] = load_node_config(moved)
    return Deployment(CoordinatorHome(dst / "coordinator"), nodes)


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in output, output
    return result.exit_code, output


def _verify_node(cfg: NodeConfig, *extra: str) -> tuple[int, str]:
    return _cli("audit", "verify", "--node-config", str(cfg.config_path), *extra)


def _crosscheck(d: Deployment, name: str) -> tuple[int, str]:
    return _cli("audit", "crosscheck", "--coordinator-home", str(d.home.root),
                "--node-config", str(d.nodes[name].config_path))  # fmt: skip


def _without_job(path: Path, job_id: str, key: IdentityKey | None) -> int:
    """Deletes every entry of `job_id` and re-links the rest: re-signed with `key`, or (None)
    with the hashes recomputed and the old signatures left in place. Returns how many went."""
    entries = read_entries(path)
    kept = [e for e in entries if e.data.get("job_id") != job_id]
    out: list[AuditEntry] = []
    for e in kept:
        if key is not None:
            out.append(make_entry(out[-1].head if out else None, e.ts, e.kind, e.data, key))
        else:
            seq, prev = len(out) + 1, out[-1].hash if out else GENESIS
            digest = entry_hash(seq, e.ts, e.kind, e.data, prev)
            out.append(AuditEntry(seq, e.ts, e.kind, e.data, prev, digest, e.sig, e.key))
    path.write_text("".join(e.to_json() + "\n" for e in out))
    return len(entries) - len(kept)


def _release_rows(cfg: NodeConfig, where: str, *args: object) -> int:
    with sqlite3.connect(cfg.ledger_path) as conn:
        return conn.execute(where, args).rowcount


def test_the_untouched_logs_verify_and_crosscheck_both_ways(deployment: Deployment) -> None:
    ends = [e.data for e in read_entries(deployment.home.audit_path) if e.kind == "job_end"]
    assert [(d["job_id"], d["status"]) for d in ends] == [
        (DOOMED, "succeeded"),
        (KEPT, "succeeded"),
    ]
    code, out = _cli("audit", "verify", "--coordinator-home", str(deployment.home.root))
    assert code == 0, out
    for name, cfg in deployment.nodes.items():
        code, out = _verify_node(cfg)
        assert code == 0 and "ledger releases match" in out, out
        code, out = _crosscheck(deployment, name)
        assert code == 0 and "crosscheck OK" in out, out
        assert "registered for" in out  # the node's key as the coordinator enrolled it
    # Every job message the nodes logged carries the coordinator's signed head.
    received = [e for e in read_entries(audit_path_for(deployment.nodes["tax"].ledger_path))
                if e.kind == "job_received"]  # fmt: skip
    assert len(received) >= 6 and all(e.data["coordinator_head"]["sig"] for e in received)


def test_a_job_deleted_from_a_node_log_and_rechained_without_its_key_fails_verify(
    fresh: Deployment,
) -> None:
    tax = fresh.nodes["tax"]
    assert _without_job(audit_path_for(tax.ledger_path), DOOMED, None) > 0
    code, out = _verify_node(tax)
    assert code == 2 and "BROKEN" in out and "signature does not verify" in out


def test_a_job_deleted_from_a_node_log_and_resigned_with_its_key_fails_crosscheck(
    fresh: Deployment,
) -> None:
    tax = fresh.nodes["tax"]
    ledger = SqliteLedger(tax.ledger_path, tax.dataset, tax.budget)
    spent = ledger.spent()
    # The node host holds its key: it deletes the job from its log and its ledger, re-signs.
    _without_job(audit_path_for(tax.ledger_path), DOOMED, node_identity(tax.ledger_path))
    assert _release_rows(tax, "DELETE FROM releases WHERE job_id = ?", DOOMED) > 0
    assert ledger.spent() < spent  # the budget the job spent is back
    code, out = _verify_node(tax)
    assert code == 0, out  # its own records now agree with each other...
    code, out = _crosscheck(fresh, "tax")
    assert code == 2, out  # ...but not with what the coordinator recorded from it
    assert f"mismatch job {DOOMED}" in out and "coordinator entry" in out
    assert "recorded node entry" in out
    assert _crosscheck(fresh, "health")[0] == 0  # the other node is untouched


def test_a_job_deleted_from_the_coordinator_log_and_rechained_without_its_key_fails_verify(
    fresh: Deployment,
) -> None:
    assert _without_job(fresh.home.audit_path, DOOMED, None) > 0
    code, out = _cli("audit", "verify", "--coordinator-home", str(fresh.home.root))
    assert code == 2 and "signature does not verify" in out


def test_a_job_deleted_from_the_coordinator_log_and_resigned_with_its_key_fails_crosscheck(
    fresh: Deployment,
) -> None:
    # A hostile coordinator host holds its own key: it deletes the job, re-chains, re-signs.
    _without_job(fresh.home.audit_path, DOOMED, fresh.home.identity())
    code, out = _cli("audit", "verify", "--coordinator-home", str(fresh.home.root))
    assert code == 0, out  # its own log is consistent...
    for name in DEPARTMENTS:
        code, out = _crosscheck(fresh, name)
        assert code == 2, out  # ...but each node holds heads it signed that are gone
        assert "node entry" in out and "recorded coordinator entry" in out
        assert "rewritten" in out or "cut off" in out


def test_a_rechained_coordinator_log_fails_against_the_key_the_nodes_hold(
    fresh: Deployment, tmp_path: Path
) -> None:
    pem = tmp_path / "coordinator.pub"
    pem.write_bytes(fresh.home.identity().public.pem())  # what the nodes' officers keep
    # The host makes itself a new key and re-signs everything with it.
    fresh.home.identity_path.unlink()
    _without_job(fresh.home.audit_path, DOOMED, fresh.home.identity())
    code, out = _cli("audit", "verify", "--coordinator-home", str(fresh.home.root),
                     "--public-key", str(pem))  # fmt: skip
    assert code == 2 and "signature does not verify" in out
    code, out = _cli("audit", "crosscheck", "--coordinator-home", str(fresh.home.root),
                     "--node-config", str(fresh.nodes["tax"].config_path),
                     "--coordinator-public-key", str(pem))  # fmt: skip
    assert code == 2 and "BROKEN" in out


@pytest.mark.parametrize(
    ("tamper", "args", "expected"),
    [
        ("UPDATE releases SET status = 'cancelled' WHERE job_id = ?", (DOOMED,), "was edited"),
        ("UPDATE releases SET params = replace(params, '\"steps\": ', '\"steps\": 1') "
         "WHERE job_id = ?", (KEPT,), "was edited"),  # more steps: a *larger* bill is no excuse
        ("DELETE FROM releases WHERE job_id = ?", (DOOMED,), "was deleted"),
        ("INSERT INTO releases SELECT NULL, dataset, period, 'ghost#9', round, purpose, analyst, "
         "project, mechanism, params, status, owner, fingerprint, created_at, updated_at "
         "FROM releases WHERE job_id = ? LIMIT 1", (KEPT,), "has no audit entry"),
    ],
)  # fmt: skip
def test_a_release_row_edited_deleted_or_added_fails_verify(
    fresh: Deployment, tamper: str, args: tuple[object, ...], expected: str
) -> None:
    tax = fresh.nodes["tax"]
    assert _release_rows(tax, tamper, *args) >= 1
    code, out = _verify_node(tax)
    assert code == 2 and "DISAGREE" in out, out
    assert expected in out
