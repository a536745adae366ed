"""The wire record of a statistics job: the noisy components one node releases.

A reply comes from a node the coordinator does not control, so `NodeStatistics.from_json`
accepts exactly the layout the job's plan implies - every component once, by name, with
`cells * size` finite values and a positive finite noise std; with a privately chosen
grouping, at most `max_partitions` cells, each named by a unique key of one label per
grouping (declared labels where the grouping declares them, text of at most
`MAX_LABEL_CHARS` characters where it does not) - and raises `ValueError` on anything
else, before any of it is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vocab.jobs.statistics import MAX_LABEL_CHARS, StatisticsSpec
from vocab.jobs.statistics_plan import PartitionSelection, StatisticsPlan, plan_statistics

__all__ = ["MAX_MAGNITUDE", "ComponentRelease", "NodeStatistics"]

MAX_MAGNITUDE = 1e100
"""Largest magnitude of a released value or std the coordinator accepts: far above any
honest figure, and low enough that squares and products of them stay finite."""

_CHARS_PER_VALUE = 32
"""Room per value when bounding a reply's length: a float's repr, a comma and a space."""

_CHARS_OVERHEAD = 4096

_CHARS_PER_LABEL = 12 * MAX_LABEL_CHARS + 4
"""Room per label: JSON escapes a character outside the BMP as two \\uXXXX escapes."""


def _check_number(value: object, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} is not a number: {type(value).__name__}")
    # Compared before converting: a huge JSON integer would overflow float().
    if not abs(value) <= MAX_MAGNITUDE:  # False for NaN and infinities too
        raise ValueError(f"{where} is not finite or out of range")
    number = float(value)
    if positive and not number > 0.0:
        raise ValueError(f"{where} must be positive")
    return number


@dataclass(frozen=True)
class ComponentRelease:
    """One component's noisy values (`cells * size`, cell-major) and its noise std."""

    name: str
    values: tuple[float, ...]
    noise_std: float


@dataclass(frozen=True)
class NodeStatistics:
    """Everything one node releases for a statistics job.

    Attributes:
        components: Every component's noisy values over the released cells.
        cells: How many cells the values span.
        keys: With a privately chosen grouping, each released cell's labels (one per
            grouping), in the values' order; () for a declared layout, whose cells are
            `spec.cell_keys`.
    """

    components: tuple[ComponentRelease, ...]
    cells: int
    keys: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> str:
        """Compact JSON; `from_json` reads it back. `keys` is left out when empty, so a
        declared layout's release reads as it always has."""
        doc: dict[str, Any] = {
            "cells": self.cells,
            "components": [
                {"name": c.name, "values": list(c.values), "noise_std": c.noise_std}
                for c in self.components
            ],
        }
        if self.keys:
            doc["keys"] = [list(k) for k in self.keys]
        return json.dumps(doc, allow_nan=False, separators=(",", ":"))

    def by_name(self) -> dict[str, ComponentRelease]:
        """The components keyed by name."""
        return {c.name: c for c in self.components}

    def check_layout(self, plan: StatisticsPlan) -> None:
        """Raises ValueError unless this release has exactly `plan`'s layout.

        Every component of the plan once (in any order) and nothing else; `cells * size`
        finite values each; a positive finite std. A declared layout has exactly the plan's
        cells and no keys; a private one at most `max_partitions` cells, one valid key each.
        """
        if plan.selection is None:
            if self.cells != plan.cells:
                raise ValueError(f"release spans {self.cells!r} cells, the job has {plan.cells}")
            if self.keys:
                raise ValueError("release names its cells, but the job declares them")
        else:
            _check_keys(self.keys, self.cells, plan.selection)
        expected = {c.name: c.size * self.cells for c in plan.components}
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError("release lists a component twice")
        if set(names) != set(expected):
            unknown = sorted(n[:64] for n in set(names) - set(expected))
            missing = sorted(set(expected) - set(names))
            raise ValueError(f"release components differ: unknown {unknown}, missing {missing}")
        for c in self.components:
            if len(c.values) != expected[c.name]:
                raise ValueError(
                    f"component {c.name} has {len(c.values)} values, expected {expected[c.name]}"
                )
            for value in c.values:
                _check_number(value, f"a value of {c.name}")
            _check_number(c.noise_std, f"noise_std of {c.name}", positive=True)

    @classmethod
    def from_json(cls, text: str, plan_or_spec: StatisticsPlan | StatisticsSpec) -> NodeStatistics:
        """Parse and check a node's release against the job's layout.

        Args:
            text: The JSON a node sent.
            plan_or_spec: The job's plan, or its spec (the layout does not depend on a
                node's contribution bound, so any plan of the spec has it).

        Raises:
            ValueError: The text is not JSON of exactly the expected layout: unknown,
                missing or repeated components, wrong lengths, values that are not finite
                numbers (NaN and infinities included), a std that is not positive and
                finite, or a text longer than such a release can be.
        """
        plan = (
            plan_or_spec
            if isinstance(plan_or_spec, StatisticsPlan)
            else plan_statistics(plan_or_spec, 1)
        )
        if not isinstance(text, str):
            raise ValueError(f"release is not text: {type(text).__name__}")
        values = plan.cells * sum(c.size for c in plan.components)
        limit = _CHARS_OVERHEAD + _CHARS_PER_VALUE * values + 256 * len(plan.components)
        if plan.selection is not None:
            limit += plan.cells * len(plan.selection.labels) * _CHARS_PER_LABEL
        if len(text) > limit:
            raise ValueError(f"release of {len(text)} characters is longer than {limit}")
        try:
            doc = json.loads(text, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"release is not valid JSON: {err}") from None
        # `keys` is absent from a declared layout's release and from an empty private one.
        doc = _object(doc, {"cells", "components", "keys"}, optional=frozenset({"keys"}))
        cells = _integer(doc["cells"])
        keys = _keys(doc.get("keys", []))
        raw_components = _list(doc["components"], "components")
        if len(raw_components) != len(plan.components):
            raise ValueError(
                f"release has {len(raw_components)} components, expected {len(plan.components)}"
            )
        release = cls(tuple(_component(raw) for raw in raw_components), cells, keys)
        release.check_layout(plan)
        return release


