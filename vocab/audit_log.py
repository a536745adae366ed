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

__all__ = ["AuditLog", "read_entries", "read_lines"]


def _no_constant(name: str) -> Any:
    # Entries are written with allow_nan=False, so NaN/Infinity mean an edited line (and
    # could not be hashed to verify it).
    raise ValueError(f"{name} is not a JSON value")


def _parse(line: str, number: int, path: Path) -> AuditEntry:
    try:
        raw = json.loads(line, parse_constant=_no_constant)
        return AuditEntry(
            seq=int(raw["seq"]), ts=str(raw["ts"]), kind=str(raw["kind"]),
            data=dict(raw["data"]), prev=str(raw["prev"]), hash=str(raw["hash"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as err:
        raise DataError(
            f"audit log {path}, line {number}, is not a valid entry ({type(err).__name__}: {err})",
            "the log was damaged or edited; keep the file for investigation",
        ) from err


def _decode(line: bytes) -> str:
    # Entries are ASCII JSON, so a byte that is not UTF-8 means damage or an edit: it becomes
    # U+FFFD, the line then fails its hash and is reported as the first bad entry, rather than
    # the whole log being unreadable.
    return line.decode("utf-8", errors="replace")


def read_lines(path: Path) -> list[str]:
    """The log's lines as text, blank lines included (an absent log has none).

    A byte that is not UTF-8 reads as U+FFFD, so a damaged line can be shown and reported.
    """
    if not path.exists():
        return []
    return [_decode(line) for line in path.read_bytes().splitlines()]


def read_entries(path: Path) -> list[AuditEntry]:
    """Every entry in file order (an absent log has none).

    Raises:
        DataError: A line is not an audit entry; the message names the line.
    """
    lines = read_lines(path)
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
        # Binary, so a damaged byte in an old line cannot stop new events being recorded.
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                last = None
                for line in fh:
                    if line.strip():
                        last = line
                head = None
                if last is not None:
                    tail = _parse(_decode(last), 0, self.path)
                    head = ChainHead(tail.seq, tail.hash)
                ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                entry = make_entry(head, ts, kind, data)
                fh.write((entry.to_json() + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def head(self) -> ChainHead | None:
        entries = read_entries(self.path)
        return ChainHead(entries[-1].seq, entries[-1].hash) if entries else None
