"""A result bundle as named files, written atomically, and carried inside a progress event.

The job is driven on the coordinator host; the analyst may not be there. The bundle
therefore travels in the final progress event (base64, when small enough) and is written
where the analyst asked too (`job run --out DIR`, `job result JOB --out DIR`).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILE",
    "CELLS_FILE",
    "INLINE_LIMIT_BYTES",
    "RESULT_FILE",
    "TORCH_FILE",
    "WEIGHTS_FILE",
    "files_from_event",
    "files_to_event",
    "write_files",
]

RESULT_FILE = "result.json"
CARD_FILE = "MODEL_CARD.md"
WEIGHTS_FILE = "model.npz"
TORCH_FILE = "model.pt"
CELLS_FILE = "cells.csv"
_ALLOWED = frozenset({RESULT_FILE, CARD_FILE, WEIGHTS_FILE, TORCH_FILE, CELLS_FILE})

# Larger bundles stay on the coordinator host only (the event says where).
INLINE_LIMIT_BYTES = 4 * 1024 * 1024


def write_files(out_dir: Path, files: dict[str, bytes]) -> Path:
    """Write each file atomically into `out_dir` (created if needed); returns result.json.

    The folder then holds this bundle only: a bundle file an earlier job left there and
    this one lacks (the model of a run that succeeded, under a run that failed) is removed,
    so no stale model sits beside a failed job's result. Other files are left alone.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _ALLOWED - files.keys():
        (out_dir / name).unlink(missing_ok=True)
    # result.json last: its presence means the bundle is complete.
    for name in sorted(files, key=lambda n: n == RESULT_FILE):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(files[name])
        os.replace(tmp, out_dir / name)
    return out_dir / RESULT_FILE


def files_to_event(files: dict[str, bytes]) -> dict[str, str] | None:
    """Base64 text of each file, or None if the bundle is too large to inline."""
    if sum(len(v) for v in files.values()) > INLINE_LIMIT_BYTES:
        return None
    return {name: base64.b64encode(data).decode() for name, data in files.items()}


def files_from_event(encoded: Any) -> dict[str, bytes]:
    """Inverse of `files_to_event`; only known bundle file names are accepted."""
    if not isinstance(encoded, dict):
        return {}
    files: dict[str, bytes] = {}
    for name, text in encoded.items():
        if name not in _ALLOWED or not isinstance(text, str):
            continue  # never write a path the coordinator chose freely
        try:
            files[name] = base64.b64decode(text, validate=True)
        except binascii.Error:
            continue
    return files
