"""A deployment's TLS certificates and its SuperNodes' authentication keys, made locally.

`make_deployment_certs` makes a CA and the SuperLink's server certificate (signed by it,
with a SAN per host); `make_node_key` makes the key pair Flower's SuperNode authentication
uses: an ECDSA P-384 key, the private half in OpenSSH format for `flower-supernode
--auth-supernode-private-key`, the public half in OpenSSH format for the SuperLink's node
registration (`flwr supernode register` reads the same format); `issue_client_cert` makes a
person's client certificate for the coordinator service's API, signed by the same CA, with
their role and name in its subject. Private keys are written with mode 0600; no file is
overwritten unless asked, and nothing is written when any target already exists.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vocab.errors import ConfigError
from vocab.roles import check_caller_name, check_role

__all__ = [
    "CA_DAYS",
    "CLIENT_DAYS",
    "DEFAULT_HOSTS",
    "MAX_CLIENT_DAYS",
    "SERVER_DAYS",
    "ClientCertFiles",
    "DeploymentCerts",
    "NodeKeyFiles",
    "issue_client_cert",
    "make_deployment_certs",
    "make_node_key",
    "read_node_public_key",
]

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 365
MAX_CLIENT_DAYS = 825
_DEPARTMENT_RE = re.compile(r"[a-z0-9_-]{1,40}")
_HOST_RE = re.compile(r"[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?")
# Flower's SuperNode authentication accepts NIST curves only; its docs use P-384.
_NODE_CURVE = ec.SECP384R1()
_TLS_CURVE = ec.SECP384R1()
_CLIENT_CURVE = ec.SECP256R1()
_CLIENT_ORG = "silobridge"


@dataclass(frozen=True)
class DeploymentCerts:
    """The files of a certs folder the coordinator and the nodes use for TLS."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """What every node and analyst passes as `--root-certificates`."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """Signs server certificates; keep it off the coordinator host if you can."""
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    def superlink_tls(self) -> tuple[Path, Path, Path]:
        """(CA certificate, server certificate, server key) for `flower-superlink`.

        Raises:
            ConfigError: If any of the three files is missing.
        """
        files = (self.ca_cert, self.server_cert, self.server_key)
        missing = [p.name for p in files if not p.is_file()]
        if missing:
            raise ConfigError(
                f"the certs folder {self.folder} lacks {', '.join(missing)}",
                f"make it with `silobridge certs init --out {self.folder}`",
            )
        return files


@dataclass(frozen=True)
class NodeKeyFiles:
    """A SuperNode's authentication key pair (OpenSSH formats)."""

    private: Path
    public: Path

    @classmethod
    def in_folder(cls, folder: Path, department: str) -> NodeKeyFiles:
        _check_department(department)
        return cls(folder / f"supernode-{department}.key", folder / f"supernode-{department}.pub")


@dataclass(frozen=True)
class ClientCertFiles:
    """A person's client certificate for the coordinator service's API, and what goes with it."""

    cert: Path
    key: Path
    ca: Path
    """The deployment CA's certificate: the client trusts the coordinator through it."""

    @classmethod
    def in_folder(cls, folder: Path, role: str, name: str, ca: Path) -> ClientCertFiles:
        stem = f"{check_role(role)}-{check_caller_name(name)}"
        return cls(folder / f"{stem}.crt", folder / f"{stem}.key", ca)


def _check_department(department: str) -> None:
    if not _DEPARTMENT_RE.fullmatch(department):
        raise ConfigError(
            f"department {department!r} is not a valid name",
            "use 1-40 characters from a-z, 0-9, '_' and '-', as in the node config",
        )


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"refusing to overwrite {', '.join(existing)}",
            "pass --force to replace them (anything signed by or registered with the old "
            "files stops working), or choose another --out folder",
        )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically replace `path` with `data`, created with `mode` from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(name, path)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST_RE.fullmatch(host):
        raise ConfigError(
            f"{host!r} is neither an IP address nor a host name",
            "pass the names and addresses nodes and analysts use to reach the coordinator",
        )
    return x509.DNSName(host)


def _ca(key: ec.EllipticCurvePrivateKey, name: str, now: datetime.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA384())
    )


def _leaf(
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    days: int,
    *,
    usage: x509.ObjectIdentifier,
    key_agreement: bool,
    hosts: Sequence[str] = (),
) -> x509.Certificate:
    """A certificate the deployment CA signs for one purpose (`usage`: server or client
    authentication), valid from five minutes ago for `days`; `hosts` become its SANs."""
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
        )
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=key_agreement,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )


