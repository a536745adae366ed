"""Which rows a node holds out: a keyed hash of each row's person id or content.

The key is a per-node secret (32 bytes from the OS in a file beside the ledger, created on
first use), so no one outside the node can tell which rows are held out. The hash input is
the person id when the node declares one, else the row's own values - never its position:
removing one row must not move any other row across the split, or neighbouring datasets
would differ in many training rows and DP-SGD's guarantee would not apply.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["held_out", "node_secret"]

_KEY_BYTES = 32
_HASH_BYTES = 8
_HASH_RANGE = float(2 ** (8 * _HASH_BYTES))


def _secret_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".split-key")


def node_secret(ledger_path: Path) -> bytes:
    """The node's split key, created atomically on first use (never overwritten).

    Keep it with the ledger: a new key re-draws the held-out rows.
    """
    path = _secret_path(ledger_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        tmp = Path(name)
        try:
            os.write(fd, os.urandom(_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process made the key first: keep theirs
            _fsync_folder(path.parent)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) != _KEY_BYTES:
        raise OSError(f"split key {path} is damaged ({len(key)} bytes, expected {_KEY_BYTES})")
    return key


def _fsync_folder(folder: Path) -> None:
    """Makes the new key's directory entry durable: a lost key would re-draw the split."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def held_out(
    keys: Iterable[object], secret: bytes, split_seed: int, fraction: float
) -> npt.NDArray[np.bool_]:
    """For each key, whether its row is held out: its keyed hash falls below `fraction`.

    The answer for a key depends on nothing but the key, the secret and the seed, so a row
    keeps its side across rounds, jobs and restarts, whatever other rows come or go.
    """
    salt = str(split_seed).encode()
    return np.fromiter(
        (
            int.from_bytes(
                hashlib.blake2b(
                    repr(key).encode(), key=secret, salt=salt[:16], digest_size=_HASH_BYTES
                ).digest(),
                "big",
            )
            / _HASH_RANGE
            < fraction
            for key in keys
        ),
        dtype=bool,
    )
