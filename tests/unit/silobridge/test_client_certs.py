"""Client certificates for the coordinator service's API: `issue_client_cert` and `certs issue`."""

from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from silobridge.certs import (
    CLIENT_DAYS,
    DeploymentCerts,
    issue_client_cert,
    make_deployment_certs,
)
from silobridge.cli.main import app
from vocab.errors import ConfigError
from vocab.roles import ROLES, check_caller_name, check_role

runner = CliRunner()


@pytest.fixture
def ca(tmp_path: Path) -> DeploymentCerts:
    return make_deployment_certs(tmp_path / "ca")


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str | bytes]:
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def test_an_issued_certificate_is_signed_by_the_ca_for_a_client(
    ca: DeploymentCerts, tmp_path: Path
) -> None:
    files = issue_client_cert(ca.folder, tmp_path / "out", role="analyst", name="r.ahmed")
    assert files.cert == tmp_path / "out" / "analyst-r.ahmed.crt"
    assert files.key == tmp_path / "out" / "analyst-r.ahmed.key"
    assert files.ca == ca.ca_cert
    authority = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(authority)
    assert _subject(cert, NameOID.COMMON_NAME) == ["r.ahmed"]
    assert _subject(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == ["analyst"]
    assert _subject(cert, NameOID.ORGANIZATION_NAME) == ["silobridge"]
    extensions = cert.extensions
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=CLIENT_DAYS, minutes=5)
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600


def test_serials_are_random_and_days_are_honoured(ca: DeploymentCerts, tmp_path: Path) -> None:
    one = issue_client_cert(ca.folder, tmp_path, role="officer", name="k.li", days=1)
    two = issue_client_cert(ca.folder, tmp_path, role="operator", name="k.li", days=825)
    first = x509.load_pem_x509_certificate(one.cert.read_bytes())
    second = x509.load_pem_x509_certificate(two.cert.read_bytes())
    assert first.serial_number != second.serial_number
    assert first.not_valid_after_utc - first.not_valid_before_utc == datetime.timedelta(
        days=1, minutes=5
    )
    assert _subject(second, NameOID.ORGANIZATIONAL_UNIT_NAME) == ["operator"]


