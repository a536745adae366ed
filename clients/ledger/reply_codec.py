"""A committed reply as bytes, so a retried round gets exactly the same answer back."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from clients.kinds.base import Weights
from vocab.errors import InternalError
from vocab.metrics import ScoreHistogram
from vocab.wire import NodeReport, histogram_from_record, histogram_to_record

__all__ = ["JobOutcome", "decode_reply", "encode_reply"]

_HEADER = "header"


@dataclass(frozen=True)
class JobOutcome:
    """The node's reply: always a report; with it what the release computed (a noisy
    held-out histogram, weights, or a kind's result as JSON text)."""

    report: NodeReport
    holdout: ScoreHistogram | None = None
    weights: Weights | None = None
    result: str = ""


def encode_reply(outcome: JobOutcome) -> bytes:
    """Packs a reply: an .npz of the weights plus a JSON header (no pickles)."""
    weights = outcome.weights or []
    header = {
        "report": outcome.report.to_record(),
        "holdout": None if outcome.holdout is None else histogram_to_record(outcome.holdout),
        "layers": len(weights),
        "has_weights": outcome.weights is not None,
        "result": outcome.result,
    }
    arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(weights)}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_reply(payload: bytes) -> JobOutcome:
    """Unpacks `encode_reply`'s bytes.

    Raises:
        InternalError: The stored bytes are not a reply this code wrote.
    """
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            header = json.loads(bytes(npz[_HEADER]).decode())
            weights = [np.asarray(npz[f"w{i}"], dtype=np.float32) for i in range(header["layers"])]
        holdout = header["holdout"]
        has_weights = header.get("has_weights", bool(weights))
        return JobOutcome(
            NodeReport.from_record(header["report"]),
            None if holdout is None else histogram_from_record(holdout),
            weights if has_weights else None,
            str(header.get("result", "")),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InternalError(f"a stored reply in the ledger cannot be read back: {err}") from err
