"""Statistics at the node: exact aggregates of its frame per the plan, then their noisy release.

The path of a statistics job through the rows:

1. Filters keep rows; groupings map each kept row to one cell (-1: dropped). Rows with a
   missing value in any column the job reads are dropped too, so every statistic
   describes the same rows.
2. With a person id, `bound_contributions` keeps at most `max_rows` rows of each person in
   at most `max_groups` cells (chosen by a keyed hash, never by order); without one every
   row is its own person and the plan's contribution is 1.
3. Measured values are clamped to their declared bounds, sums and squares centred on the
   bounds' midpoint, and the plan's components summed per cell (`exact_aggregates`).
4. `noisy_release` adds OpenDP's noise to each component: integer components (counts,
   histogram bins) through the discrete samplers, sums through the floating-point-safe
   ones, each at the plan's scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from clients.contribution import bound_contributions
from clients.secure_noise import (
    discrete_gaussian,
    discrete_laplace,
    gaussian_floats,
    laplace_floats,
)
from vocab.errors import DataError, InternalError
from vocab.jobs.statistics import NoiseKind, StatisticsSpec
from vocab.jobs.statistics_plan import COUNT, Component, ComponentKind, StatisticsPlan
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

__all__ = ["bound_contributions", "cell_index", "exact_aggregates", "noisy_release"]


def _numeric(frame: pd.DataFrame, column: str, why: str) -> npt.NDArray[np.float64]:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        message = f"column `{column}` is not numeric, but the job {why}"
        raise DataError(message, "declare the column's type as int or float", public=message)
    return _floats(series)


def _floats(series: pd.Series) -> npt.NDArray[np.float64]:
    values: npt.NDArray[np.float64] = np.asarray(
        series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )
    return values


def _labels_of(frame: pd.DataFrame, column: str) -> tuple[pd.Series, npt.NDArray[np.bool_]]:
    """Each row's value as text (what keys and filter values are matched on), and which
    rows are missing it."""
    series = frame[column]
    missing = series.isna().to_numpy(dtype=bool)
    return series.astype(object).map(str), missing


def _bin_of(values: npt.NDArray[np.float64], edges: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """Bin of each value between `edges`: [lo, hi) and the last bin closed; values outside
    (or NaN) get -1."""
    bins = np.searchsorted(np.asarray(edges), values, side="right").astype(np.int64) - 1
    bins[values == edges[-1]] = len(edges) - 2
    bins[~((values >= edges[0]) & (values <= edges[-1]))] = -1
    return bins


def cell_index(frame: pd.DataFrame, spec: StatisticsSpec) -> npt.NDArray[np.int64]:
    """Each row's cell (index into `spec.cell_keys`), or -1 for rows the job drops.

    Dropped: rows a filter rejects, rows outside every grouping's keys or edges, and rows
    missing any value the job reads.

    Raises:
        DataError: A column the job reads is absent, or not numeric where the job needs
            numbers (bounds, edges).
    """
    absent = [c for c in spec.columns if c not in frame.columns]
    if absent:
        message = f"the data has no column(s) {absent} that the job reads"
        raise DataError(message, "check the job against the node's schema", public=message)
    n = len(frame)
    valid = np.ones(n, dtype=bool)
    for row_filter in spec.filters:
        if row_filter.values:
            text, missing = _labels_of(frame, row_filter.column)
            valid &= text.isin(row_filter.values).to_numpy(dtype=bool) & ~missing
        else:
            v = _numeric(frame, row_filter.column, "filters it on a range")
            valid &= (v >= row_filter.lower) & (v <= row_filter.upper)
    cell = np.zeros(n, dtype=np.int64)
    for group in spec.group_by:
        if group.keys:
            text, missing = _labels_of(frame, group.column)
            position = {key: i for i, key in enumerate(group.keys)}
            index = text.map(lambda s, p=position: p.get(s, -1)).to_numpy(dtype=np.int64, copy=True)
            index[missing] = -1
        else:
            index = _bin_of(_numeric(frame, group.column, "bins it by edges"), group.edges)
        valid &= index >= 0
        cell = cell * len(group.labels) + index
    for stat in spec.statistics:
        if stat.column:
            valid &= ~np.isnan(_numeric(frame, stat.column, f"measures its {stat.measure.value}"))
    return np.where(valid, cell, -1)


def _component_values(
    c: Component, frame: pd.DataFrame, cells: npt.NDArray[np.int64], n_cells: int
) -> npt.NDArray[np.float64]:
    if c.kind is ComponentKind.COUNT:
        return np.bincount(cells, minlength=n_cells).astype(np.float64)
    values = _floats(frame[c.column])
    if c.kind is ComponentKind.HISTOGRAM:
        clamped: npt.NDArray[np.float64] = np.clip(values, c.edges[0], c.edges[-1])
        bins = _bin_of(clamped, c.edges)
        flat = cells * c.size + bins
        return np.bincount(flat, minlength=n_cells * c.size).astype(np.float64)
    centred = np.clip(values, c.lower, c.upper) - c.midpoint
    weights = centred if c.kind is ComponentKind.SUM else centred * centred
    return np.bincount(cells, weights=weights, minlength=n_cells).astype(np.float64)


def exact_aggregates(
    frame: pd.DataFrame,
    spec: StatisticsSpec,
    plan: StatisticsPlan,
    *,
    person_keys: Sequence[object] | None,
    secret: bytes,
) -> dict[str, npt.NDArray[np.float64]]:
    """Every component of `plan` computed exactly on `frame`: name -> `cells * size` values.

    Args:
        frame: The node's rows (typed by its schema check).
        spec: The job.
        plan: `plan_statistics(spec, spec.max_rows if person_keys is not None else 1)`.
        person_keys: Each row's person id, when the node declares one.
        secret: The node's secret key for contribution bounding.

    Raises:
        DataError: See `cell_index`.
        InternalError: The plan's contribution does not match the bounding applied.
    """
    contribution = spec.max_rows if person_keys is not None else 1
    if plan.component(COUNT).sensitivity != contribution or plan.cells != spec.cells:
        raise InternalError(
            f"plan made for contribution {plan.component(COUNT).sensitivity}, rows bounded "
            f"to {contribution} per person"
        )
    cells = cell_index(frame, spec)
    if person_keys is None:
        keep = cells >= 0
    else:
        keep = bound_contributions(person_keys, cells, spec.max_rows, spec.max_groups, secret)
    kept = frame.iloc[np.flatnonzero(keep)]
    kept_cells = cells[keep]
    return {c.name: _component_values(c, kept, kept_cells, plan.cells) for c in plan.components}


def noisy_release(
    exact: Mapping[str, npt.NDArray[np.float64]], plan: StatisticsPlan
) -> NodeStatistics:
    """The node's release: every component of `plan` plus noise at the plan's scale.

    Counts and histogram bins are integers and get discrete Gaussian or Laplace noise;
    sums and squares get OpenDP's floating-point-safe Gaussian or Laplace noise.

    Raises:
        InternalError: `exact` does not hold exactly the plan's components and lengths.
    """
    if set(exact) != {c.name for c in plan.components}:
        raise InternalError(f"aggregates {sorted(exact)} do not match the plan's components")
    released = []
    for c in plan.components:
        values = np.asarray(exact[c.name], dtype=np.float64)
        if values.shape != (plan.cells * c.size,) or not np.all(np.isfinite(values)):
            raise InternalError(f"component {c.name} has shape {values.shape} or bad values")
        scale = plan.noise_scale(c)
        noisy: Sequence[float]
        if c.kind.is_integer:
            integers = np.rint(values).astype(np.int64)
            if not np.array_equal(integers, values):
                raise InternalError(f"integer component {c.name} holds fractions")
            sampler = discrete_gaussian if plan.noise is NoiseKind.GAUSSIAN else discrete_laplace
            noisy = sampler(integers.tolist(), scale)
        else:
            float_sampler = gaussian_floats if plan.noise is NoiseKind.GAUSSIAN else laplace_floats
            noisy = float_sampler(values.tolist(), scale)
        released.append(ComponentRelease(c.name, tuple(float(v) for v in noisy), plan.noise_std(c)))
    return NodeStatistics(tuple(released), plan.cells)
