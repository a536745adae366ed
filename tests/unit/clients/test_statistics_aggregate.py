"""Statistics at the node: cells, filters, clamping, components, contribution bounding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clients.kinds.statistics.aggregate import (
    bound_contributions,
    cell_index,
    exact_aggregates,
    noisy_release,
)
from vocab.errors import DataError, InternalError
from vocab.jobs.statistics import (
    Grouping,
    Measure,
    NoiseKind,
    RowFilter,
    StatisticSpec,
    StatisticsSpec,
)
from vocab.jobs.statistics_plan import COUNT, StatisticsPlan, plan_statistics
from vocab.jobs.statistics_release import NodeStatistics

SECRET = bytes(range(32))
MEAN = StatisticSpec(Measure.MEAN, "x", 0.0, 10.0)
VARIANCE = StatisticSpec(Measure.VARIANCE, "x", 0.0, 10.0)
HISTOGRAM = StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0, 2.0, 5.0, 10.0))
QUANTILE = StatisticSpec(Measure.QUANTILE, "x", 0.0, 10.0, quantiles=(0.5,), bins=10)


def _spec(*stats: StatisticSpec, **kwargs: Any) -> StatisticsSpec:
    return StatisticsSpec(name="s", statistics=stats or (StatisticSpec(Measure.COUNT),), **kwargs)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "g": ["a", "b", "a", "c", "b", None, "a"],
            "age": [18, 25, 30, 65, 70, 20, 64.5],
            "x": [-5.0, 1.0, 3.0, 12.0, 4.0, 6.0, 10.0],
            "flag": ["yes", "yes", "no", "yes", "yes", "yes", "yes"],
        }
    )


def _aggregate(frame: pd.DataFrame, spec: StatisticsSpec, **kwargs: Any) -> dict[str, Any]:
    contribution = spec.max_rows if kwargs.get("person_keys") is not None else 1
    plan = plan_statistics(spec, contribution)
    return exact_aggregates(frame, spec, plan, person_keys=kwargs.get("person_keys"), secret=SECRET)


def test_cells_from_keys_and_edges_in_declared_order() -> None:
    spec = _spec(
        group_by=(Grouping("g", keys=("a", "b")), Grouping("age", edges=(18.0, 30.0, 65.0)))
    )
    # cells: (a,18-30)=0 (a,30-65)=1 (b,18-30)=2 (b,30-65)=3; 30 opens the second bin,
    # 65 closes the last; "c", a missing key and ages outside are dropped.
    assert cell_index(_frame(), spec).tolist() == [0, 2, 1, -1, -1, -1, 1]


def test_filters_by_values_and_by_range() -> None:
    by_value = _spec(filters=(RowFilter("flag", values=("yes",)),))
    assert (cell_index(_frame(), by_value) >= 0).tolist() == [1, 1, 0, 1, 1, 1, 1]
    by_range = _spec(filters=(RowFilter("x", lower=0.0, upper=6.0),))
    assert (cell_index(_frame(), by_range) >= 0).tolist() == [0, 1, 1, 0, 1, 1, 0]


def test_keys_match_the_values_text() -> None:
    frame = pd.DataFrame({"n": pd.array([1, 2, None], dtype="Int64"), "x": [1.0, 2.0, 3.0]})
    spec = _spec(group_by=(Grouping("n", keys=("2", "1")),))
    assert cell_index(frame, spec).tolist() == [1, 0, -1]


def test_rows_missing_a_read_value_are_dropped_everywhere() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    counts = _aggregate(frame, _spec(StatisticSpec(Measure.COUNT), MEAN))
    assert counts[COUNT].tolist() == [2.0]


def test_absent_or_non_numeric_columns_are_data_errors() -> None:
    with pytest.raises(DataError, match="no column"):
        cell_index(_frame(), _spec(MEAN, group_by=(Grouping("region", keys=("a",)),)))
    with pytest.raises(DataError, match="not numeric") as info:
        cell_index(_frame(), _spec(StatisticSpec(Measure.SUM, "g", 0.0, 1.0)))
    assert info.value.public is not None and "g" in info.value.public


def test_count_sum_and_squares_are_clamped_and_centred() -> None:
    spec = _spec(MEAN, VARIANCE, group_by=(Grouping("g", keys=("a", "b")),))
    exact = _aggregate(_frame(), spec)
    # a: x = -5, 3, 10 -> clamped 0, 3, 10 -> centred on 5: -5, -2, 5; b: 1, 4 -> -4, -1
    assert exact[COUNT].tolist() == [3.0, 2.0]
    assert exact["sum:x:0:10"].tolist() == [-2.0, -5.0]
    assert exact["sumsq:x:0:10"].tolist() == [54.0, 17.0]


def test_histograms_clamp_into_the_end_bins_cell_major() -> None:
    spec = _spec(HISTOGRAM, QUANTILE, group_by=(Grouping("g", keys=("a", "b")),))
    exact = _aggregate(_frame(), spec)
    # a: -5 -> [0,2), 3 -> [2,5), 10 -> [5,10] (closed); b: 1 -> [0,2), 4 -> [2,5)
    assert exact["histogram:x:0|2|5|10"].tolist() == [1, 1, 1, 1, 1, 0]
    quantile_bins = exact["histogram:x:0:10/10"].reshape(2, 10)
    assert quantile_bins[0].tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert quantile_bins[1].tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]


def test_without_grouping_everything_is_one_cell() -> None:
    exact = _aggregate(_frame(), _spec(MEAN))
    assert exact[COUNT].tolist() == [7.0]
    assert exact["sum:x:0:10"].shape == (1,)


def test_a_plan_for_another_contribution_is_refused() -> None:
    spec = _spec(MEAN, max_rows=3)
    with pytest.raises(InternalError):
        exact_aggregates(
            _frame(), spec, plan_statistics(spec, 1), person_keys=list(range(7)), secret=SECRET
        )


# --- contribution bounding -----------------------------------------------------------------


def _people(seed: int, persons: int = 60, cells: int = 6) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = [f"p{int(i)}" for i in rng.integers(0, persons, 600)]
    cell = rng.integers(-1, cells, 600).astype(np.int64)
    return keys, cell


@pytest.mark.parametrize(("max_rows", "max_groups"), [(1, 1), (3, 2), (5, 6)])
def test_each_person_keeps_at_most_max_rows_in_max_groups(max_rows: int, max_groups: int) -> None:
    keys, cell = _people(1)
    keep = bound_contributions(keys, cell, max_rows, max_groups, SECRET)
    assert not keep[cell < 0].any()
    kept = pd.DataFrame({"p": np.asarray(keys)[keep], "c": cell[keep]})
    assert kept.groupby("p").size().max() <= max_rows
    assert kept.groupby("p")["c"].nunique().max() <= max_groups
    # Nobody who had an eligible row loses all of them.
    eligible = {k for k, c in zip(keys, cell, strict=True) if c >= 0}
    assert set(kept["p"]) == eligible


def test_removing_one_person_leaves_everyone_elses_rows() -> None:
    keys, cell = _people(2)
    keep = bound_contributions(keys, cell, 2, 2, SECRET)
    for gone in ("p3", "p17", "p42"):
        others = np.asarray([k != gone for k in keys])
        kept_without = bound_contributions(
            [k for k in keys if k != gone], cell[others], 2, 2, SECRET
        )
        np.testing.assert_array_equal(kept_without, keep[others])


def test_selection_does_not_depend_on_where_other_rows_sit() -> None:
    keys, cell = _people(3)
    keep = bound_contributions(keys, cell, 2, 2, SECRET)
    # Reverse the frame but keep each person's own rows in order: the same rows are kept.
    order = sorted(range(len(keys)), key=lambda i: (keys[i], i))
    shuffled = bound_contributions([keys[i] for i in order], cell[order], 2, 2, SECRET)
    np.testing.assert_array_equal(shuffled, keep[order])


def test_selection_is_not_the_first_rows_and_depends_on_the_secret() -> None:
    keys = ["p"] * 200
    cell = np.zeros(200, dtype=np.int64)
    first = bound_contributions(keys, cell, 10, 1, SECRET)
    other = bound_contributions(keys, cell, 10, 1, bytes(32))
    assert first.sum() == other.sum() == 10
    assert not first[:10].all()
    assert not np.array_equal(first, other)


def test_missing_person_ids_are_never_kept() -> None:
    keep = bound_contributions(["a", None, math.nan, "a"], np.zeros(4, np.int64), 5, 1, SECRET)
    assert keep.tolist() == [True, False, False, True]


def test_person_bounding_in_exact_aggregates() -> None:
    frame = pd.DataFrame({"x": [1.0] * 10 + [2.0]})
    spec = _spec(MEAN, max_rows=3)
    exact = _aggregate(frame, spec, person_keys=["heavy"] * 10 + ["light"])
    assert exact[COUNT].tolist() == [4.0]


# --- sensitivity: the plan's stated sensitivity bounds what one person can change -----------


def _component_vectors(frame: pd.DataFrame, spec: StatisticsSpec, keys: list[str]) -> Any:
    return _aggregate(frame, spec, person_keys=keys)


@pytest.mark.parametrize("seed", range(8))
def test_one_person_moves_each_component_by_at_most_its_sensitivity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = _spec(
        VARIANCE,
        HISTOGRAM,
        QUANTILE,
        group_by=(Grouping("g", keys=("a", "b", "c")),),
        max_rows=4,
        max_groups=3,
    )
    plan = plan_statistics(spec, 4)
    n = 300
    frame = pd.DataFrame(
        {"g": rng.choice(["a", "b", "c", "d"], n), "x": rng.uniform(-5.0, 15.0, n)}
    )
    keys = [f"p{i}" for i in rng.integers(0, 80, n)]
    # The added person: many rows, extreme values, all in one cell (the L2 worst case) or
    # spread over cells.
    extra_rows = 12
    same_cell = seed % 2 == 0
    extra = pd.DataFrame(
        {
            "g": ["a"] * extra_rows if same_cell else rng.choice(["a", "b", "c"], extra_rows),
            "x": rng.choice([-100.0, 100.0], extra_rows) if seed % 4 < 2 else [10.0] * 12,
        }
    )
    with_person = pd.concat([frame, extra], ignore_index=True)
    before = _component_vectors(frame, spec, keys)
    after = _component_vectors(with_person, spec, keys + ["newcomer"] * extra_rows)
    for c in plan.components:
        d = after[c.name] - before[c.name]
        assert np.abs(d).sum() <= c.sensitivity + 1e-9, c.name
        assert np.sqrt((d * d).sum()) <= c.sensitivity + 1e-9, c.name


def test_the_worst_case_reaches_the_sensitivity() -> None:
    spec = _spec(MEAN, max_rows=4)
    plan = plan_statistics(spec, 4)
    frame = pd.DataFrame({"x": [5.0]})
    before = _aggregate(frame, spec, person_keys=["a"])
    after = _aggregate(
        pd.concat([frame, pd.DataFrame({"x": [10.0] * 6})]),
        spec,
        person_keys=["a"] + ["b"] * 6,
    )
    assert (
        after["sum:x:0:10"][0] - before["sum:x:0:10"][0] == plan.component("sum:x:0:10").sensitivity
    )


# --- the noisy release -----------------------------------------------------------------------


def _plan(noise: NoiseKind) -> tuple[StatisticsSpec, StatisticsPlan]:
    spec = _spec(
        MEAN,
        HISTOGRAM,
        group_by=(Grouping("g", keys=("a", "b")),),
        noise=noise,
        delta=1e-6 if noise is NoiseKind.GAUSSIAN else 0.0,
    )
    return spec, plan_statistics(spec, 1)


@pytest.mark.parametrize("noise", [NoiseKind.GAUSSIAN, NoiseKind.LAPLACE])
def test_noisy_release_has_the_plans_layout_and_stds(noise: NoiseKind) -> None:
    spec, plan = _plan(noise)
    exact = exact_aggregates(_frame(), spec, plan, person_keys=None, secret=SECRET)
    release = noisy_release(exact, plan)
    release.check_layout(plan)
    by_name = release.by_name()
    for c in plan.components:
        assert by_name[c.name].noise_std == plan.noise_std(c)
        values = np.asarray(by_name[c.name].values)
        if c.kind.is_integer:
            assert np.array_equal(values, np.rint(values))
        else:  # continuous noise is never exactly 0 (integer noise may well be)
            assert np.all(values != exact[c.name])
    assert NodeStatistics.from_json(release.to_json(), spec) == release


def test_noisy_release_refuses_aggregates_not_of_the_plan() -> None:
    spec, plan = _plan(NoiseKind.GAUSSIAN)
    exact = exact_aggregates(_frame(), spec, plan, person_keys=None, secret=SECRET)
    with pytest.raises(InternalError):
        noisy_release({k: v for k, v in exact.items() if k != COUNT}, plan)
    with pytest.raises(InternalError):
        noisy_release({**exact, COUNT: np.zeros(5)}, plan)
    with pytest.raises(InternalError):
        noisy_release({**exact, COUNT: exact[COUNT] + 0.5}, plan)
