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

With a privately chosen grouping (`private_release`) the cells are the partitions the
kept rows make - label tuples, a private column's label being its value's text cut to
`MAX_LABEL_CHARS` - numbered for contribution bounding by a hash of their labels. Every
observed partition's count is noised; those whose noisy count exceeds the plan's threshold
tau are kept, the `max_partitions` largest if more pass; the other components are computed
and noised for the kept partitions only, which has the same distribution as noising every
partition and dropping the rest (independent noise per value). The release names its
partitions (see `vocab.jobs.statistics_plan` for why this is private).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from clients.data.contribution import bound_contributions
from clients.secure_noise import (
    discrete_gaussian,
    discrete_laplace,
    gaussian_floats,
    laplace_floats,
)
from vocab.errors import DataError, InternalError
from vocab.jobs.statistics import MAX_LABEL_CHARS, Grouping, NoiseKind, StatisticsSpec
from vocab.jobs.statistics_plan import (
    COUNT,
    Component,
    ComponentKind,
    PartitionSelection,
    StatisticsPlan,
)
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

_PARTITION_DOMAIN = b"silobridge.statistics.partition\x00"

__all__ = [
    "bound_contributions",
    "bounded_partitions",
    "cell_index",
    "exact_aggregates",
    "noisy_release",
    "partition_index",
    "private_release",
    "select_partitions",
]


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


def _kept_rows(frame: pd.DataFrame, spec: StatisticsSpec) -> npt.NDArray[np.bool_]:
    """Rows every filter passes and with every measured value present.

    Raises:
        DataError: A column the job reads is absent, or not numeric where it must be.
    """
    absent = [c for c in spec.columns if c not in frame.columns]
    if absent:
        message = f"the data has no column(s) {absent} that the job reads"
        raise DataError(message, "check the job against the node's schema", public=message)
    valid = np.ones(len(frame), dtype=bool)
    for row_filter in spec.filters:
        if row_filter.values:
            text, missing = _labels_of(frame, row_filter.column)
            valid &= text.isin(row_filter.values).to_numpy(dtype=bool) & ~missing
        else:
            v = _numeric(frame, row_filter.column, "filters it on a range")
            valid &= (v >= row_filter.lower) & (v <= row_filter.upper)
    for stat in spec.statistics:
        if stat.column:
            valid &= ~np.isnan(_numeric(frame, stat.column, f"measures its {stat.measure.value}"))
    return valid


def _declared_index(frame: pd.DataFrame, group: Grouping) -> npt.NDArray[np.int64]:
    """Each row's position among a declared grouping's labels, -1 outside them."""
    if group.keys:
        text, missing = _labels_of(frame, group.column)
        position = {key: i for i, key in enumerate(group.keys)}
        index = text.map(lambda s, p=position: p.get(s, -1)).to_numpy(dtype=np.int64, copy=True)
        index[missing] = -1
        return index
    return _bin_of(_numeric(frame, group.column, "bins it by edges"), group.edges)


def cell_index(frame: pd.DataFrame, spec: StatisticsSpec) -> npt.NDArray[np.int64]:
    """Each row's cell (index into `spec.cell_keys`), or -1 for rows the job drops.

    Dropped: rows a filter rejects, rows outside every grouping's keys or edges, and rows
    missing any value the job reads.

    Raises:
        DataError: A column the job reads is absent, or not numeric where the job needs
            numbers (bounds, edges).
        InternalError: A grouping is private (see `partition_index`).
    """
    if spec.private:
        raise InternalError("bug: a privately chosen layout has no declared cells")
    valid = _kept_rows(frame, spec)
    cell = np.zeros(len(frame), dtype=np.int64)
    for group in spec.group_by:
        index = _declared_index(frame, group)
        valid &= index >= 0
        cell = cell * len(group.labels) + index
    return np.where(valid, cell, -1)


def partition_index(
    frame: pd.DataFrame, spec: StatisticsSpec
) -> tuple[npt.NDArray[np.int64], list[tuple[str, ...]]]:
    """Each row's partition (index into the returned keys), or -1 for rows the job drops,
    for a layout with a privately chosen grouping.

    A partition's key holds one label per grouping: a declared key or bin label, or a
    private column's value as text, cut to `MAX_LABEL_CHARS` characters. Rows are dropped
    as by `cell_index`, and where a private column's value is missing. Partitions are
    numbered in order of first appearance: an index says nothing stable, the key does.

    Raises:
        DataError: As `cell_index`.
    """
    valid = _kept_rows(frame, spec)
    columns: list[pd.Series] = []
    for group in spec.group_by:
        if group.private:
            text, missing = _labels_of(frame, group.column)
            valid &= ~missing
            columns.append(text.str.slice(0, MAX_LABEL_CHARS))
        else:
            index = _declared_index(frame, group)
            valid &= index >= 0
            labels = np.asarray(group.labels, dtype=object)
            columns.append(pd.Series(labels[np.maximum(index, 0)], index=frame.index))
    rows = np.flatnonzero(valid)
    labels_by_row = zip(*(c.to_numpy(dtype=object)[rows] for c in columns), strict=True)
    texts = [json.dumps(key) for key in labels_by_row]
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    partition = np.full(len(frame), -1, dtype=np.int64)
    partition[rows] = codes
    return partition, [tuple(json.loads(u)) for u in uniques]


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
        noisy = _noised(c, exact[c.name], plan, plan.cells)
        released.append(ComponentRelease(c.name, noisy, plan.noise_std(c)))
    return NodeStatistics(tuple(released), plan.cells)


