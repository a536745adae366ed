"""The officer's side of app approvals: sign one bundle hash, write it where the node reads it."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.runtime.app_gate import APPS_FOLDER
from silobridge.app_bundle import bundle_of
from vocab.app_approval import AppApproval, SignedAppApproval, serialize_app_approval
from vocab.approval import key_id_of
from vocab.errors import ConfigError

__all__ = [
    "approve_release",
    "chosen_hash",
    "release_hash",
    "sign_app_approval",
    "write_app_approval",
]


def sign_app_approval(
    private_key: Ed25519PrivateKey,
    app_hash: str,
    department: str,
    label: str = "",
    now: datetime | None = None,
) -> SignedAppApproval:
    """The officer's signed approval of bundle `app_hash` at `department`'s node.

    Raises:
        ConfigError: The hash, department or label is invalid.
    """
    key_id = key_id_of(private_key.public_key().public_bytes_raw())
    approval = AppApproval.issued(app_hash, department, key_id, label, now or datetime.now(UTC))
    return SignedAppApproval(approval, private_key.sign(approval.canonical_bytes()))


def write_app_approval(signed: SignedAppApproval, folder: Path) -> Path:
    """Writes `folder/<first 16 hex of the hash>.json` atomically; returns its path.

    The node reads the folder for every run: it must never see half a file, and the
    temporary name does not end in `.json`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{signed.approval.app_hash[:16]}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(serialize_app_approval(signed), encoding="utf-8")
    os.replace(tmp, path)
    return path


def chosen_hash(app_hash: str | None, checkout: Path | None, example: str) -> str:
    """The bundle hash a command was given: APP_HASH as typed (stripped, lowercased; the
    caller checks its form) or the hash of `--checkout`'s bundle.

    Raises:
        ConfigError: Both or neither were given; `example` shows a right call.
    """
    if (app_hash is None) == (checkout is None):
        raise ConfigError("give exactly one of APP_HASH and --checkout", example)
    if checkout is not None:
        return release_hash(checkout.resolve())
    return str(app_hash).strip().lower()


@functools.cache
def release_hash(checkout: Path) -> str:
    """The bundle hash of `checkout` (built once per process: a build takes seconds)."""
    return bundle_of(checkout).sha256


def approve_release(
    private_key: Ed25519PrivateKey, department: str, approvals_dir: Path, checkout: Path
) -> Path:
    """Signs and writes the approval of `checkout`'s bundle, as an officer who reviewed it
    would with `silobridge officer approve-app --checkout`; used by the demo and tests."""
    signed = sign_app_approval(private_key, release_hash(checkout.resolve()), department)
    return write_app_approval(signed, approvals_dir / APPS_FOLDER)
