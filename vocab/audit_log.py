"""An append-only audit log file (node or coordinator): one hash-chained JSON line per event."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from vocab.audit_chain import AuditEntry, ChainHead, make_entry
from vocab.errors import DataError

__all__ = ["AuditLog", "read_entries"]


def _parse(line: str, number: int, path: Path) -> AuditEntry:
    try:
        raw = json.loads(line)
        return AuditEntry(
            seq=int(raw["seq"]), ts=str(raw["ts"]), kind=str(raw["kind"]),
            data=dict(raw["data"]), prev=str(raw["prev"]), hash=str(raw["hash"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"audit log {path}, line {number}, is not a valid entry ({err})",
            "the log was damaged or edited; keep the file for investigation",
        ) from err


def read_entries(path: Path) -> list[AuditEntry]:
    """Every entry in file order (an absent log has none)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_parse(line, n, path) for n, line in enumerate(lines, start=1) if line.strip()]


class AuditLog:
    """Appends events under an exclusive file lock, so concurrent writers chain safely.

    Several ClientApp processes of one node (or ServerApps of one coordinator) may append
    at once; the lock makes each read-tail-then-append atomic, and fsync makes an entry
    durable before the caller releases anything that depends on it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, kind: str, data: dict[str, Any]) -> AuditEntry:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                last = None
                for line in fh:
                    if line.strip():
                        last = line
                head = None
                if last is not None:
                    tail = _parse(last, 0, self.path)
                    head = ChainHead(tail.seq, tail.hash)
                ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                entry = make_entry(head, ts, kind, data)
                fh.write(entry.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def head(self) -> ChainHead | None:
        entries = read_entries(self.path)
        return ChainHead(entries[-1].seq, entries[-1].hash) if entries else None