def _server(
    key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    return _leaf(
        key, subject, ca, ca_key, now, SERVER_DAYS,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, key_agreement=True, hosts=hosts,
    )  # fmt: skip


def make_deployment_certs(
    out: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    force: bool = False,
    name: str = "silobridge deployment CA",
) -> DeploymentCerts:
    """A new CA and a server certificate for `hosts`, written into `out`.

    Raises:
        ConfigError: If `hosts` is empty or holds something that is not a host, or a file
            exists and `force` is not set (then nothing is written).
    """
    if not hosts:
        raise ConfigError("no host for the server certificate", "pass --host at least once")
    certs = DeploymentCerts(out)
    for host in hosts:
        _san(host)
    _refuse_existing([certs.ca_cert, certs.ca_key, certs.server_cert, certs.server_key], force)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(_TLS_CURVE)
    ca = _ca(ca_key, name, now)
    server_key = ec.generate_private_key(_TLS_CURVE)
    server = _server(server_key, hosts, ca, ca_key, now)
    _write(certs.ca_key, _private_pem(ca_key), 0o600)
    _write(certs.server_key, _private_pem(server_key), 0o600)
    _write(certs.ca_cert, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(certs.server_cert, server.public_bytes(serialization.Encoding.PEM), 0o644)
    return certs


def make_node_key(out: Path, department: str, *, force: bool = False) -> NodeKeyFiles:
    """A new SuperNode authentication key pair for `department`, written into `out`.

    Raises:
        ConfigError: If the department name is not valid, or a file exists and `force` is
            not set (then nothing is written).
    """
    files = NodeKeyFiles.in_folder(out, department)
    _refuse_existing([files.private, files.public], force)
    key = ec.generate_private_key(_NODE_CURVE)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(files.private, private, 0o600)
    _write(files.public, public + f" silobridge-{department}\n".encode(), 0o644)
    return files


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The deployment CA `certs init` wrote into `ca_dir`, checked to be able to sign."""
    files = DeploymentCerts(ca_dir)
    if not files.ca_cert.is_file():
        raise ConfigError(
            f"no deployment CA in {ca_dir}: {files.ca_cert.name} is missing",
            "run `silobridge certs init --out DIR` first, then pass that DIR as --ca-dir",
        )
    if not files.ca_key.is_file():
        raise ConfigError(
            f"the CA key {files.ca_key} is missing (only the CA certificate is there)",
            "issue on the machine that keeps the CA key: pass the folder "
            "`silobridge certs init --out DIR` wrote, with its ca.key, as --ca-dir",
        )
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    except ValueError as err:
        raise ConfigError(
            f"{files.ca_cert} is not a PEM certificate ({err})",
            "pass the folder `silobridge certs init --out DIR` wrote as --ca-dir",
        ) from None
    try:
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ConfigError(
            f"{files.ca_key} is not an unencrypted PEM private key ({err})",
            "pass the folder `silobridge certs init --out DIR` wrote as --ca-dir",
        ) from None
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ConfigError(
            f"{files.ca_cert} is not a CA certificate",
            "pass the folder `silobridge certs init --out DIR` wrote as --ca-dir",
        )
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_public_key(ca, key):
        raise ConfigError(
            f"{files.ca_key} is not the key of the CA certificate {files.ca_cert}",
            "restore the ca.key that `silobridge certs init` wrote beside this ca.pem",
        )
    return ca, key


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _client(
    key: ec.EllipticCurvePrivateKey,
    role: str,
    name: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    days: int,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _CLIENT_ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    return _leaf(
        key, subject, ca, ca_key, now, days,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH, key_agreement=False,
    )  # fmt: skip


def issue_client_cert(
    ca_dir: Path,
    out: Path,
    *,
    role: str,
    name: str,
    days: int = CLIENT_DAYS,
    force: bool = False,
) -> ClientCertFiles:
    """A person's client certificate (EC P-256) for the coordinator service's API.

    Signed by the deployment CA in `ca_dir` (the folder `silobridge certs init --out` wrote),
    with subject CN = `name`, OU = `role`, O = silobridge and extended key usage clientAuth
    only; written as `<out>/<role>-<name>.crt` and `.key` (0600).

    Raises:
        ConfigError: If the role, name or days are not valid, the CA is missing, unreadable
            or expires before the certificate would, or a file exists and `force` is not set
            (in every case nothing is written).
    """
    files = ClientCertFiles.in_folder(out, role, name, DeploymentCerts(ca_dir).ca_cert)
    if isinstance(days, bool) or not 1 <= days <= MAX_CLIENT_DAYS:
        raise ConfigError(
            f"a client certificate valid {days} days is not allowed",
            f"pass --days from 1 to {MAX_CLIENT_DAYS} (default {CLIENT_DAYS})",
        )
    ca, ca_key = _load_ca(ca_dir)
    now = datetime.datetime.now(datetime.UTC)
    expires = now + datetime.timedelta(days=days)
    if expires > ca.not_valid_after_utc:
        raise ConfigError(
            f"the CA in {ca_dir} expires on {ca.not_valid_after_utc:%Y-%m-%d}, before a "
            f"certificate valid {days} days would",
            "pass fewer --days, or make a new deployment CA with `silobridge certs init`",
        )
    _refuse_existing([files.cert, files.key], force)
    key = ec.generate_private_key(_CLIENT_CURVE)
    cert = _client(key, role, name, ca, ca_key, now, days)
    _write(files.key, _private_pem(key), 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def read_node_public_key(path: Path) -> bytes:
    """The OpenSSH public key at `path`, checked the way the SuperLink will check it.

    Raises:
        ConfigError: If the file is missing or is not an OpenSSH NIST-curve EC public key.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the SuperNode public key {path}: {err.strerror}",
            "pass the .pub file `silobridge certs node-key` wrote",
        ) from None
    try:
        key = serialization.load_ssh_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ConfigError(
            f"{path} is not an OpenSSH public key ({err})",
            "pass the .pub file `silobridge certs node-key` wrote, not the private key",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in {
        "secp256r1",
        "secp384r1",
        "secp521r1",
    }:
        raise ConfigError(
            f"{path} is not a NIST-curve EC key, which Flower's SuperNode authentication needs",
            "make one with `silobridge certs node-key`",
        )
    return data