def _noised(
    c: Component, exact: npt.NDArray[np.float64], plan: StatisticsPlan, cells: int
) -> tuple[float, ...]:
    """One component's `cells * size` exact values plus noise at the plan's scale."""
    values = np.asarray(exact, dtype=np.float64)
    if values.shape != (cells * c.size,) or not np.all(np.isfinite(values)):
        raise InternalError(f"component {c.name} has shape {values.shape} or bad values")
    if values.size == 0:
        return ()
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
    return tuple(float(v) for v in noisy)


def _partition_code(key: tuple[str, ...]) -> int:
    """A partition's number for contribution bounding: 63 bits of SHA-256 of its labels,
    the same whichever other partitions exist."""
    digest = hashlib.sha256(_PARTITION_DOMAIN + json.dumps(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def bounded_partitions(
    frame: pd.DataFrame,
    spec: StatisticsSpec,
    *,
    person_keys: Sequence[object] | None,
    secret: bytes,
) -> tuple[npt.NDArray[np.int64], list[tuple[str, ...]]]:
    """`partition_index` after contribution bounding: rows beyond a person's `max_rows`
    rows in `max_groups` partitions get -1.

    `bound_contributions` ranks a person's cells by a keyed hash of the cell's number, so
    partitions are numbered by a hash of their labels (`_partition_code`), never by their
    index, which depends on the partitions other people's rows make. Two partitions whose
    numbers collided would count as one cell there; a person left with rows in more than
    `max_groups` partitions - only possible through such a collision - is dropped whole,
    which again depends on that person's rows alone.
    """
    partitions, keys = partition_index(frame, spec)
    if person_keys is None or not keys:
        return partitions, keys
    codes = np.asarray([_partition_code(key) for key in keys], dtype=np.int64)
    numbered = np.where(partitions >= 0, codes[np.maximum(partitions, 0)], -1)
    keep = bound_contributions(person_keys, numbered, spec.max_rows, spec.max_groups, secret)
    rows = np.flatnonzero(keep)
    owners = np.asarray(person_keys, dtype=object)[rows]
    spread = pd.Series(partitions[rows]).groupby(owners, sort=False).transform("nunique")
    keep[rows[spread.to_numpy() > spec.max_groups]] = False
    return np.where(keep, partitions, -1), keys


def select_partitions(
    noisy_counts: Sequence[float], keys: Sequence[tuple[str, ...]], selection: PartitionSelection
) -> list[int]:
    """Which partitions to release, in key order: those whose noisy count exceeds the
    threshold, the `max_partitions` largest if more pass (ties broken by key).

    Post-processing of the noisy counts (and public figures): dropping what is not among
    the largest never changes which are.
    """
    passing = [i for i, count in enumerate(noisy_counts) if count > selection.threshold]
    passing.sort(key=lambda i: (-noisy_counts[i], keys[i]))
    return sorted(passing[: selection.max_partitions], key=lambda i: keys[i])


def private_release(
    frame: pd.DataFrame,
    spec: StatisticsSpec,
    plan: StatisticsPlan,
    *,
    person_keys: Sequence[object] | None,
    secret: bytes,
) -> NodeStatistics:
    """The node's release for a layout with a privately chosen grouping.

    Partitions from the rows kept after contribution bounding (`bounded_partitions`),
    every one's count noised, the partitions that pass `select_partitions`
    released with all their noisy components and their keys.

    Raises:
        DataError: See `cell_index`.
        InternalError: The plan is not this spec's private plan at the bound applied.
    """
    contribution = spec.max_rows if person_keys is not None else 1
    selection = plan.selection
    count = plan.component(COUNT)
    if selection is None or not spec.private or count.sensitivity != contribution:
        raise InternalError(
            f"a private release needs the spec's private plan at contribution {contribution}; "
            f"got one at {count.sensitivity}, selection {selection is not None}, private "
            f"spec {spec.private}"
        )
    partitions, keys = bounded_partitions(frame, spec, person_keys=person_keys, secret=secret)
    keep = partitions >= 0
    kept = frame.iloc[np.flatnonzero(keep)]
    kept_partitions = partitions[keep]
    counts = np.bincount(kept_partitions, minlength=len(keys)).astype(np.float64)
    # Only partitions with a kept row exist: a person's dropped rows make none.
    observed = np.flatnonzero(counts > 0)
    noisy_counts = _noised(count, counts[observed], plan, observed.size)
    observed_keys = [keys[i] for i in observed]
    chosen = select_partitions(noisy_counts, observed_keys, selection)
    released_keys = tuple(observed_keys[i] for i in chosen)
    # Renumber the released partitions 0..m-1 in key order; every other row is dropped.
    renumber = np.full(len(keys), -1, dtype=np.int64)
    renumber[observed[chosen]] = np.arange(len(chosen), dtype=np.int64)
    cells = renumber[kept_partitions]
    rows = cells >= 0
    released = []
    for c in plan.components:
        if c.name == COUNT:
            values = tuple(noisy_counts[i] for i in chosen)
        else:
            exact = _component_values(c, kept.iloc[np.flatnonzero(rows)], cells[rows], len(chosen))
            values = _noised(c, exact, plan, len(chosen))
        released.append(ComponentRelease(c.name, values, plan.noise_std(c)))
    return NodeStatistics(tuple(released), len(chosen), released_keys)
