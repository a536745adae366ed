"""Which department each node identity key speaks for: the coordinator's enrolment record.

`silobridge node register` writes `<home>/nodes/<department>.pub` (the node's ed25519
identity key, PEM). The ServerApp believes a reply's department only when the reply is
signed by the key registered for that department: a reply's own claim counts for nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vocab.errors import ConfigError
from vocab.identity_key import PublicIdentity, public_identity_from_pem

__all__ = ["NODES_DIR", "NodeRegistry"]

NODES_DIR = "nodes"
_DEPARTMENT_RE = re.compile(r"[a-z0-9_-]{1,40}")


@dataclass(frozen=True)
class NodeRegistry:
    """The folder of registered node identity keys, one file per department."""

    folder: Path

    def _path(self, department: str) -> Path:
        if not _DEPARTMENT_RE.fullmatch(department):
            raise ConfigError(
                f"department {department!r} is not a valid name",
                "use 1-40 characters from a-z, 0-9, '_' and '-', as in the node config",
            )
        return self.folder / f"{department}.pub"

    def register(self, department: str, pem: bytes, *, replace: bool = False) -> PublicIdentity:
        """Records `pem` as `department`'s node key.

        Raises:
            ConfigError: The key is not an ed25519 public key, or the department already
                has a different key and `replace` is not set.
        """
        try:
            identity = public_identity_from_pem(pem)
        except ValueError as err:
            raise ConfigError(
                f"the key given for {department} is not a PEM ed25519 public key ({err})",
                "pass the file `silobridge node key --config NODE.toml` prints",
            ) from None
        path = self._path(department)
        for other in self.departments():
            known = self.identity_of(other) if other != department else None
            if known is not None and known.raw == identity.raw:
                # One key sealing for two departments would give one node two voices.
                raise ConfigError(
                    f"key {identity.key_id} is already registered for {other}",
                    "each department's node has its own identity key: register the key "
                    "`silobridge node key --config NODE.toml` prints on that node",
                )
        current = self.identity_of(department)
        if current is not None and current.raw != identity.raw and not replace:
            raise ConfigError(
                f"{department} already has node key {current.key_id} registered",
                "pass --replace to enrol a new key for it (the old key stops being believed)",
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=path.name, suffix=".tmp")
        try:
            os.write(fd, identity.pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(name, path)
        return identity

    def identity_of(self, department: str) -> PublicIdentity | None:
        """The key registered for `department`, or None."""
        path = self._path(department)
        if not path.is_file():
            return None
        try:
            return public_identity_from_pem(path.read_bytes())
        except ValueError as err:
            raise ConfigError(
                f"registered node key {path} is damaged ({err})",
                "register the department again with `silobridge node register --replace`",
            ) from None

    def departments(self) -> list[str]:
        """Every registered department, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.pub"))
