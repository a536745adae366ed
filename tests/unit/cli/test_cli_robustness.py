"""Odd input reaches the user as a clear error, never a traceback: markup, files, logs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from clients.ledger.node_audit import audit_path_for, node_audit_log
from clients.node_config import NodeConfig
from clients.policy.approval_check import OfficerKey
from silobridge.cli.errors import fail
from silobridge.cli.main import app
from testkit.synthetic import write_node
from vocab.approval import Approval, SignedApproval, serialize_signed_approval
from vocab.errors import ConfigError

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


# --- the error handler prints messages and hints as plain text ---


def test_config_sections_in_a_message_print_literally(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    text = cfg.config_path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^public_key = ".*"$', 'public_key = "missing.pub"', text)
    cfg.config_path.write_text(text, encoding="utf-8")
    code, out = _invoke("audit", "verify", "--node-config", str(cfg.config_path))
    assert code == 2
    assert "[officer] `public_key`" in out


def test_markup_closing_tag_in_a_value_does_not_crash(tmp_path: Path) -> None:
    home = f"{tmp_path}/x[/]y"
    code, out = _invoke(
        "budget", "set", "--coordinator-home", home, "--analyst", "a", "--epsilon", "1"
    )
    assert code == 2
    assert "x[/]y" in out


def test_hint_with_markup_prints_literally(capsys: pytest.CaptureFixture[str]) -> None:
    fail(ConfigError("bad [bold]value[/] in [node]", "set [officer] `approvals` [/]"))
    err = capsys.readouterr().err
    assert "bad [bold]value[/] in [node]" in err
    assert "set [officer] `approvals` [/]" in err


# --- officer inspect of a malformed approval file ---


def _approval_text() -> str:
    key = Ed25519PrivateKey.generate()
    approval = Approval(
        department="northeast",
        dataset="lending",
        job="lending-risk",
        purpose="joint credit-default risk model",
        columns=frozenset({"annual_inc"}),
        max_epsilon=1.0,
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
        key_id=OfficerKey.from_public_key(key.public_key()).key_id,
        analyst="demo.analyst",
        spec_fingerprint="5" * 64,
        app_hash="a" * 64,
    )
    signed = SignedApproval(approval, key.sign(approval.canonical_bytes()))
    return serialize_signed_approval(signed)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"max_epsilon": 1.0', '"max_epsilon": 1' + "0" * 400),
        ('"max_epsilon": 1.0', '"max_epsilon": 1' + "0" * 5000),
        ('"purpose": "joint', '"purpose": "\\ud800joint'),
    ],
)
def test_officer_inspect_of_a_malformed_file_names_it(tmp_path: Path, old: str, new: str) -> None:
    path = tmp_path / "absurd.json"
    text = _approval_text()
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    code, out = _invoke("officer", "inspect", str(path))
    assert code == 2
    assert "absurd.json" in out


# --- audit verify / show / export ---


@pytest.fixture
def node(tmp_path: Path) -> NodeConfig:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    log = node_audit_log(cfg.ledger_path)
    for i in range(4):
        log.append("charge", {"job_id": "risk#1", "round": i})
    return cfg


def _result(tmp_path: Path, head: object) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"nodes": {"tax": {"audit_head": head}}}))
    return path


@pytest.mark.parametrize(
    "head",
    [
        {"seq": "two", "hash": "x"},
        {"seq": 2.5, "hash": "x"},
        {"seq": True, "hash": "x"},
        {"seq": -1, "hash": "x"},
        {"seq": None, "hash": "x"},
        {"seq": 2, "hash": 7},
        {"hash": "x"},
        ["seq", 2],
        "2",
    ],
)
def test_verify_with_a_malformed_result_head_is_a_clear_error(
    node: NodeConfig, tmp_path: Path, head: object
) -> None:
    result = _result(tmp_path, head)
    code, out = _invoke(
        "audit", "verify", "--node-config", str(node.config_path), "--result", str(result)
    )
    assert code == 2
    assert "result.json" in out and "audit head" in out


def test_verify_with_a_good_result_head_still_anchors(node: NodeConfig, tmp_path: Path) -> None:
    log = audit_path_for(node.ledger_path)
    last = json.loads(log.read_text().splitlines()[-1])
    result = _result(tmp_path, {"seq": last["seq"], "hash": last["hash"]})
    code, out = _invoke(
        "audit", "verify", "--node-config", str(node.config_path), "--result", str(result)
    )
    assert code == 0 and "anchored at entry 4" in out


def _damage_line(node: NodeConfig, line: int) -> Path:
    path = audit_path_for(node.ledger_path)
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b"risk#1", b"risk#\xff1", 1)
    path.write_bytes(b"\n".join(lines))
    return path


def test_a_byte_that_is_not_utf8_is_reported_not_a_traceback(
    node: NodeConfig, tmp_path: Path
) -> None:
    _damage_line(node, 3)
    where = ("--node-config", str(node.config_path))
    code, out = _invoke("audit", "verify", *where)
    assert code == 2 and "BROKEN" in out and "first bad entry 3" in out

    code, out = _invoke("audit", "show", *where)
    assert code == 0 and "risk#" in out
    code, out = _invoke("audit", "show", *where, "--json")
    assert code == 0 and len(out.splitlines()) == 4

    for fmt in ("json", "csv"):
        out_file = tmp_path / f"export.{fmt}"
        code, out = _invoke("audit", "export", *where, "--out", str(out_file), "--format", fmt)
        assert code == 2 and "unverified" in out
        assert out_file.exists()
    summary = json.loads((tmp_path / "export.json").read_text())["verification"]
    assert (summary["verified"], summary["first_bad"]) == (False, 3)


def test_export_of_a_log_with_a_lone_surrogate_is_still_written(
    node: NodeConfig, tmp_path: Path
) -> None:
    path = audit_path_for(node.ledger_path)
    path.write_bytes(path.read_bytes().replace(b'"charge"', b'"charge\\udc80"', 1))
    where = ("--node-config", str(node.config_path))
    out_file = tmp_path / "export.csv"
    code, out = _invoke("audit", "export", *where, "--out", str(out_file), "--format", "csv")
    assert code == 2 and "unverified" in out
    assert "charge\\udc80" in out_file.read_text(encoding="utf-8")
    assert _invoke("audit", "show", *where)[0] == 0


def test_an_unparseable_line_is_exported_raw(node: NodeConfig, tmp_path: Path) -> None:
    path = audit_path_for(node.ledger_path)
    path.write_bytes(path.read_bytes() + b"{\xff not json\n")
    out_file = tmp_path / "export.json"
    where = ("--node-config", str(node.config_path))
    code, _ = _invoke("audit", "export", *where, "--out", str(out_file))
    assert code == 2
    doc = json.loads(out_file.read_text())
    assert doc["verification"]["first_bad"] == 5
    assert doc["raw_lines"][-1] == "{\ufffd not json"


def test_markup_in_a_log_entry_is_shown_literally(node: NodeConfig) -> None:
    node_audit_log(node.ledger_path).append("[/]odd[bold]", {"x": 1})
    code, out = _invoke("audit", "show", "--node-config", str(node.config_path))
    assert code == 0 and "[/]odd[bold]" in out.replace("\n", "").replace("│", "").replace(" ", "")


@pytest.mark.parametrize("last", ["0", "-1"])
def test_show_last_must_be_positive(node: NodeConfig, last: str) -> None:
    code, out = _invoke("audit", "show", "--node-config", str(node.config_path), "--last", last)
    assert code == 2 and "--last" in out


# --- names match as a whole ---


@pytest.mark.parametrize("kind", ["--analyst", "--project"])
def test_a_cap_on_a_name_with_a_trailing_newline_is_refused(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "coordinator"
    home.mkdir()
    where = ("--coordinator-home", str(home))
    code, out = _invoke("budget", "set", *where, kind, "alice\n", "--epsilon", "1")
    assert code == 2 and "is not allowed" in out
    code, out = _invoke("budget", "show", *where, "--json")
    assert code == 0 and "alice" not in out
