"""Privately chosen groups at the coordinator: the union of the nodes' partitions, each
summed over the nodes that released it, and hostile releases refused before use."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from server.kinds.statistics import StatisticsCoordinator
from server.kinds.statistics.combine import Cell, clamping_note, combine
from vocab.jobs.statistics import (
    MAX_LABEL_CHARS,
    Grouping,
    Measure,
    StatisticSpec,
    StatisticsSpec,
)
from vocab.jobs.statistics_plan import COUNT, StatisticsPlan, plan_statistics
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

MEAN = StatisticSpec(Measure.MEAN, "x", 0.0, 10.0)
SUM = "sum:x:0:10"


def _spec(**kwargs: Any) -> StatisticsSpec:
    fields: dict[str, Any] = {
        "statistics": (StatisticSpec(Measure.COUNT), MEAN),
        "group_by": (Grouping("job", private=True), Grouping("region", keys=("n", "s"))),
        "max_partitions": 3,
        "delta": 1e-6,
        "threshold": 5.0,
    }
    fields.update(kwargs)
    return StatisticsSpec(name="s", **fields)


def _release(
    plan: StatisticsPlan, cells: dict[tuple[str, ...], tuple[float, float]], std: float
) -> NodeStatistics:
    """A node's release: (count, centred sum) per partition."""
    keys = tuple(cells)
    return NodeStatistics(
        (
            ComponentRelease(COUNT, tuple(c for c, _ in cells.values()), std),
            ComponentRelease(SUM, tuple(s for _, s in cells.values()), std),
        ),
        len(keys),
        keys,
    )


def _cells(cells: list[Cell], statistic: str) -> dict[tuple[str, ...], Cell]:
    return {tuple(label for _, label in c.group): c for c in cells if c.statistic == statistic}


def test_cells_are_the_union_each_summed_over_the_nodes_that_released_it() -> None:
    spec = _spec()
    plan = plan_statistics(spec, 1)
    one = _release(plan, {("nurse", "n"): (100.0, 50.0), ("clerk", "s"): (40.0, -20.0)}, 1.0)
    two = _release(plan, {("nurse", "n"): (60.0, 30.0), ("baker", "n"): (3.0, 0.0)}, 2.0)
    cells = combine(spec, [one, two])
    counts = _cells(cells, "count")
    assert list(counts) == [("baker", "n"), ("clerk", "s"), ("nurse", "n")]  # key order
    nurse = counts[("nurse", "n")]
    assert nurse.value == 160.0 and nurse.std == pytest.approx(math.sqrt(5.0))
    assert counts[("clerk", "s")].value == 40.0 and counts[("clerk", "s")].std == 1.0
    baker = counts[("baker", "n")]
    assert baker.std == 2.0 and baker.suppressed  # 3 < the threshold of 5
    means = _cells(cells, "mean")
    assert means[("nurse", "n")].value == pytest.approx(5.0 + 80.0 / 160.0)
    assert means[("clerk", "s")].value == pytest.approx(4.5)
    assert cells[0].group == (("job", "baker"), ("region", "n"))


def test_no_partition_anywhere_gives_no_cells() -> None:
    spec = _spec()
    plan = plan_statistics(spec, 1)
    assert combine(spec, [_release(plan, {}, 1.0), _release(plan, {}, 1.0)]) == []


def test_the_note_states_the_bias_and_the_preview_still_works() -> None:
    note = clamping_note(_spec())
    assert "chosen privately" in note and "biased down" in note and "`job`" in note
    assert "chosen privately" not in clamping_note(
        _spec(group_by=(Grouping("region", keys=("n",)),), max_partitions=0)
    )
    preview = StatisticsCoordinator().quote_preview(_spec(), 3)
    widths = preview.half_widths or {}
    assert widths[COUNT] > 0 and widths["mean:x:0:10"] > 0


def _json(cells: int, keys: Any, counts: Any = None, sums: Any = None, **extra: Any) -> str:
    doc = {
        "cells": cells,
        "keys": keys,
        "components": [
            {
                "name": COUNT,
                "values": [10.0] * cells if counts is None else counts,
                "noise_std": 1.0,
            },
            {"name": SUM, "values": [0.0] * cells if sums is None else sums, "noise_std": 1.0},
        ],
        **extra,
    }
    return json.dumps(doc)


def test_a_valid_release_reads_back() -> None:
    release = NodeStatistics.from_json(_json(2, [["a", "n"], ["b", "s"]]), _spec())
    assert release.keys == (("a", "n"), ("b", "s")) and release.cells == 2
    empty = NodeStatistics.from_json(_json(0, [], [], []), _spec())
    assert empty.cells == 0 and empty.keys == ()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_json(4, [["a", "n"], ["b", "n"], ["c", "n"], ["d", "n"]]), "0 to 3"),  # too many
        (_json(2, [["a", "n"]]), "names 1 partitions"),
        (_json(1, [["a"]]), "one label per grouping"),
        (_json(1, [["a", "n", "x"]]), "one label per grouping"),
        (_json(1, [["a", "w"]]), "not a declared key"),
        (_json(1, [["a" * (MAX_LABEL_CHARS + 1), "n"]]), "at most 64"),
        (_json(2, [["a", "n"], ["a", "n"]]), "twice"),
        (_json(1, [["a", 5]]), "list of labels"),
        (_json(1, ["a"]), "list of labels"),
        (_json(1, {"a": "n"}), "not a list"),
        (_json(1, [["a", "n"]], counts=[1.0, 2.0]), "values"),
        (_json(-1, []), "0 to 3"),
        (_json(1, [["a", "n"]], extra=1), "expected an object"),
        (_json(1, [["a", "n"]], counts=[float("nan")]), "NaN"),
    ],
)
def test_hostile_releases_are_refused(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        NodeStatistics.from_json(text, _spec())


def test_a_declared_layout_refuses_named_cells() -> None:
    declared = _spec(group_by=(Grouping("region", keys=("n",)),), max_partitions=0)
    with pytest.raises(ValueError, match="declares them"):
        NodeStatistics.from_json(_json(1, [["n"]]), declared)
    assert NodeStatistics.from_json(_json(1, []), declared).cells == 1


def test_a_private_release_longer_than_any_honest_one_is_refused() -> None:
    padding = " " * (4096 + 32 * 6 + 2 * 256 + 3 * 2 * (12 * MAX_LABEL_CHARS + 4))
    with pytest.raises(ValueError, match="longer than"):
        NodeStatistics.from_json(_json(1, [["a", "n"]]) + padding, _spec())
