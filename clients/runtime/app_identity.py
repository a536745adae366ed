"""Which app bundle this process runs, as the node's launcher verified it.

The launcher (`clients/runtime/app_gate.py`) checks the run's bundle against the officer's signed
allowlist before any of its code is imported, then records the verified hash in the
environment of the app process. Code that binds approvals to an app reads it here; `None`
means the process was not started by the gate (unit tests, tools), and nothing that needs
a verified app may be allowed then.
"""

from __future__ import annotations

import os
import re

__all__ = ["APP_HASH_ENV", "running_app_hash"]

APP_HASH_ENV = "SILOBRIDGE_APP_HASH"
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def running_app_hash() -> str | None:
    """The verified sha256 (hex) of the running app bundle, or None outside the gate."""
    value = os.environ.get(APP_HASH_ENV, "")
    return value if _HASH_RE.fullmatch(value) else None
