"""The wire record of a linear regression's node release: its noisy sufficient statistics."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LinearRelease"]

_KEYS = frozenset({"xtx_upper", "xty", "yty", "noise_std"})
_MAX_CHARS_PER_NUMBER = 40
"""A JSON float takes at most ~25 characters; more text than this per entry is refused unread."""


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number!r}")
    return number


def _vector(value: Any, length: int, what: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != length:
        raise ValueError(f"{what} must be a list of {length} numbers")
    return tuple(_finite(v, what) for v in value)


def _no_constants(name: str) -> float:
    raise ValueError(f"non-finite number {name} in a release")


@dataclass(frozen=True)
class LinearRelease:
    """One node's noisy sufficient statistics for a `dims`-column design.

    Attributes:
        xtx_upper: The upper triangle of X'X, diagonal included, row by row (the
            order of `numpy.triu_indices(dims)`); the first entry is the noisy row count.
        xty: X'y.
        yty: y'y.
        noise_std: The std of the Gaussian noise the node added to every entry.
    """

    xtx_upper: tuple[float, ...]
    xty: tuple[float, ...]
    yty: float
    noise_std: float

    def __post_init__(self) -> None:
        dims = len(self.xty)
        if dims < 1:
            raise ValueError("a release needs at least one design column")
        object.__setattr__(self, "xty", _vector(self.xty, dims, "xty"))
        object.__setattr__(
            self, "xtx_upper", _vector(self.xtx_upper, dims * (dims + 1) // 2, "xtx_upper")
        )
        object.__setattr__(self, "yty", _finite(self.yty, "yty"))
        std = _finite(self.noise_std, "noise_std")
        if std <= 0:
            raise ValueError(f"noise_std must be positive, got {std!r}")
        object.__setattr__(self, "noise_std", std)

    @property
    def dims(self) -> int:
        """Design columns, intercept included."""
        return len(self.xty)

    def xtx(self) -> npt.NDArray[np.float64]:
        """The symmetric X'X rebuilt from the noisy upper triangle (noise mirrored)."""
        matrix = np.zeros((self.dims, self.dims))
        rows, cols = np.triu_indices(self.dims)
        matrix[rows, cols] = self.xtx_upper
        matrix[cols, rows] = self.xtx_upper
        return matrix

    def to_json(self) -> str:
        """The release as compact JSON."""
        return json.dumps(
            {
                "xtx_upper": list(self.xtx_upper),
                "xty": list(self.xty),
                "yty": self.yty,
                "noise_std": self.noise_std,
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes, dims: int) -> LinearRelease:
        """Parse a node's release for a `dims`-column design, trusting nothing in it.

        Raises:
            ValueError: The text is not a release of exactly that shape with finite
                numbers and a positive noise std.
        """
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        if not isinstance(text, str | bytes):
            raise ValueError(f"a release is text, got {type(text).__name__}")
        entries = dims * (dims + 1) // 2 + dims + 2
        if len(text) > _MAX_CHARS_PER_NUMBER * entries + 100:
            raise ValueError(f"a release for {dims} columns is never {len(text)} characters")
        try:
            doc = json.loads(text, parse_constant=_no_constants)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"a release is not valid JSON: {err}") from None
        if not isinstance(doc, dict) or set(doc) != _KEYS:
            raise ValueError(f"a release is an object with exactly the keys {sorted(_KEYS)}")
        if not isinstance(doc["xty"], list) or len(doc["xty"]) != dims:
            raise ValueError(f"xty must be a list of {dims} numbers")
        return cls(
            xtx_upper=_vector(doc["xtx_upper"], dims * (dims + 1) // 2, "xtx_upper"),
            xty=_vector(doc["xty"], dims, "xty"),
            yty=_finite(doc["yty"], "yty"),
            noise_std=_finite(doc["noise_std"], "noise_std"),
        )
