"""Signed app approvals: the officer's statement that one app bundle may run at a node.

Pure: no cryptography here. `silobridge officer approve-app` signs `AppApproval.
canonical_bytes()` with the officer's ed25519 key; the node's launcher
(`clients/runtime/app_gate.py`) verifies it before any code of a run is imported.

File format (one per `*.json` file in the node's `<approvals>/apps/` folder)::

    {
      "format": "silobridge.app-approval/v1",
      "app": {
        "app_hash": "<64 hex: SHA-256 of the bundle, as `silobridge app hash` prints>",
        "department": "northeast",
        "issued_at": "2026-11-30T09:30:00Z",
        "key_id": "3f2a9c0d5e6b7a81",
        "label": "silobridge 0.8.0"
      },
      "signature": "<base64 of the 64-byte ed25519 signature>"
    }

The signed bytes are `format` plus the `app` object as compact JSON with sorted keys, so a
column approval can never be passed off as an app approval, nor the reverse. An approval
has no expiry: the officer withdraws a version by deleting its file.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vocab.approval import format_time
from vocab.errors import ConfigError

__all__ = [
    "APP_APPROVAL_FORMAT",
    "AppApproval",
    "SignedAppApproval",
    "parse_app_approval",
    "serialize_app_approval",
]

APP_APPROVAL_FORMAT = "silobridge.app-approval/v1"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_DEPARTMENT_RE = re.compile(r"[a-z0-9_-]{1,40}")
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_MAX_LABEL = 120
_FIELDS = ("app_hash", "department", "issued_at", "key_id", "label")
_SIGNATURE_BYTES = 64
_REISSUE = "ask the officer to approve the version again with `silobridge officer approve-app`"


@dataclass(frozen=True)
class AppApproval:
    """`department`'s officer lets the bundle whose SHA-256 is `app_hash` run at its node."""

    app_hash: str
    department: str
    issued_at: str
    key_id: str
    label: str = ""

    def __post_init__(self) -> None:
        if not _HASH_RE.fullmatch(self.app_hash):
            raise ConfigError(
                f"an app hash is 64 lowercase hex characters, got {self.app_hash[:80]!r}",
                "copy it from `silobridge app hash CHECKOUT`",
            )
        if not _DEPARTMENT_RE.fullmatch(self.department):
            raise ConfigError(
                f"department {self.department[:80]!r} is not a valid node name",
                "use the `department` of the node config (a-z, 0-9, '_', '-')",
            )
        if not _KEY_ID_RE.fullmatch(self.key_id):
            raise ConfigError(f"key id {self.key_id[:80]!r} is not 16 hex characters", _REISSUE)
        if len(self.label) > _MAX_LABEL or not self.label.isprintable():
            raise ConfigError(
                f"the label must be printable text of at most {_MAX_LABEL} characters",
                "name the release, e.g. 'silobridge 0.8.0'",
            )
        try:
            datetime.fromisoformat(self.issued_at.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"issued_at {self.issued_at[:40]!r} is no ISO time", _REISSUE
            ) from None

    @classmethod
    def issued(
        cls, app_hash: str, department: str, key_id: str, label: str, now: datetime
    ) -> AppApproval:
        return cls(app_hash, department, format_time(now.replace(microsecond=0)), key_id, label)

    def to_json_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def canonical_bytes(self) -> bytes:
        """What the officer signs: the format and the fields, compact sorted JSON, UTF-8."""
        document = {"format": APP_APPROVAL_FORMAT, "app": self.to_json_dict()}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class SignedAppApproval:
    approval: AppApproval
    signature: bytes


def serialize_app_approval(signed: SignedAppApproval) -> str:
    document = {
        "format": APP_APPROVAL_FORMAT,
        "app": signed.approval.to_json_dict(),
        "signature": base64.b64encode(signed.signature).decode("ascii"),
    }
    return json.dumps(document, indent=2) + "\n"


def parse_app_approval(text: str, source: str) -> SignedAppApproval:
    """Reads an app approval file's text; the signature is not checked here.

    Raises:
        ConfigError: Not JSON, not an app approval, or a field missing or invalid; the
            message names `source`.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise ConfigError(f"app approval {source} is not valid JSON", _REISSUE) from None
    if not isinstance(document, dict) or document.get("format") != APP_APPROVAL_FORMAT:
        raise ConfigError(
            f"{source} is not a silobridge app approval (format {APP_APPROVAL_FORMAT})",
            "keep only files made by `silobridge officer approve-app` in the apps folder",
        )
    fields = document.get("app")
    if not isinstance(fields, dict) or sorted(fields) != sorted(_FIELDS):
        raise ConfigError(f"app approval {source} must have exactly {', '.join(_FIELDS)}", _REISSUE)
    if not all(isinstance(fields[name], str) for name in _FIELDS):
        raise ConfigError(f"app approval {source}: every field must be text", _REISSUE)
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"app approval {source}: `signature` is not base64", _REISSUE) from None
    if len(signature) != _SIGNATURE_BYTES:
        raise ConfigError(f"app approval {source}: `signature` is not 64 bytes", _REISSUE)
    try:
        approval = AppApproval(**{name: fields[name] for name in _FIELDS})
    except ConfigError as err:
        raise ConfigError(f"app approval {source}: {err.message}", err.hint) from None
    return SignedAppApproval(approval, signature)
