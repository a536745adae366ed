"""The wire record of a statistics job: the noisy components one node releases.

A reply comes from a node the coordinator does not control, so `NodeStatistics.from_json`
accepts exactly the layout the job's plan implies - every component once, by name, with
`cells * size` finite values and a positive finite noise std - and raises `ValueError` on
anything else, before any of it is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vocab.jobs.statistics import StatisticsSpec
from vocab.jobs.statistics_plan import StatisticsPlan, plan_statistics

__all__ = ["MAX_MAGNITUDE", "ComponentRelease", "NodeStatistics"]

MAX_MAGNITUDE = 1e100
"""Largest magnitude of a released value or std the coordinator accepts: far above any
honest figure, and low enough that squares and products of them stay finite."""

_CHARS_PER_VALUE = 32
"""Room per value when bounding a reply's length: a float's repr, a comma and a space."""

_CHARS_OVERHEAD = 4096


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
    """Everything one node releases for a statistics job."""

    components: tuple[ComponentRelease, ...]
    cells: int

    def to_json(self) -> str:
        """Compact JSON; `from_json` reads it back."""
        return json.dumps(
            {
                "cells": self.cells,
                "components": [
                    {"name": c.name, "values": list(c.values), "noise_std": c.noise_std}
                    for c in self.components
                ],
            },
            allow_nan=False,
            separators=(",", ":"),
        )

    def by_name(self) -> dict[str, ComponentRelease]:
        """The components keyed by name."""
        return {c.name: c for c in self.components}

    def check_layout(self, plan: StatisticsPlan) -> None:
        """Raises ValueError unless this release has exactly `plan`'s layout.

        Every component of the plan once (in any order) and nothing else; `cells * size`
        finite values each; a positive finite std.
        """
        if self.cells != plan.cells:
            raise ValueError(f"release spans {self.cells!r} cells, the job has {plan.cells}")
        expected = {c.name: c.size * plan.cells for c in plan.components}
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
        if len(text) > limit:
            raise ValueError(f"release of {len(text)} characters is longer than {limit}")
        try:
            doc = json.loads(text, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"release is not valid JSON: {err}") from None
        doc = _object(doc, {"cells", "components"})
        cells = _integer(doc["cells"])
        raw_components = _list(doc["components"], "components")
        if len(raw_components) != len(plan.components):
            raise ValueError(
                f"release has {len(raw_components)} components, expected {len(plan.components)}"
            )
        release = cls(tuple(_component(raw) for raw in raw_components), cells)
        release.check_layout(plan)
        return release


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"release holds {name}, not a finite number")


def _object(raw: Any, keys: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) != keys:
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"expected an object with keys {sorted(keys)}, got {got}")
    return raw


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
