"""Secure draws for a round's steps, made many steps at a time.

`SecureRng` costs as much per call as per value at the sizes of a step (a mask over a few
thousand slots, noise for a few thousand weights): one call for many steps makes the
randomness a small share of a step. The draws do not depend on the data, so drawing them
early changes nothing about what they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DrawsAhead"]

_VALUES_AHEAD = 1 << 20  # at most ~8 MB of float64 drawn ahead


class DrawsAhead:
    """Successive draws of `width` values from `draw(n)`, up to `steps` of them per call.

    Args:
        draw: Returns `n` independent values.
        width: Values per step.
        steps: The steps planned; fewer are drawn at once when they would not fit in
            about a million values, more are drawn if asked for.
    """

    def __init__(self, draw: Callable[[int], npt.NDArray[Any]], width: int, steps: int) -> None:
        self._draw, self._width = draw, width
        self._ahead = max(1, min(steps, _VALUES_AHEAD // max(width, 1)))
        self._rows: npt.NDArray[Any] = np.empty((0, width))
        self._next = 0

    def next(self) -> npt.NDArray[Any]:
        """The next step's `width` values."""
        if self._next == len(self._rows):
            self._rows = self._draw(self._ahead * self._width).reshape(self._ahead, self._width)
            self._next = 0
        row: npt.NDArray[Any] = self._rows[self._next]
        self._next += 1
        return row