def test_nothing_is_overwritten_without_force(ca: DeploymentCerts, tmp_path: Path) -> None:
    files = issue_client_cert(ca.folder, tmp_path, role="analyst", name="r.ahmed")
    before = (files.cert.read_bytes(), files.key.read_bytes())
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        issue_client_cert(ca.folder, tmp_path, role="analyst", name="r.ahmed")
    assert (files.cert.read_bytes(), files.key.read_bytes()) == before
    issue_client_cert(ca.folder, tmp_path, role="analyst", name="r.ahmed", force=True)
    assert files.key.read_bytes() != before[1]
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("role", "name", "days", "problem"),
    [
        ("admin", "r.ahmed", 30, "'admin' is not a role"),
        ("Analyst", "r.ahmed", 30, "'Analyst' is not a role"),
        ("analyst", "../etc", 30, "'../etc' is not a valid caller name"),
        ("analyst", ".hidden", 30, "'.hidden' is not a valid caller name"),
        ("analyst", "a" * 65, 30, "is not a valid caller name"),
        ("analyst", "", 30, "'' is not a valid caller name"),
        ("analyst", "r.ahmed", 0, "valid 0 days is not allowed"),
        ("analyst", "r.ahmed", 826, "valid 826 days is not allowed"),
    ],
)
def test_bad_input_is_refused_before_any_file_is_written(
    ca: DeploymentCerts, tmp_path: Path, role: str, name: str, days: int, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        issue_client_cert(ca.folder, tmp_path / "out", role=role, name=name, days=days)
    assert caught.value.hint
    assert not (tmp_path / "out").exists()


def test_a_bad_role_names_the_roles_there_are(ca: DeploymentCerts, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        issue_client_cert(ca.folder, tmp_path, role="admin", name="r.ahmed")
    assert caught.value.hint == "use one of analyst, officer, operator"


def test_a_missing_ca_says_to_make_one_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no deployment CA in") as caught:
        issue_client_cert(tmp_path / "nowhere", tmp_path / "out", role="analyst", name="a")
    assert "silobridge certs init --out DIR" in caught.value.hint
    assert not (tmp_path / "out").exists()


def test_a_ca_without_its_key_is_refused(ca: DeploymentCerts, tmp_path: Path) -> None:
    ca.ca_key.unlink()
    with pytest.raises(ConfigError, match=r"the CA key .* is missing") as caught:
        issue_client_cert(ca.folder, tmp_path / "out", role="analyst", name="a")
    assert "certs init --out DIR" in caught.value.hint


def test_a_ca_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    one = make_deployment_certs(tmp_path / "one")
    two = make_deployment_certs(tmp_path / "two")
    one.ca_key.write_bytes(two.ca_key.read_bytes())
    with pytest.raises(ConfigError, match="is not the key of the CA certificate"):
        issue_client_cert(one.folder, tmp_path / "out", role="analyst", name="a")


def test_a_server_certificate_is_not_a_ca(ca: DeploymentCerts, tmp_path: Path) -> None:
    ca.ca_cert.write_bytes(ca.server_cert.read_bytes())
    with pytest.raises(ConfigError, match="is not a CA certificate"):
        issue_client_cert(ca.folder, tmp_path / "out", role="analyst", name="a")


def test_a_ca_expiring_before_the_certificate_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("silobridge.certs.CA_DAYS", 10)
    short = make_deployment_certs(tmp_path / "short")
    with pytest.raises(ConfigError, match="before a certificate valid 30 days would"):
        issue_client_cert(short.folder, tmp_path / "out", role="analyst", name="a", days=30)
    assert not (tmp_path / "out").exists()
    issue_client_cert(short.folder, tmp_path / "out", role="analyst", name="a", days=9)


def test_role_and_name_rules() -> None:
    assert ROLES == ("analyst", "officer", "operator")
    assert check_role("officer") == "officer"
    for good in ("r.ahmed", "R_2", "a", "x" * 64, "9-lives"):
        assert check_caller_name(good) == good
    for bad in ("r ahmed", "r/ahmed", "-r", "_r", "r.ahmed\n", "é"):
        with pytest.raises(ConfigError, match="not a valid caller name"):
            check_caller_name(bad)


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


def test_certs_issue_writes_the_files_and_says_what_to_hand_over(
    ca: DeploymentCerts, tmp_path: Path
) -> None:
    out = tmp_path / "people"
    code, text = _invoke(
        "certs", "issue", "--role", "analyst", "--name", "r.ahmed",
        "--ca-dir", str(ca.folder), "--out", str(out), "--days", "30",
    )  # fmt: skip
    assert code == 0, text
    assert (out / "analyst-r.ahmed.crt").is_file()
    assert stat.S_IMODE((out / "analyst-r.ahmed.key").stat().st_mode) == 0o600
    assert "analyst-r.ahmed.key" in text and str(ca.ca_cert) in text
    assert "never leaves their machine" in text
    code, text = _invoke(
        "certs", "issue", "--role", "analyst", "--name", "r.ahmed",
        "--ca-dir", str(ca.folder), "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert "refusing to overwrite" in text and "--force" in text


def test_certs_issue_json(ca: DeploymentCerts, tmp_path: Path) -> None:
    code, text = _invoke(
        "certs", "issue", "--role", "officer", "--name", "k.li",
        "--ca-dir", str(ca.folder), "--out", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert code == 0, text
    files = json.loads(text)
    assert files == {
        "role": "officer",
        "name": "k.li",
        "days": CLIENT_DAYS,
        "cert": str(tmp_path / "o" / "officer-k.li.crt"),
        "key": str(tmp_path / "o" / "officer-k.li.key"),
        "ca_cert": str(ca.ca_cert),
    }


def test_certs_issue_refuses_a_bad_role_without_a_traceback(
    ca: DeploymentCerts, tmp_path: Path
) -> None:
    code, text = _invoke(
        "certs", "issue", "--role", "admin", "--name", "r.ahmed",
        "--ca-dir", str(ca.folder), "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "'admin' is not a role" in text and "analyst, officer, operator" in text
    assert not (tmp_path / "o").exists()


def test_certs_issue_without_a_ca_says_to_run_certs_init(tmp_path: Path) -> None:
    code, text = _invoke(
        "certs", "issue", "--role", "analyst", "--name", "r.ahmed",
        "--ca-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "silobridge certs init --out DIR" in text
