"""The coordinator's combination of statistics releases: sums over nodes, ratios,
quantiles, suppression on noisy counts, and refusal of malformed releases."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from server.kinds.statistics.combine import Cell, clamping_note, combine
from vocab.jobs.statistics import Grouping, Measure, NoiseKind, StatisticSpec, StatisticsSpec
from vocab.jobs.statistics_plan import (
    COUNT,
    Z95,
    StatisticsPlan,
    noise_half_width,
    plan_statistics,
)
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

MEAN = StatisticSpec(Measure.MEAN, "x", 0.0, 10.0)
VARIANCE = StatisticSpec(Measure.VARIANCE, "x", 0.0, 10.0)
SUM = StatisticSpec(Measure.SUM, "x", 0.0, 10.0)
COUNTS = StatisticSpec(Measure.COUNT)
HISTOGRAM = StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0, 5.0, 10.0))
QUANTILE = StatisticSpec(Measure.QUANTILE, "x", 0.0, 10.0, quantiles=(0.25, 0.5), bins=10)


def _spec(*stats: StatisticSpec, **kwargs: Any) -> StatisticsSpec:
    return StatisticsSpec(name="s", statistics=stats, delta=1e-6, **kwargs)


def _release(plan: StatisticsPlan, values: dict[str, list[float]], std: float) -> NodeStatistics:
    return NodeStatistics(
        tuple(ComponentRelease(c.name, tuple(values[c.name]), std) for c in plan.components),
        plan.cells,
    )


def _cell(cells: list[Cell], statistic: str, level: str = "", index: int = 0) -> Cell:
    found = [c for c in cells if c.statistic == statistic and c.level == level]
    return found[index]


def test_counts_sums_and_ratios_combine_across_nodes() -> None:
    spec = _spec(COUNTS, SUM, MEAN, VARIANCE)
    plan = plan_statistics(spec, 1)
    # Node 1: values 2, 4, 9 (centred on 5: -3, -1, 4); node 2: 5, 7 (0, 2).
    one = _release(plan, {COUNT: [3], "sum:x:0:10": [0], "sumsq:x:0:10": [26]}, 1.0)
    two = _release(plan, {COUNT: [2], "sum:x:0:10": [2], "sumsq:x:0:10": [4]}, 2.0)
    cells = combine(spec, [one, two])
    assert [c.statistic for c in cells] == ["count", "sum", "mean", "variance"]
    count, total, mean, variance = cells
    assert count.value == 5 and count.std == pytest.approx(math.sqrt(5))
    # Integer noise: the half-width is the whole number covering 95 % of it.
    half = noise_half_width([1.0, 2.0], NoiseKind.GAUSSIAN, integer=True)
    assert half == 4.0 and (count.lower, count.upper) == (1.0, 9.0)
    assert total.upper - total.value == pytest.approx(Z95 * total.std)
    assert total.value == pytest.approx(27.0)  # 2 + 4 + 9 + 5 + 7
    assert total.std == pytest.approx(math.sqrt(5 + 25 * 5))
    assert mean.value == pytest.approx(5.4)
    # Delta method: sqrt(std_S^2 + m^2 std_N^2) / n with centred mean m = 0.4.
    assert mean.std == pytest.approx(math.sqrt(5 + 0.16 * 5) / 5)
    data = np.array([2, 4, 9, 5, 7], dtype=float)
    assert variance.value == pytest.approx(float(np.var(data)))
    assert all(c.group == () and c.count == 5 and not c.suppressed for c in cells)


def test_histogram_and_quantiles() -> None:
    spec = _spec(HISTOGRAM, QUANTILE)
    plan = plan_statistics(spec, 1)
    quantile_bins = [10.0, 10, 10, 10, 10, 10, 10, 10, 10, 10]  # uniform over [0, 10]
    release = _release(
        plan, {COUNT: [100], "histogram:x:0|5|10": [60, 40], "histogram:x:0:10/10": quantile_bins},
        0.5,
    )  # fmt: skip
    cells = combine(spec, [release, release])
    assert _cell(cells, "histogram", "0-5").value == 120
    assert _cell(cells, "histogram", "5-10").value == 80
    q25, q50 = _cell(cells, "quantile", "0.25"), _cell(cells, "quantile", "0.5")
    assert q25.value == pytest.approx(2.5) and q50.value == pytest.approx(5.0)
    # Intervals are whole bins around the estimate, at least the bin it falls in.
    assert q50.lower <= 5.0 <= q50.upper
    assert q50.lower in np.arange(11) and q50.upper in np.arange(11)
    assert q50.upper - q50.lower <= 2.0
    assert 0 < q50.std < 0.5


def test_negative_bins_are_read_as_empty_for_quantiles() -> None:
    spec = _spec(QUANTILE)
    plan = plan_statistics(spec, 1)
    bins = [-30.0, 50, 0, 0, 0, 0, 0, 0, 50, -30]
    release = _release(plan, {COUNT: [100], "histogram:x:0:10/10": bins}, 1.0)
    q25, q50 = combine(spec, [release])
    assert q25.value == pytest.approx(1.5)  # a quarter of the mass: half of bin [1, 2)
    assert 2.0 <= q50.value <= 8.0


def test_suppression_uses_the_combined_noisy_count_and_blanks_the_json() -> None:
    spec = _spec(COUNTS, MEAN, group_by=(Grouping("g", keys=("a", "b")),), threshold=20.0)
    plan = plan_statistics(spec, 1)
    # Cell a: 12 + 9 = 21 (kept); cell b: 15 + 4 = 19 (suppressed, though one node has 15).
    one = _release(plan, {COUNT: [12, 15], "sum:x:0:10": [1.0, 2.0]}, 1.0)
    two = _release(plan, {COUNT: [9, 4], "sum:x:0:10": [1.0, 2.0]}, 1.0)
    cells = combine(spec, [one, two])
    kept = [c for c in cells if c.group == (("g", "a"),)]
    gone = [c for c in cells if c.group == (("g", "b"),)]
    assert [c.suppressed for c in kept] == [False, False]
    assert [c.suppressed for c in gone] == [True, True]
    assert all(c.count == 19 and math.isfinite(c.value) for c in gone)  # kept internally
    shown = [c.to_json_dict() for c in gone]
    assert all(d[k] is None for d in shown for k in ("value", "std", "lower", "upper", "count"))
    assert kept[1].to_json_dict()["value"] == pytest.approx(5 + 2 / 21)
    json.dumps([c.to_json_dict() for c in cells], allow_nan=False)  # strict JSON


def test_the_count_a_cell_is_judged_on_is_noisy_never_an_exact_one() -> None:
    # The releases carry noisy counts only; suppression can use nothing else. A cell whose
    # noisy counts sum to just below the threshold is suppressed whatever its true count.
    spec = _spec(COUNTS, threshold=10.0)
    plan = plan_statistics(spec, 1)
    below = _release(plan, {COUNT: [9.999]}, 1.0)
    at = _release(plan, {COUNT: [10.0]}, 1.0)
    assert combine(spec, [below])[0].suppressed and not combine(spec, [at])[0].suppressed


def test_means_over_no_rows_are_undefined_not_infinite() -> None:
    spec = _spec(MEAN, VARIANCE)
    plan = plan_statistics(spec, 1)
    release = _release(plan, {COUNT: [-3], "sum:x:0:10": [4], "sumsq:x:0:10": [2]}, 1.0)
    mean, variance = combine(spec, [release])
    assert math.isnan(mean.value) and math.isnan(variance.value)
    assert mean.to_json_dict()["value"] is None


def test_means_and_variances_are_clipped_to_what_clamped_values_allow() -> None:
    spec = _spec(MEAN, VARIANCE)
    plan = plan_statistics(spec, 1)
    release = _release(plan, {COUNT: [10], "sum:x:0:10": [80], "sumsq:x:0:10": [-50]}, 1.0)
    mean, variance = combine(spec, [release])
    assert mean.value == 10.0 and mean.upper <= 10.0
    assert variance.value == 0.0 and variance.lower >= 0.0


def test_laplace_intervals_use_the_laplace_quantile() -> None:
    centred = StatisticSpec(Measure.SUM, "x", -10.0, 10.0)  # midpoint 0: the sum's noise only
    spec = StatisticsSpec(
        name="s", statistics=(COUNTS, centred), noise=NoiseKind.LAPLACE, delta=0.0
    )
    plan = plan_statistics(spec, 1)
    count, total = combine(
        spec, [_release(plan, {COUNT: [50], "sum:x:-10:10": [7.0]}, math.sqrt(2.0))]
    )
    assert total.upper - 7.0 == pytest.approx(math.log(20.0))  # b ln 20 with b = 1
    # Discrete Laplace of b = 1: P(|K| <= 2) = 1 - 2 e^-3 / (1 + e^-1) = 0.927; 3 covers.
    assert count.upper - 50 == 3.0


def _good(spec: StatisticsSpec) -> NodeStatistics:
    plan = plan_statistics(spec, 1)
    return _release(
        plan,
        {c.name: [1.0] * (c.size * plan.cells) for c in plan.components},
        1.0,
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(cells=2),
        lambda d: d.update(cells="1"),
        lambda d: d.update(extra=1),
        lambda d: d["components"].pop(),
        lambda d: d["components"].append(d["components"][0]),
        lambda d: d["components"][0].update(name="sum:x:0:11"),
        lambda d: d["components"][0].update(values=[1.0, 2.0]),
        lambda d: d["components"][0].update(values=[]),
        lambda d: d["components"][0].update(values=["1"]),
        lambda d: d["components"][0].update(values=[True]),
        lambda d: d["components"][0].update(values=[1e300]),
        lambda d: d["components"][0].update(values=[10**400]),
        lambda d: d["components"][0].update(noise_std=-1.0),
        lambda d: d["components"][0].update(noise_std=0.0),
        lambda d: d["components"][0].update(noise_std=None),
        lambda d: d["components"][0].pop("noise_std"),
        lambda d: d["components"][0].update(name=7),
        lambda d: d.update(components={}),
    ],
)
def test_malformed_releases_are_refused(mutate: Any) -> None:
    spec = _spec(MEAN)
    doc = json.loads(_good(spec).to_json())
    mutate(doc)
    with pytest.raises(ValueError):
        NodeStatistics.from_json(json.dumps(doc), spec)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        "{",
        '{"cells": 1, "components": [{"name": "count", "values": [NaN], "noise_std": 1}]}',
        '{"cells": 1, "components": [{"name": "count", "values": [Infinity], "noise_std": 1}]}',
        '{"cells": 1, "components": [{"name": "count", "values": [1e999], "noise_std": 1}]}',
        "[" * 100_000,
        " " * 10_000_000,
    ],
)
def test_hostile_texts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        NodeStatistics.from_json(text, _spec(MEAN))


def test_a_good_release_round_trips_and_combine_checks_layouts() -> None:
    spec = _spec(MEAN)
    good = _good(spec)
    assert NodeStatistics.from_json(good.to_json(), plan_statistics(spec, 3)) == good
    other = _good(_spec(VARIANCE))
    with pytest.raises(ValueError):
        combine(spec, [good, other])
    with pytest.raises(ValueError):
        combine(spec, [])


def test_combine_is_reproducible_for_a_spec() -> None:
    spec = _spec(QUANTILE)
    release = _good(spec)
    assert combine(spec, [release]) == combine(spec, [release])


def test_clamping_note_names_bounds_and_what_intervals_cover() -> None:
    note = clamping_note(_spec(MEAN, VARIANCE, HISTOGRAM, max_rows=1, threshold=5.0))
    assert "`x` to [0, 10] (mean, variance, histogram)" in note
    assert "bias" in note and "noise only" in note and "5" in note
