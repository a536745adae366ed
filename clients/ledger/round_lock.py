"""Who is answering a (dataset, job, round) right now: an exclusive lock on a small file.

The kernel drops a process's flock when the process dies, however it dies, so a lock that
can be taken proves the earlier owner is gone - without trusting pids, which other PID
namespaces and pid reuse make ambiguous. The ledger must live on a local disk of the node.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

__all__ = ["RoundLock", "RunSlots"]

_SLOT_POLL_S = 0.2


class RoundLock:
    """Non-blocking exclusive locks under `<ledger>.locks/`, one file per round."""

    def __init__(self, ledger_path: Path) -> None:
        self._folder = ledger_path.with_name(ledger_path.name + ".locks")

    def path(self, dataset: str, job_id: str, round: int) -> Path:
        key = hashlib.blake2b(f"{dataset}\0{job_id}\0{round}".encode(), digest_size=16)
        return self._folder / f"{key.hexdigest()}.lock"

    def acquire(self, dataset: str, job_id: str, round: int) -> int | None:
        """The locked file's descriptor, or None when another live process holds it.

        A second acquire in the same process also returns None: flock locks belong to open
        file descriptions, not processes.
        """
        self._folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(dataset, job_id, round), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release(self, fd: int, *, forget: Path | None = None) -> None:
        """Drops a lock; `forget` removes its file, safe only once the round is final."""
        if forget is not None:
            forget.unlink(missing_ok=True)
        os.close(fd)


class RunSlots:
    """At most `slots` job messages answered at once on a node: one flock per slot.

    A process that dies frees its slot with its lock, so a crash never wedges the node.
    """

    def __init__(self, ledger_path: Path, slots: int) -> None:
        self._folder = ledger_path.with_name(ledger_path.name + ".locks")
        self._slots = slots

    def acquire(self, wait_s: float = 0.0) -> int | None:
        """A held slot's descriptor, or None when every slot stayed taken for `wait_s`."""
        self._folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            for slot in range(self._slots):
                path = self._folder / f"run-slot-{slot}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd
            if time.monotonic() >= deadline:
                return None
            time.sleep(_SLOT_POLL_S)

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)