def _check_keys(
    keys: tuple[tuple[str, ...], ...], cells: int, selection: PartitionSelection
) -> None:
    """Raises ValueError unless `keys` names `cells` distinct partitions the job allows."""
    if not 0 <= cells <= selection.max_partitions:
        raise ValueError(
            f"release spans {cells!r} partitions, the job allows 0 to {selection.max_partitions}"
        )
    if len(keys) != cells:
        raise ValueError(f"release names {len(keys)} partitions for {cells} cells")
    arity = len(selection.labels)
    declared = [None if labels is None else set(labels) for labels in selection.labels]
    for key in keys:
        if not isinstance(key, tuple) or len(key) != arity:
            raise ValueError(f"a partition key does not have one label per grouping ({arity})")
        for label, allowed in zip(key, declared, strict=True):
            if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
                raise ValueError(
                    f"a partition label is not text of at most {MAX_LABEL_CHARS} characters"
                )
            if allowed is not None and label not in allowed:
                raise ValueError(
                    f"partition label {label[:MAX_LABEL_CHARS]!r} is not a declared key"
                )
    if len(set(keys)) != len(keys):
        raise ValueError("release names a partition twice")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"release holds {name}, not a finite number")


def _object(raw: Any, keys: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(raw, dict) or not keys - optional <= set(raw) <= keys:
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"expected an object with keys {sorted(keys)}, got {got}")
    return raw


def _keys(raw: Any) -> tuple[tuple[str, ...], ...]:
    keys = []
    for key in _list(raw, "keys"):
        if not isinstance(key, list) or not all(isinstance(label, str) for label in key):
            raise ValueError("a partition key is not a list of labels")
        keys.append(tuple(key))
    return tuple(keys)


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueError(f"`{where}` is not a list")
    return raw


def _integer(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"`cells` is not an integer: {raw!r}")
    return raw


def _component(raw: Any) -> ComponentRelease:
    doc = _object(raw, {"name", "values", "noise_std"})
    name = doc["name"]
    if not isinstance(name, str):
        raise ValueError("a component's name is not a string")
    values = tuple(_check_number(v, f"a value of {name}") for v in _list(doc["values"], name))
    return ComponentRelease(name, values, _check_number(doc["noise_std"], f"noise_std of {name}"))
