"""Progress events the ServerApp prints and the analyst CLI renders (one JSON line each).

The ServerApp's stdout reaches the analyst through `flwr run --stream`, on this host or
another, so progress rides on tagged log lines rather than a side channel.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EVENT_PREFIX", "decode_event", "encode_event"]

EVENT_PREFIX = "@@silobridge "


def encode_event(kind: str, **fields: Any) -> str:
    return EVENT_PREFIX + json.dumps({"event": kind, **fields}, sort_keys=True, default=str)


def decode_event(line: str) -> dict[str, Any] | None:
    """The event in a log line, or None if the line is not one of ours."""
    idx = line.find(EVENT_PREFIX)
    if idx < 0:
        return None
    try:
        data = json.loads(line[idx + len(EVENT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "event" in data else None
