"""An append-only audit log file (node or coordinator): one signed, hash-chained JSON line
per event."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from vocab.audit_chain import AuditEntry, SignedHead, make_entry
from vocab.errors import DataError
from vocab.identity_key import IdentityKey

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
            # Absent in logs of versions that did not sign: read, then reported unsigned.
            sig=str(raw.get("sig", "")), key=str(raw.get("key", "")),
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


_TAIL_CHUNK = 8192


def _last_line(fh: BinaryIO) -> bytes | None:
    """The file's last non-blank line, read backwards from the end in chunks.

    Each reply stamps the log's head and each event appends after it, so reading the whole
    log every time would make a node slower the longer it has run.
    """
    end = fh.seek(0, os.SEEK_END)
    buffer = b""
    position = end
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        fh.seek(position)
        buffer = fh.read(step) + buffer
        lines = [line for line in buffer.splitlines() if line.strip()]
        # The first line in the buffer may be cut; any line after it is whole.
        if len(lines) >= 2 or (lines and position == 0):
            return lines[-1]
    return None


class AuditLog:
    """Appends events signed with the writer's identity key, under an exclusive file lock,
    so concurrent writers chain safely.

    Several ClientApp processes of one node (or ServerApps of one coordinator) may append
    at once; the lock makes each read-tail-then-append atomic, and fsync makes an entry
    durable before the caller releases anything that depends on it.
    """

    def __init__(self, path: Path, key: IdentityKey) -> None:
        self.path = path
        self._key = key

    def _continues(self, tail: AuditEntry) -> SignedHead:
        """The head to chain after; refuses a log this key could never verify as one chain.

        Raises:
            DataError: The last entry is unsigned (an older silobridge wrote the log) or was
                signed by another key (the identity key file was replaced).
        """
        if not tail.sig:
            raise DataError(
                f"audit log {self.path} ends with an unsigned entry (entry {tail.seq}): it was "
                "written by a silobridge version that did not sign its audit log",
                "move the old log aside (keep it with its last verified head); a new, signed "
                "log starts on the next event",
            )
        own = self._key.public.key_id
        if tail.key != own:
            raise DataError(
                f"audit log {self.path} was signed by key {tail.key}, but this side's identity "
                f"key is {own}: the key file was replaced",
                "restore the original identity key file, or move the old log aside (keep it "
                "with the old public key) so the new key starts a new log",
            )
        return tail.head

    def append(self, kind: str, data: dict[str, Any]) -> AuditEntry:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Binary, so a damaged byte in an old line cannot stop new events being recorded.
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                last = _last_line(fh)
                head = None
                if last is not None:
                    head = self._continues(_parse(_decode(last), 0, self.path))
                ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                entry = make_entry(head, ts, kind, data, self._key)
                fh.write((entry.to_json() + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def head(self) -> SignedHead | None:
        """The last entry's (seq, hash, signature), or None for an empty or absent log."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # never between a writer's bytes
            try:
                last = _last_line(fh)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        if last is None:
            return None
        return _parse(_decode(last), 0, self.path).head
