"""`silobridge officer`: keygen -> approve -> inspect, and the node accepts the result."""

from __future__ import annotations

import dataclasses
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.node_config import ColumnSpec, DataSourceSpec, NodeConfig, OfficerConfig, SourceKind
from clients.policy.column_policy import check_job_columns
from silobridge.cli.main import app
from vocab.approval import JobClaims, load_signed_approval
from vocab.columns import ColumnClass, ColumnType
from vocab.jobspec import load_job_spec
from vocab.privacy import Budget
from vocab.serde import spec_fingerprint

runner = CliRunner()
PURPOSE = "joint credit-default risk model"
APP = "c0ffee" + "0" * 58
SPEC = f"""
[job]
name = "lending-risk"
purpose = "{PURPOSE}"
analyst = "demo.analyst"
target = "y"
positive = "1"
epsilon = 1
[features.int_rate]
lower = 5.0
upper = 30.0
[features.annual_inc]
lower = 0.0
upper = 1000000.0
[features.zip3]
categories = ["100", "101"]
"""


def _spec_file(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.toml"
    path.write_text(text)
    return path


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
    spec = keys / "job.toml"
    if not spec.exists():
        _spec_file(keys)
    return _invoke(
        "officer",
        "approve",
        "--key",
        str(keys / "officer.key"),
        "--spec",
        str(spec),
        "--app-hash",
        APP,
        "--department",
        "northeast",
        "--dataset",
        "lending",
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
    spec = load_job_spec(keys / "job.toml")
    # Everything comes from the spec: its columns, fingerprint, analyst and epsilon.
    assert signed.approval.columns == {"int_rate", "annual_inc", "zip3", "y"}
    assert signed.approval.spec_fingerprint == spec_fingerprint(spec)
    assert signed.approval.analyst == "demo.analyst"
    assert signed.approval.app_hash == APP
    assert signed.approval.max_epsilon == 1.0
    assert signed.approval.key_id == key_id
    for shown in (spec_fingerprint(spec), APP, "demo.analyst", "total over every job"):
        assert shown in out
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

    claims = dataclasses.replace(JobClaims.from_spec(spec, APP), columns=("int_rate", "annual_inc"))
    decision = check_job_columns(_node(tmp_path, keys, approval_path.parent), claims)
    assert [u.digest for u in decision.approvals] == [signed.approval.digest()]


def test_approve_takes_some_columns_and_a_total_for_several_runs(tmp_path: Path) -> None:
    _keygen(tmp_path)
    code, out = _approve(
        tmp_path, tmp_path / "a.json", "--columns", "annual_inc, zip3", "--max-epsilon", "3"
    )
    assert code == 0, out
    approval = load_signed_approval(tmp_path / "a.json").approval
    assert approval.columns == {"annual_inc", "zip3"}
    assert approval.max_epsilon == 3.0


def test_approve_json_output(tmp_path: Path) -> None:
    _keygen(tmp_path)
    code, out = _approve(tmp_path, tmp_path / "a.json", "--json")
    assert code == 0, out
    printed = json.loads(out)
    assert printed["app_hash"] == APP
    assert printed["spec_fingerprint"] == spec_fingerprint(load_job_spec(tmp_path / "job.toml"))


def test_approve_refuses_a_spec_without_an_analyst(tmp_path: Path) -> None:
    _keygen(tmp_path)
    _spec_file(tmp_path, SPEC.replace('analyst = "demo.analyst"\n', ""))
    code, out = _approve(tmp_path, tmp_path / "a.json")
    assert code == 2
    assert "names no analyst" in out
    assert not (tmp_path / "a.json").exists()


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
        ("--columns", "zip3,zip3", "twice"),
        ("--columns", "ssn", "does not use: ssn"),
        ("--max-epsilon", "0.5", "below the spec's own epsilon"),
        ("--max-epsilon", "nan", "below the spec's own epsilon"),
        ("--app-hash", "abc", "64 hex digits"),
        ("--app-hash", "g" * 64, "64 hex digits"),
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
