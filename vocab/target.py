"""Which target values count as the positive class: one value, a list of values, or a
comparison with a number.

A spec writes `positive = "bad"` (one value), `positive = ["1", "2"]` (any of these) or
`positive = "> 0"` (a comparison: `>`, `>=`, `<`, `<=`, `==`, `!=` and a number). It travels
to the nodes as one canonical text (`TargetCondition.canonical`) in the spec's `positive`
field, so every node decides the class by the same rule. Values match as trimmed,
case-insensitive text; a comparison reads the column as numbers, and a value that is not
a number is not positive.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vocab.errors import JobSpecError

if TYPE_CHECKING:  # only `matches`, at the node, needs them: spec parsing stays light
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["TargetCondition", "canonical_positive"]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
    ">": operator.gt, "<": operator.lt,
}  # fmt: skip
_COMPARISON = re.compile(r"^\s*(>=|<=|!=|==|>|<)\s*(.*?)\s*$")
_LIST_PREFIX = "in "
_MAX_VALUES = 1000
_HINT = 'e.g. positive = "bad", positive = ["1", "2"] or positive = "> 0"'


@dataclass(frozen=True)
class TargetCondition:
    """`values` (any of them, as text) or, when `op` is set, `op` against `threshold`."""

    values: tuple[str, ...] = ()
    op: str = ""
    threshold: float = 0.0

    @classmethod
    def parse(cls, text: str) -> TargetCondition:
        """The condition a canonical `positive` text names.

        Raises:
            JobSpecError: naming the problem and the fix.
        """
        if text.startswith(_LIST_PREFIX + "["):
            try:
                values = json.loads(text[len(_LIST_PREFIX) :])
            except json.JSONDecodeError:
                values = None
            return cls.of_values(values)
        match = _COMPARISON.match(text)
        if match is None:
            if not text.strip():
                raise JobSpecError("job `positive` is empty", _HINT)
            return cls(values=(text.strip(),))
        op, number = match.groups()
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise JobSpecError(
                f"job `positive` = {text!r} compares with {number!r}, which is not a number",
                f'write a number after {op}, e.g. positive = "{op} 0"; to match text that '
                f'starts with {op}, list it: positive = ["{text.strip()}"]',
            )
        return cls(op=op, threshold=threshold)

    @classmethod
    def of_values(cls, raw: Any) -> TargetCondition:
        """Any of a list of values.

        Raises:
            JobSpecError: unless `raw` is 1 to 1000 non-empty strings.
        """
        if (
            not isinstance(raw, list)
            or not 0 < len(raw) <= _MAX_VALUES
            or not all(isinstance(v, str) and v.strip() for v in raw)
        ):
            raise JobSpecError(
                f"job `positive` as a list must hold 1 to {_MAX_VALUES} non-empty strings, "
                f"got {raw!r}",
                'quote numeric levels, e.g. positive = ["1", "2"]',
            )
        return cls(values=tuple(dict.fromkeys(v.strip() for v in raw)))

    @property
    def canonical(self) -> str:
        """The text that travels in the spec (`parse` reads it back)."""
        if self.op:
            return f"{self.op} {self.threshold:g}"
        if len(self.values) == 1 and not _COMPARISON.match(self.values[0]):
            return self.values[0]
        return _LIST_PREFIX + json.dumps(list(self.values))

    def describe(self, target: str) -> str:
        """The rule in words, for the model card."""
        if self.op:
            return f"{target} {self.op} {self.threshold:g}"
        return f"{target} is " + " or ".join(repr(v) for v in self.values)

    def matches(self, column: pd.Series) -> npt.NDArray[np.bool_]:
        """Which rows are positive."""
        import numpy as np
        import pandas as pd

        if self.op:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                hit = _OPERATORS[self.op](numbers, self.threshold)
            return np.asarray(hit & ~np.isnan(numbers), dtype=bool)
        text = column.astype("string").str.strip().str.lower()
        wanted = [v.lower() for v in self.values]
        return np.asarray(text.isin(wanted).fillna(False), dtype=bool)


def canonical_positive(raw: Any) -> str:
    """A spec's `positive` (a string or a list of strings) as its canonical text.

    Raises:
        JobSpecError: naming the problem and the fix.
    """
    if isinstance(raw, list):
        return TargetCondition.of_values(raw).canonical
    if not isinstance(raw, str):
        raise JobSpecError(f"job `positive` must be text or a list of texts, got {raw!r}", _HINT)
    return TargetCondition.parse(raw).canonical
