"""`silobridge audit` on the coordinator's log: verify, show, export, and the node crosscheck."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.ledger.node_audit import audit_path_for, node_audit_log
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from server.exchange import AnswerStatus, NodeReply
from server.home.coordinator_home import CoordinatorHome
from silobridge.audit_crosscheck import RecordedBy, crosscheck
from silobridge.cli.main import app
from testkit.synthetic import write_node
from vocab.audit_chain import make_entry
from vocab.audit_log import read_entries
from vocab.wire import TRAIN

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "coordinator"
    root.mkdir()
    audit = CoordinatorHome(root).audit()
    for i in range(4):
        audit.refusal(f"job#{i}", "budget_exceeded", f"reason {i}")
    return root


def _tamper(path: Path, line: int) -> None:
    lines = path.read_text().splitlines()
    raw = json.loads(lines[line])
    raw["data"]["reason"] = "edited"
    lines[line] = json.dumps(raw)
    path.write_text("".join(x + "\n" for x in lines))


def test_verify_and_show_the_coordinator_log(home: Path) -> None:
    code, out = _invoke("verify", "--coordinator-home", str(home))
    assert code == 0 and "audit log OK: 4 entries" in out
    code, out = _invoke("show", "--coordinator-home", str(home), "--json", "--last", "2")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [3, 4]
    code, out = _invoke("show", "--coordinator-home", str(home))
    assert code == 0 and "coordinator audit log" in out and "job#3" in out


def test_verify_finds_a_tampered_coordinator_log(home: Path) -> None:
    _tamper(home / "coordinator.audit.jsonl", 1)
    code, out = _invoke("verify", "--coordinator-home", str(home))
    assert code == 2 and "BROKEN" in out and "entry 2" in out


def test_log_source_must_be_exactly_one(home: Path, tmp_path: Path) -> None:
    assert "exactly one" in _invoke("verify")[1]
    code, out = _invoke("verify", "--coordinator-home", str(home), "--node-config", "x.toml")
    assert code == 2 and "exactly one" in out
    code, out = _invoke("verify", "--coordinator-home", str(home), "--result", "r.json")
    assert code == 2 and "--result anchors a node's log" in out
    code, out = _invoke("show", "--coordinator-home", str(tmp_path / "nowhere"))
    assert code == 2 and "no coordinator home" in out


def test_export_json_of_a_good_log(home: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "export" / "log.json"
    code, out = _invoke("export", "--coordinator-home", str(home), "--out", str(out_file))
    assert code == 0, out
    doc = json.loads(out_file.read_text())
    summary = doc["verification"]
    assert summary["verified"] is True and summary["entries"] == 4
    assert summary["source"] == "coordinator" and summary["first_bad"] is None
    assert summary["exported_at"]
    last = doc["entries"][-1]
    assert summary["head"] == {"seq": 4, "hash": last["hash"], "sig": last["sig"]}
    assert summary["verified_with_key"] == CoordinatorHome(home).identity().public.key_id
    assert [e["seq"] for e in doc["entries"]] == [1, 2, 3, 4]
    assert doc["entries"][0]["data"]["job_id"] == "job#0"


def test_export_of_a_tampered_log_is_written_marked_unverified(home: Path, tmp_path: Path) -> None:
    _tamper(home / "coordinator.audit.jsonl", 2)
    out_file = tmp_path / "log.json"
    code, out = _invoke("export", "--coordinator-home", str(home), "--out", str(out_file))
    assert code == 2 and "BROKEN" in out and "unverified" in out
    summary = json.loads(out_file.read_text())["verification"]
    assert (summary["verified"], summary["first_bad"]) == (False, 3)
    assert "edited" in summary["reason"]


def test_export_csv(home: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "log.csv"
    args = ("--coordinator-home", str(home), "--out", str(out_file), "--format", "csv")
    code, out = _invoke("export", *args)
    assert code == 0, out
    lines = out_file.read_text().splitlines()
    comments = [line for line in lines if line.startswith("# ")]
    assert "# verified: True" in comments and "# entries: 4" in comments
    rows = list(csv.DictReader(line for line in lines if not line.startswith("# ")))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4]
    assert json.loads(rows[0]["data"])["job_id"] == "job#0"


def test_export_of_an_unreadable_log_keeps_the_raw_lines(home: Path, tmp_path: Path) -> None:
    path = home / "coordinator.audit.jsonl"
    path.write_text(path.read_text() + "{not json\n")
    out_file = tmp_path / "log.json"
    code, _ = _invoke("export", "--coordinator-home", str(home), "--out", str(out_file))
    assert code == 2
    doc = json.loads(out_file.read_text())
    assert doc["verification"]["verified"] is False
    assert doc["verification"]["first_bad"] == 5
    assert doc["raw_lines"][-1] == "{not json"


# --- crosscheck: each side's recorded heads against the other side's log ---


@pytest.fixture
def node(tmp_path: Path, home: Path) -> NodeConfig:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    log = node_audit_log(cfg.ledger_path)
    coordinator = CoordinatorHome(home).audit()
    for i in range(6):
        # As the node handler records a job message: with the coordinator's head it carried.
        anchor = coordinator.head()
        assert anchor is not None
        log.append(
            "job_received",
            {"job_id": "risk#1", "round": i, "coordinator_head": anchor.to_record()},
        )
    return cfg


def _record_heads(home: Path, node: NodeConfig, seqs: list[int]) -> None:
    entries = read_entries(audit_path_for(node.ledger_path))
    audit = CoordinatorHome(home).audit()
    for rnd, seq in enumerate(seqs, start=1):
        head = entries[seq - 1].head
        reply = NodeReply(11, node.department, rnd, "train", AnswerStatus.OK, epsilon_job=0.1,
                          audit_seq=seq, audit_head=head.hash, audit_sig=head.sig)  # fmt: skip
        audit.node_reply("risk#1", reply)
    # Another department's heads are not this node's business.
    other = NodeReply(12, "health", 1, "train", AnswerStatus.OK, audit_seq=99, audit_head="x")
    audit.node_reply("risk#1", other)


def _crosscheck(home: Path, node: NodeConfig, *extra: str) -> tuple[int, str]:
    return _invoke(
        "crosscheck", "--coordinator-home", str(home), "--node-config", str(node.config_path),
        *extra,
    )  # fmt: skip


def test_crosscheck_matches_both_ways(home: Path, node: NodeConfig) -> None:
    _record_heads(home, node, [2, 4, 6])
    code, out = _crosscheck(home, node)
    assert code == 0, out
    assert "all 3 chain heads" in out and "all 6 coordinator heads" in out
    code, out = _crosscheck(home, node, "--json")
    report = json.loads(out)
    assert report["ok"] and report["node_anchors"] == 3 and report["mismatches"] == []
    assert report["coordinator_anchors"] == 6
    assert report["keys"]["node"]["key_id"] == node_identity(node.ledger_path).public.key_id


def test_crosscheck_finds_a_node_log_rewritten_with_the_nodes_key(
    home: Path, node: NodeConfig
) -> None:
    _record_heads(home, node, [2, 4, 6])
    # The node host rewrites entry 3 and re-chains and re-signs everything after it with the
    # node's own key: its chain verifies, the coordinator's records do not match.
    path = audit_path_for(node.ledger_path)
    key = node_identity(node.ledger_path)
    entries = read_entries(path)
    rebuilt = entries[:2]
    for e in entries[2:]:
        data = {**e.data, "round": 99} if e.seq == 3 else e.data
        rebuilt.append(make_entry(rebuilt[-1].head, e.ts, e.kind, data, key))
    path.write_text("".join(e.to_json() + "\n" for e in rebuilt))
    code, out = _crosscheck(home, node)
    assert code == 2
    assert "mismatch job risk#1 round 2" in out and "node entry 4 differs" in out
    report = crosscheck(
        read_entries(home / "coordinator.audit.jsonl"), rebuilt, "tax",
        CoordinatorHome(home).identity().public, key.public,
    )  # fmt: skip
    assert report.node_chain.ok and not report.ok
    assert [m.seq for m in report.mismatches] == [4, 6]
    assert {m.recorded_by for m in report.mismatches} == {RecordedBy.COORDINATOR}


def test_crosscheck_finds_a_truncated_node_log(home: Path, node: NodeConfig) -> None:
    _record_heads(home, node, [2, 6])
    path = audit_path_for(node.ledger_path)
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:4]))
    code, out = _crosscheck(home, node)
    assert code == 2 and "cut off" in out


def test_crosscheck_finds_a_truncated_coordinator_log(home: Path, node: NodeConfig) -> None:
    path = home / "coordinator.audit.jsonl"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:2]))
    code, out = _crosscheck(home, node)
    assert code == 2
    assert "node entry 1 recorded coordinator entry 4" in out and "cut off" in out


def test_crosscheck_refuses_a_node_head_the_node_never_signed(home: Path, node: NodeConfig) -> None:
    entries = read_entries(audit_path_for(node.ledger_path))
    forged = NodeReply(11, "tax", 1, "train", AnswerStatus.OK, audit_seq=2,
                       audit_head=entries[1].hash, audit_sig=entries[0].sig)  # fmt: skip
    CoordinatorHome(home).audit().node_reply("risk#1", forged)
    code, out = _crosscheck(home, node)
    assert code == 2 and "never signed it" in out


def test_crosscheck_with_nothing_recorded_says_so(home: Path, tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "quiet", "quiet", 3.0, None)
    node_audit_log(cfg.ledger_path).append("budget_change", {"epsilon": 3.0})
    code, out = _crosscheck(home, cfg)
    assert code == 0 and "nothing to compare" in out


def test_audit_verify_reads_a_node_log_and_names_its_key(node: NodeConfig) -> None:
    code, out = _invoke("verify", "--node-config", str(node.config_path))
    assert code == 0 and "6 entries" in out
    assert node_identity(node.ledger_path).public.key_id in out and "key file" in out


def test_audit_key_prints_the_public_key_that_verifies(home: Path, tmp_path: Path) -> None:
    code, out = _invoke("key", "--coordinator-home", str(home))
    assert code == 0 and "BEGIN PUBLIC KEY" in out
    pem = tmp_path / "coordinator.pub"
    pem.write_text(out[out.index("-----BEGIN") :])
    code, out = _invoke("verify", "--coordinator-home", str(home), "--public-key", str(pem))
    assert code == 0 and f"public key {pem}" in out


def test_verify_without_a_key_says_how_to_give_one(home: Path) -> None:
    (home / "coordinator.key").unlink()
    code, out = _invoke("verify", "--coordinator-home", str(home))
    assert code == 2 and "--public-key" in out
    assert not (home / "coordinator.key").exists()  # verifying never mints a key


def test_node_verify_catches_a_deleted_or_cut_log_through_the_ledger(tmp_path: Path) -> None:
    from clients.release import JobRequest, handle_request
    from testkit.synthetic import make_rows, synthetic_spec
    from vocab.models import build_model, get_weights

    cfg = write_node(tmp_path / "alpha", "alpha", 5.0, make_rows(400, seed=2))
    spec = synthetic_spec("gaps", rounds=1, local_epochs=1)
    request = JobRequest(spec, "gaps#1", 1, get_weights(build_model(spec)), TRAIN)
    assert handle_request(cfg.config_path, "alpha", request).weights is not None
    where = ["audit", "verify", "--node-config", str(cfg.config_path)]
    ok = runner.invoke(app, where)
    assert ok.exit_code == 0, ok.output
    assert "all 1 ledger releases match" in ok.output
    log = audit_path_for(cfg.ledger_path)
    lines = log.read_text().splitlines(keepends=True)
    for kept in ([], lines[:2]):  # the whole log deleted; the log cut before its charge
        log.write_text("".join(kept))
        broken = runner.invoke(app, where)
        assert broken.exit_code == 2
        assert "DISAGREE" in broken.output and "ledger entry 1" in broken.output
