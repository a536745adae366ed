"""The coordinator's own allowlist of app bundles: which ServerApp code may run on its host.

The coordinator's operator approves a release by its bundle hash (`silobridge coordinator
approve-app`; `coordinator start` approves the release it is started from). The ServerApp
launcher (`silobridge/serverapp_launcher.py`) runs a run's ServerApp, with the coordinator
home in its environment, only if the run's bundle hashes to an approved value: a modified
checkout submitted through the Control API gets no code run and no access to the caps or
the audit log. The coordinator trusts its own operator, so entries are not signed; the
nodes never rely on this list (each checks its own officer's signed approvals).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vocab.errors import ConfigError

__all__ = ["APPS_DIR", "CoordinatorApp", "approve_coordinator_app", "coordinator_apps"]

APPS_DIR = "apps"
_HASH_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CoordinatorApp:
    app_hash: str
    label: str
    approved_at: str


def approve_coordinator_app(home: Path, app_hash: str, label: str = "") -> CoordinatorApp:
    """Adds `app_hash` to the allowlist in coordinator home `home` (idempotent).

    Raises:
        ConfigError: The hash is not 64 lowercase hex characters.
    """
    if not _HASH_RE.fullmatch(app_hash):
        raise ConfigError(
            f"an app hash is 64 lowercase hex characters, got {app_hash[:80]!r}",
            "copy it from `silobridge app hash CHECKOUT`",
        )
    entry = CoordinatorApp(app_hash, label, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    folder = home / APPS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{app_hash}.json"
    if path.exists():
        return _read(path) or entry
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(entry.__dict__, indent=2) + "\n")
    os.replace(tmp, path)
    return entry


def _read(path: Path) -> CoordinatorApp | None:
    try:
        data = json.loads(path.read_text())
        entry = CoordinatorApp(str(data["app_hash"]), str(data["label"]), str(data["approved_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The file's name and its content must agree: a renamed file approves nothing.
    return entry if path.stem == entry.app_hash else None


def coordinator_apps(home: Path) -> list[CoordinatorApp]:
    """The approved bundles, oldest first; unreadable entries are left out."""
    folder = home / APPS_DIR
    found = [_read(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted((e for e in found if e is not None), key=lambda e: e.approved_at)
