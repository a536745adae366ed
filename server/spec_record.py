"""A job spec of any kind as the JSON fields a result bundle records."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = ["spec_record"]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def spec_record(spec: Any) -> dict[str, Any]:
    """A spec of any kind as JSON-ready fields (enums as their values)."""
    init = {f.name for f in dataclasses.fields(spec) if f.init}
    data = {k: v for k, v in dataclasses.asdict(spec).items() if k in init}
    return {"kind": spec.kind, **_plain(data)}
