"""A committed reply as bytes, so a retried round gets exactly the same answer back."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from vocab.errors import InternalError
from vocab.metrics import ScoreHistogram
from vocab.wire import NodeReport, histogram_from_record, histogram_to_record

__all__ = ["decode_reply", "encode_reply"]

_HEADER = "header"


def encode_reply(
    report: NodeReport, holdout: ScoreHistogram | None, weights: list[npt.NDArray[np.float32]]
) -> bytes:
    """Packs a reply: an .npz of the weights plus a JSON header (no pickles)."""
    header = {
        "report": report.to_record(),
        "holdout": None if holdout is None else histogram_to_record(holdout),
        "layers": len(weights),
    }
    arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(weights)}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_reply(
    payload: bytes,
) -> tuple[NodeReport, ScoreHistogram | None, list[npt.NDArray[np.float32]]]:
    """Unpacks `encode_reply`'s bytes.

    Raises:
        InternalError: The stored bytes are not a reply this code wrote.
    """
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            header = json.loads(bytes(npz[_HEADER]).decode())
            weights = [np.asarray(npz[f"w{i}"], dtype=np.float32) for i in range(header["layers"])]
        holdout = header["holdout"]
        return (
            NodeReport.from_record(header["report"]),
            None if holdout is None else histogram_from_record(holdout),
            weights,
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InternalError(f"a stored reply in the ledger cannot be read back: {err}") from err
