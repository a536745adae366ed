"""A party's own ed25519 identity key: created once, kept beside its state, never sent.

A node signs its audit checkpoints and its replies with it, the coordinator its audit
checkpoints; the other side checks with the public key it registered (`key_id` names it).
The private key file is made atomically with mode 0600 on first use and never overwritten:
a new key would orphan every signature made with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "IdentityKey",
    "PublicIdentity",
    "load_or_create_identity",
    "public_identity_from_pem",
]

_KEY_ID_HEX = 16


def _key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX]


@dataclass(frozen=True)
class PublicIdentity:
    """The public half: what another party registers and verifies against."""

    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return _key_id(self.raw)

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifies(self, signature_b64: str, data: bytes) -> bool:
        """True when `signature_b64` is this key's ed25519 signature over `data`."""
        try:
            self.key.verify(base64.b64decode(signature_b64, validate=True), data)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class IdentityKey:
    """The private half, held by its owner only."""

    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(self.key.public_key())

    def sign(self, data: bytes) -> str:
        """The base64 ed25519 signature over `data`."""
        return base64.b64encode(self.key.sign(data)).decode("ascii")


def public_identity_from_pem(data: bytes) -> PublicIdentity:
    """A PEM (SubjectPublicKeyInfo) ed25519 public key.

    Raises:
        ValueError: The bytes are not a PEM ed25519 public key.
    """
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an ed25519 public key")
    return PublicIdentity(key)


def load_or_create_identity(path: Path) -> IdentityKey:
    """The identity key in `path` (unencrypted PKCS#8 PEM), created on first use.

    Raises:
        OSError: The file cannot be read or made.
        ValueError: The file exists but is not an ed25519 private key.
    """
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        tmp = Path(name)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # another process made it first: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an ed25519 private key")
    return IdentityKey(key)
