"""TOML text for the files silobridge drafts (node configs, job specs): strings and keys
written so any name a table or a department uses reads back exactly."""

from __future__ import annotations

import json
import re

__all__ = ["toml_key", "toml_string"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def toml_key(name: str) -> str:
    """`name` as a key: bare when TOML allows it, quoted otherwise (`"age > 65"`)."""
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)
