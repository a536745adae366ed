"""Secure draws for a round's steps, made many steps at a time.

`SecureRng` costs as much per call as per value at the sizes of a step (a mask over a few
thousand slots, noise for a few thousand weights): one call for many steps makes the
randomness a small share of a step. The draws do not depend on the data, so drawing them
early changes nothing about what they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["DrawsAhead"]

# Values drawn at once: the Gaussian draws four uniforms a value, 8 bytes each, so a call
# holds about 8 MB of keystream and a few such float64 arrays while it works.
_VALUES_AHEAD = 1 << 18
T = TypeVar("T")


class DrawsAhead(Generic[T]):
    """Each step's draw, made for up to `steps` steps per call of `draw(k)`.

    Args:
        draw: Returns `k` steps' draws.
        width: Values per step; fewer steps are drawn at once when they would not fit in
            about 260,000 values.
        steps: The steps planned; more are drawn if asked for.
    """

    def __init__(self, draw: Callable[[int], Sequence[T]], width: int, steps: int) -> None:
        self._draw = draw
        self._ahead = max(1, min(steps, _VALUES_AHEAD // max(width, 1)))
        self._drawn: Sequence[T] = ()
        self._next = 0

    def next(self) -> T:
        """The next step's draw."""
        if self._next == len(self._drawn):
            self._drawn = self._draw(self._ahead)
            self._next = 0
        drawn = self._drawn[self._next]
        self._next += 1
        return drawn
