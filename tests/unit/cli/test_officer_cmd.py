"""`silobridge officer`: keygen -> approve -> inspect, and the node accepts the result."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.column_policy import check_job_columns
from clients.node_config import ColumnSpec, DataSourceSpec, NodeConfig, OfficerConfig, SourceKind
from silobridge.cli.main import app
from vocab.approval import JobClaims, load_signed_approval
from vocab.columns import ColumnClass, ColumnType
from vocab.privacy import Budget

runner = CliRunner()
PURPOSE = "joint credit-default risk model"


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


def _keygen(folder: Path) -> str:
    code, out = _invoke("officer", "keygen", "--out", str(folder))
    assert code == 0, out
    return out.split("officer key id ")[1].split()[0]


def _approve(
    keys: Path, out: Path, *extra: str, expiry: tuple[str, ...] = ("--days", "90")
) -> tuple[int, str]:
    return _invoke(
        "officer",
        "approve",
        "--key",
        str(keys / "officer.key"),
        "--department",
        "northeast",
        "--dataset",
        "lending",
        "--job",
        "lending-risk",
        "--purpose",
        PURPOSE,
        "--columns",
        "annual_inc, zip3",
        "--max-epsilon",
        "1.0",
        "--out",
        str(out),
        *expiry,
        *extra,
    )


def _node(folder: Path, keys: Path, approvals: Path) -> NodeConfig:
    return NodeConfig(
        department="northeast",
        dataset="lending",
        source=DataSourceSpec(SourceKind.CSV, folder / "loans.csv", None, None),
        columns=(
            ColumnSpec("int_rate", ColumnType.FLOAT, ColumnClass.OPEN),
            ColumnSpec("annual_inc", ColumnType.FLOAT, ColumnClass.CONDITIONAL),
        ),
        person_id=None,
        budget=Budget(3.0, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=0.2,
        split_seed=0,
        config_path=folder / "node.toml",
        officer=OfficerConfig(approvals, public_key_path=keys / "officer.pub"),
    )


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key_id = _keygen(keys)

    assert len(key_id) == 16
    private = keys / "officer.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (keys / "officer.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    _keygen(tmp_path)
    before = (tmp_path / "officer.key").read_bytes(), (tmp_path / "officer.pub").read_bytes()

    code, out = _invoke("officer", "keygen", "--out", str(tmp_path))

    assert code == 2
    assert "never overwritten" in out
    after = (tmp_path / "officer.key").read_bytes(), (tmp_path / "officer.pub").read_bytes()
    assert after == before


def test_keygen_refuses_when_only_the_public_key_exists(tmp_path: Path) -> None:
    (tmp_path / "officer.pub").write_text("an older key")
    code, out = _invoke("officer", "keygen", "--out", str(tmp_path))
    assert code == 2
    assert "officer.pub exists already" in out
    assert not (tmp_path / "officer.key").exists()


def test_keygen_takes_another_name(tmp_path: Path) -> None:
    code, _ = _invoke("officer", "keygen", "--out", str(tmp_path), "--name", "health")
    assert code == 0
    assert (tmp_path / "health.key").exists() and (tmp_path / "health.pub").exists()
    code, out = _invoke("officer", "keygen", "--out", str(tmp_path), "--name", "../x")
    assert code == 2
    assert "plain file name" in out


def test_keygen_approve_inspect_round_trip_and_the_node_accepts(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key_id = _keygen(keys)
    approval_path = tmp_path / "approvals" / "lending-risk.json"

    code, out = _approve(keys, approval_path)

    assert code == 0, out
    assert str(approval_path) in out
    assert key_id in out
    signed = load_signed_approval(approval_path)
    assert signed.approval.columns == {"annual_inc", "zip3"}
    assert signed.approval.key_id == key_id
    assert signed.approval.digest() in out
    lifetime = signed.approval.expires_at - signed.approval.issued_at
    assert lifetime == timedelta(days=90)

    code, out = _invoke(
        "officer", "inspect", str(approval_path), "--public-key", str(keys / "officer.pub")
    )
    assert code == 0, out
    assert "verified" in out
    assert "valid now" in out
    assert PURPOSE in out

    code, out = _invoke(
        "officer",
        "inspect",
        str(approval_path),
        "--public-key",
        str(keys / "officer.pub"),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["verified"] is True
    assert result["digest"] == signed.approval.digest()

    claims = JobClaims("lending-risk", PURPOSE, ("int_rate", "annual_inc"), 1.0)
    decision = check_job_columns(_node(tmp_path, keys, approval_path.parent), claims)
    assert [u.digest for u in decision.approvals] == [signed.approval.digest()]


def test_inspect_without_a_key_does_not_claim_a_verification(tmp_path: Path) -> None:
    _keygen(tmp_path)
    _approve(tmp_path, tmp_path / "a.json")
    code, out = _invoke("officer", "inspect", str(tmp_path / "a.json"))
    assert code == 0
    assert "not checked" in out
    code, out = _invoke("officer", "inspect", str(tmp_path / "a.json"), "--json")
    assert json.loads(out)["verified"] is None


def test_inspect_with_another_officer_key_fails(tmp_path: Path) -> None:
    _keygen(tmp_path / "mine")
    _keygen(tmp_path / "theirs")
    _approve(tmp_path / "mine", tmp_path / "a.json")

    code, out = _invoke(
        "officer",
        "inspect",
        str(tmp_path / "a.json"),
        "--public-key",
        str(tmp_path / "theirs" / "officer.pub"),
    )

    assert code == 2
    assert "signature FAILS" in out
    assert "forged/not signed" in out


def test_inspect_of_a_tampered_file_fails(tmp_path: Path) -> None:
    _keygen(tmp_path)
    path = tmp_path / "a.json"
    _approve(tmp_path, path)
    path.write_text(path.read_text().replace('"max_epsilon": 1.0', '"max_epsilon": 9.0'))

    code, out = _invoke(
        "officer", "inspect", str(path), "--public-key", str(tmp_path / "officer.pub")
    )

    assert code == 2
    assert "altered after signing" in out


def test_inspect_of_a_malformed_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    code, out = _invoke("officer", "inspect", str(path))
    assert code == 2
    assert str(path) in out
    assert "not valid JSON" in out


def test_approve_until_a_date(tmp_path: Path) -> None:
    _keygen(tmp_path)
    expires = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    code, out = _approve(tmp_path, tmp_path / "a.json", expiry=("--expires", expires))
    assert code == 0, out
    approval = load_signed_approval(tmp_path / "a.json").approval
    assert approval.expires_at == datetime.fromisoformat(expires).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ((), "exactly one of --days and --expires"),
        (("--days", "90", "--expires", "2099-01-01"), "exactly one of --days and --expires"),
        (("--days", "0"), "--days must be in"),
        (("--expires", "2001-01-01"), "not in the future"),
        (("--expires", "next year"), "not a date"),
    ],
)
def test_approve_needs_one_valid_expiry(
    tmp_path: Path, extra: tuple[str, ...], needle: str
) -> None:
    _keygen(tmp_path)
    code, out = _approve(tmp_path, tmp_path / "a.json", expiry=extra)
    assert code == 2
    assert needle in out
    assert not (tmp_path / "a.json").exists()


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--department", "North East", "`department`"),
        ("--columns", " , ", "names no column"),
        ("--columns", "a,a", "twice"),
        ("--max-epsilon", "0", "`max_epsilon`"),
        ("--purpose", " ", "`purpose`"),
    ],
)
def test_approve_refuses_bad_fields(tmp_path: Path, option: str, value: str, needle: str) -> None:
    _keygen(tmp_path)
    code, out = _approve(tmp_path, tmp_path / "a.json", option, value)
    assert code == 2
    assert needle in out


def test_approve_writes_only_json_files_the_node_reads(tmp_path: Path) -> None:
    _keygen(tmp_path)
    code, out = _approve(tmp_path, tmp_path / "a.txt")
    assert code == 2
    assert "*.json" in out


def test_approve_with_a_missing_or_wrong_key_file(tmp_path: Path) -> None:
    code, out = _approve(tmp_path, tmp_path / "a.json")
    assert code == 2
    assert "cannot read officer key" in out
    _keygen(tmp_path)
    (tmp_path / "officer.key").write_text((tmp_path / "officer.pub").read_text())
    code, out = _approve(tmp_path, tmp_path / "a.json")
    assert code == 2
    assert "not a PEM private key" in out
