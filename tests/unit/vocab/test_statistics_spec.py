"""Statistics job spec: parsing, validation naming the key and fix, derived properties."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vocab.errors import JobSpecError
from vocab.jobs.statistics import (
    DEFAULT_QUANTILE_BINS,
    MAX_CELLS,
    Grouping,
    Measure,
    NoiseKind,
    RowFilter,
    StatisticSpec,
    StatisticsSpec,
    bin_labels,
    parse_statistics_spec,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "jobs" / "earnings_by_region.toml"


def _doc(**job: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "s", "kind": "statistics"}
    base.update(job)
    return {
        "job": base,
        "statistics": [
            {"measure": "count"},
            {"measure": "mean", "column": "x", "lower": 0, "upper": 10},
        ],
        "group_by": {"g": {"keys": ["a", "b"]}, "age": {"edges": [18, 30, 65]}},
        "filters": {"f": {"values": ["yes"]}},
    }


def _with(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _spec(*stats: StatisticSpec, **kwargs: Any) -> StatisticsSpec:
    return StatisticsSpec(name="s", statistics=stats or (StatisticSpec(Measure.COUNT),), **kwargs)


def test_example_parses_with_its_cells_and_columns() -> None:
    spec = parse_statistics_spec(tomllib.loads(EXAMPLE.read_text()))
    assert spec.kind == "statistics" and spec.dataset == "earnings"
    assert spec.threshold == 20.0 and spec.noise is NoiseKind.GAUSSIAN
    assert spec.cells == 32 == len(spec.cell_keys)
    assert spec.cell_keys[0] == ("Northeast", "male", "21-30")
    assert spec.cell_keys[-1] == ("West", "female", "50-65")
    assert spec.columns == ("region", "gender", "age", "earnings")
    assert spec.open_only_columns == ("region", "gender", "age")
    measures = [s.measure for s in spec.statistics]
    assert measures == [
        Measure.COUNT,
        Measure.MEAN,
        Measure.VARIANCE,
        Measure.HISTOGRAM,
        Measure.QUANTILE,
    ]
    assert spec.statistics[-1].quantiles == (0.25, 0.5, 0.75)


def test_parse_builds_every_part_in_declared_order() -> None:
    spec = parse_statistics_spec(_doc(max_rows=3, max_groups=2, noise="laplace", delta=0.0))
    assert spec.group_by == (
        Grouping("g", keys=("a", "b")),
        Grouping("age", edges=(18.0, 30.0, 65.0)),
    )
    assert spec.filters == (RowFilter("f", values=("yes",)),)
    assert spec.statistics[1] == StatisticSpec(Measure.MEAN, "x", 0.0, 10.0)
    assert spec.cell_keys == (("a", "18-30"), ("a", "30-65"), ("b", "18-30"), ("b", "30-65"))
    assert spec.columns == ("g", "age", "f", "x")
    assert spec.open_only_columns == ("g", "age", "f")
    assert (spec.max_rows, spec.max_groups, spec.noise) == (3, 2, NoiseKind.LAPLACE)


def test_no_grouping_is_one_cell_keyed_by_the_empty_tuple() -> None:
    spec = _spec()
    assert spec.cell_keys == ((),) and spec.cells == 1
    assert spec.columns == () and spec.open_only_columns == ()


def test_columns_are_deduplicated_in_first_seen_order() -> None:
    spec = _spec(
        StatisticSpec(Measure.SUM, "y", 0.0, 1.0),
        StatisticSpec(Measure.MEAN, "g", 0.0, 1.0),
        StatisticSpec(Measure.HISTOGRAM, "y", edges=(0.0, 1.0)),
        group_by=(Grouping("g", keys=("a",)),),
        filters=(RowFilter("y", lower=0.0, upper=1.0), RowFilter("z", values=("1",))),
    )
    assert spec.columns == ("g", "y", "z")
    assert spec.open_only_columns == ("g", "y", "z")


def test_quantile_bins_default_when_left_out_or_zero() -> None:
    quantile = {"measure": "quantile", "column": "x", "lower": 0, "upper": 1, "quantiles": [0.5]}
    doc = _with(_doc(), ("statistics", 1), quantile)
    assert parse_statistics_spec(doc).statistics[1].bins == DEFAULT_QUANTILE_BINS
    assert StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(0.5,)).bins == 64


def test_bin_labels_are_exact_and_unique() -> None:
    assert bin_labels((18.0, 30.0, 65.0)) == ("18-30", "30-65")
    assert bin_labels((0.1, 0.25)) == ("0.1-0.25",)
    assert len(set(bin_labels((1.0, 1.0000001, 1.0000002)))) == 2


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("job", "kind"), "risk", "kind"),
        (("job", "typo"), 1, "typo"),
        (("job", "noise"), "uniform", "noise"),
        (("job", "max_rows"), 0, "max_rows"),
        (("job", "max_rows"), 1001, "max_rows"),
        (("job", "max_groups"), 5, "max_groups"),  # 4 cells
        (("job", "threshold"), -1.0, "threshold"),
        (("job", "threshold"), math.inf, "threshold"),
        (("job", "threshold"), "high", "threshold"),
        (("job", "epsilon"), 0.0, "epsilon"),
        (("job", "delta"), 0.0, 'noise = "laplace"'),
        (("extra",), {}, "extra"),
        (("statistics",), [], "statistics"),
        (("statistics", 0, "column"), "x", "column"),
        (("statistics", 0, "measure"), "median", "measure"),
        (("statistics", 0, "colour"), "x", "colour"),
        (("statistics", 1, "upper"), 0, "lower < upper"),
        (("statistics", 1, "upper"), math.nan, "lower < upper"),
        (("statistics", 1, "lower"), "0", "number"),
        (("statistics", 1, "lower"), True, "number"),
        (("statistics", 1, "column"), "", "column"),
        (("statistics", 1, "edges"), [0, 1], "edges"),
        (("group_by", "g"), {"keys": ["a", "a"]}, "twice"),
        (("group_by", "g"), {"keys": ["a", ""]}, "non-empty"),
        (("group_by", "g"), {"keys": [1, 2]}, "strings"),
        (("group_by", "g"), {}, "neither"),
        (("group_by", "g"), {"keys": ["a"], "edges": [0, 1]}, "both"),
        (("group_by", "g"), {"edges": [3, 1]}, "increasing"),
        (("group_by", "g"), {"edges": [1]}, "edges"),
        (("group_by", "g"), {"label": 1}, "label"),
        (("filters", "f"), {"lower": 2, "upper": 1}, "lower"),
        (("filters", "f"), {"values": ["a"], "lower": 1, "upper": 2}, "both"),
        (("filters", "f"), {"match": "a"}, "match"),
    ],
)
def test_bad_fields_are_refused_naming_them(
    path: tuple[str | int, ...], value: Any, needle: str
) -> None:
    with pytest.raises(JobSpecError) as info:
        parse_statistics_spec(_with(_doc(), path, value))
    assert needle in str(info.value)
    assert info.value.hint or "unknown" in info.value.message


def test_a_sum_without_bounds_is_refused_with_the_fix() -> None:
    doc = _with(_doc(), ("statistics", 1), {"measure": "sum", "column": "x"})
    with pytest.raises(JobSpecError) as info:
        parse_statistics_spec(doc)
    assert "bounds" in info.value.message and "lower" in info.value.hint


@pytest.mark.parametrize(
    ("stat", "needle"),
    [
        (StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0,)), "edges"),
        (StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0, math.inf)), "edges"),
        (StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0, 1.0), bins=3), "bins"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=()), "quantiles"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(0.5, 0.2)), "quantiles"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(0.0,)), "quantiles"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(1.0,)), "quantiles"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(0.5,), bins=4), "bins"),
        (StatisticSpec(Measure.QUANTILE, "x", 0, 1, quantiles=(0.5,), bins=2000), "bins"),
        (StatisticSpec(Measure.QUANTILE, "x", 1, 0, quantiles=(0.5,)), "lower < upper"),
        (StatisticSpec(Measure.COUNT, lower=1.0), "lower"),
        (StatisticSpec(Measure.MEAN, "x", 0, 1, quantiles=(0.5,)), "quantiles"),
    ],
)
def test_bad_statistics_are_refused(stat: StatisticSpec, needle: str) -> None:
    with pytest.raises(JobSpecError) as info:
        _spec(stat)
    assert needle in str(info.value)


def test_statistic_count_limits_and_duplicates() -> None:
    many = tuple(StatisticSpec(Measure.SUM, f"c{i}", 0, 1) for i in range(33))
    with pytest.raises(JobSpecError, match="33 statistics"):
        _spec(*many)
    with pytest.raises(JobSpecError, match="twice"):
        _spec(StatisticSpec(Measure.COUNT), StatisticSpec(Measure.COUNT))
    assert len(_spec(*many[:32]).statistics) == 32


def test_cells_are_capped() -> None:
    keys = tuple(str(i) for i in range(101))
    groups = (Grouping("a", keys=keys), Grouping("b", keys=keys[:100]))
    assert _spec(group_by=groups[1:]).cells == 100
    with pytest.raises(JobSpecError, match=f"10100 cells .* above {MAX_CELLS}"):
        _spec(group_by=groups)
    with pytest.raises(JobSpecError, match="twice"):
        _spec(group_by=(groups[1], groups[1]))


def test_released_values_are_capped() -> None:
    keys = tuple(str(i) for i in range(10_000))
    stat = StatisticSpec(Measure.HISTOGRAM, "x", edges=tuple(float(e) for e in range(200)))
    with pytest.raises(JobSpecError, match="noisy values"):
        _spec(stat, group_by=(Grouping("a", keys=keys),))


def test_laplace_allows_delta_zero_and_gaussian_does_not() -> None:
    assert _spec(noise=NoiseKind.LAPLACE, delta=0.0).delta == 0.0
    with pytest.raises(JobSpecError) as info:
        _spec(delta=0.0)
    assert 'noise = "laplace"' in info.value.hint


def test_max_groups_is_bounded_by_the_cells() -> None:
    groups = (Grouping("a", keys=("x", "y", "z")),)
    assert _spec(group_by=groups, max_groups=3).max_groups == 3
    with pytest.raises(JobSpecError, match="max_groups"):
        _spec(group_by=groups, max_groups=4)


def test_missing_job_table_and_name() -> None:
    with pytest.raises(JobSpecError, match=r"\[job\]"):
        parse_statistics_spec({"statistics": [{"measure": "count"}]})
    doc = _doc()
    del doc["job"]["name"]
    with pytest.raises(JobSpecError, match="name"):
        parse_statistics_spec(doc)
