"""The privacy officer's side: ed25519 key pairs, and signing and writing approval files."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.policy.approval_check import OfficerKey
from vocab.approval import Approval, SignedApproval, key_id_of, serialize_signed_approval
from vocab.errors import ConfigError
from vocab.jobspec import RiskJobSpec
from vocab.serde import spec_fingerprint

__all__ = [
    "KeyPairFiles",
    "generate_key_pair",
    "load_private_key",
    "load_public_key",
    "officer_key_of",
    "sign_approval",
    "write_signed_approval",
]

_PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class KeyPairFiles:
    """Where a key pair was written, and the key id approvals will name."""

    private_key: Path
    public_key: Path
    key_id: str


def officer_key_of(private_key: Ed25519PrivateKey) -> OfficerKey:
    """The public half of an officer's key, as nodes hold it."""
    return OfficerKey.from_public_key(private_key.public_key())


def _public_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key_pair(out_dir: Path, name: str = "officer") -> KeyPairFiles:
    """Creates a key pair: `<name>.key` (PEM PKCS8, mode 0600) and `<name>.pub` (PEM).

    Args:
        out_dir: The folder to write to (created if missing).
        name: The files' base name.

    Returns:
        The two paths and the key id.

    Raises:
        ConfigError: Either file exists already (an existing key is never overwritten:
            nodes trust it, and approvals signed with it would stop verifying), or the
            folder cannot be written.
    """
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(
                f"{path} exists already; an officer key is never overwritten",
                "keep using that key, or move it away first if you really mean to replace "
                "it (every node must then get the new officer.pub, and approvals be re-signed)",
            )
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a key appearing since the check above is not overwritten either.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.chmod(private_path, _PRIVATE_MODE)  # the umask may have narrowed, never widened
        _write_atomically(public_path, _public_pem(private_key))
    except FileExistsError:
        raise ConfigError(
            f"{private_path} exists already; an officer key is never overwritten",
            "keep using that key, or move it away first",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot write the officer key to {out_dir}: {exc.strerror or exc}",
            "pick a folder you can write to (--out)",
        ) from None
    return KeyPairFiles(private_path, public_path, officer_key_of(private_key).key_id)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Reads an officer's private key (PEM PKCS8, unencrypted).

    Raises:
        ConfigError: The file cannot be read or holds no ed25519 private key.
    """
    hint = "pass the officer.key written by `silobridge officer keygen`"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read officer key {path}: {exc.strerror or exc}", hint) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"officer key {path} is encrypted", hint) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path} is not a PEM private key", hint) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, not an ed25519 key", hint)
    return key


def load_public_key(path: Path) -> OfficerKey:
    """Reads an officer's public key (PEM SubjectPublicKeyInfo, as `officer.pub`).

    Raises:
        ConfigError: The file cannot be read or holds no ed25519 public key.
    """
    hint = "pass the officer.pub written by `silobridge officer keygen`"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror or exc}", hint) from None
    try:
        return OfficerKey.from_pem(data)
    except ValueError as exc:
        raise ConfigError(f"{path} {exc}", hint) from None


def sign_approval(
    private_key: Ed25519PrivateKey,
    *,
    department: str,
    dataset: str,
    spec: RiskJobSpec,
    app_hash: str,
    max_epsilon: float,
    issued_at: datetime,
    expires_at: datetime,
    columns: Iterable[str] | None = None,
) -> SignedApproval:
    """Builds an approval of exactly `spec`, run by app `app_hash`, and signs it.

    Args:
        private_key: The officer's key; the approval names its key id.
        department: The department, as its node config names it.
        dataset: The dataset, as the node config names it.
        spec: The job spec approved: its fingerprint, name, purpose and analyst are bound.
        app_hash: The app bundle's SHA-256 (`silobridge app hash`).
        max_epsilon: The total epsilon every job using the approval may spend together.
        issued_at: Valid from (UTC).
        expires_at: Valid until (UTC, exclusive).
        columns: The columns approved; every column of the spec by default.

    Raises:
        ConfigError: A field is invalid (see `vocab.approval.Approval`).
    """
    approval = Approval(
        department=department,
        dataset=dataset,
        job=spec.name,
        purpose=spec.purpose,
        columns=frozenset(spec.columns if columns is None else columns),
        max_epsilon=max_epsilon,
        issued_at=issued_at,
        expires_at=expires_at,
        key_id=key_id_of(private_key.public_key().public_bytes_raw()),
        analyst=spec.analyst,
        spec_fingerprint=spec_fingerprint(spec),
        app_hash=app_hash,
    )
    return SignedApproval(approval, private_key.sign(approval.canonical_bytes()))


def _write_atomically(path: Path, data: bytes) -> None:
    # A node reads the approvals folder for every job: it must never see half a file.
    # The temporary name does not end in `.json`, so the node never picks it up.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_signed_approval(signed: SignedApproval, path: Path) -> None:
    """Writes an approval file, replacing any earlier one at `path` in one step.

    Raises:
        ConfigError: The file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, serialize_signed_approval(signed).encode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot write approval {path}: {exc.strerror or exc}",
            "pick a path you can write to (--out)",
        ) from None
