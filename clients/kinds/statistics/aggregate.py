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

import hashlib
import hmac
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

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

_CELL_DOMAIN = b"silobridge.statistics.cell\x00"
_ROW_DOMAIN = b"silobridge.statistics.row\x00"


def _keyed_hash(secret: bytes, domain: bytes, person: str, item: int) -> int:
    """The first 8 bytes of HMAC-SHA256(secret, domain | person | 0 | item), as an integer."""
    message = domain + person.encode("utf-8", "surrogatepass") + b"\x00" + str(item).encode()
    return int.from_bytes(hmac.digest(secret, message, hashlib.sha256)[:8], "big")


def bound_contributions(
    person_keys: Sequence[object],
    cell_index: npt.NDArray[np.int64],
    max_rows: int,
    max_groups: int,
    secret: bytes,
) -> npt.NDArray[np.bool_]:
    """Which rows to keep so that each person has at most `max_groups` distinct cells and
    at most `max_rows` rows overall.

    A person's kept rows depend only on that person's own rows and the node's secret:

    * the person's cells (among rows with a cell, i.e. not -1) are ranked by
      HMAC-SHA256(secret, person, cell) and the first `max_groups` kept;
    * the person's rows in kept cells are ranked by HMAC-SHA256(secret, person, k), k the
      row's position among that person's rows in the frame, and the first `max_rows` kept.

    So adding or removing one person changes no other person's kept rows (the neighbouring
    datasets differ in that person's rows alone), and the choice is a uniformly random
    subset of positions no one outside the node can predict, never "the first rows". Rows
    with cell -1 or a missing person key are never kept.

    Args:
        person_keys: Each row's person id.
        cell_index: Each row's cell, -1 for dropped rows.
        max_rows: Most rows kept per person, >= 1.
        max_groups: Most distinct cells kept per person, >= 1.
        secret: The node's secret key (see `clients.split_key.node_secret`).

    Returns:
        A boolean mask over the rows.
    """
    cells = np.asarray(cell_index, dtype=np.int64)
    if len(person_keys) != len(cells):
        raise InternalError(f"{len(person_keys)} person keys for {len(cells)} rows")
    if max_rows < 1 or max_groups < 1:
        raise InternalError(f"contribution bounds must be >= 1, got {max_rows}, {max_groups}")
    codes, uniques = pd.factorize(np.asarray(person_keys, dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    names = [str(u) for u in uniques]
    rows = pd.DataFrame({"person": codes, "cell": cells, "row": np.arange(len(cells))})
    # Position among the person's own rows, in frame order: whoever else is in the frame.
    rows["k"] = rows.groupby("person", sort=False).cumcount()
    rows = rows[(rows["cell"] >= 0) & (rows["person"] >= 0)]
    if rows.empty:
        return np.zeros(len(cells), dtype=bool)

    pairs = rows[["person", "cell"]].drop_duplicates()
    pairs = pairs.assign(
        h=[
            _keyed_hash(secret, _CELL_DOMAIN, names[p], c)
            for p, c in zip(pairs["person"], pairs["cell"], strict=True)
        ]
    ).sort_values(["person", "h", "cell"], kind="stable")
    kept_pairs = pairs[pairs.groupby("person", sort=False).cumcount() < max_groups]
    rows = rows.merge(kept_pairs[["person", "cell"]], on=["person", "cell"], how="inner")

    rows = rows.assign(
        h=[
            _keyed_hash(secret, _ROW_DOMAIN, names[p], k)
            for p, k in zip(rows["person"], rows["k"], strict=True)
        ]
    ).sort_values(["person", "h", "k"], kind="stable")
    kept_rows = rows[rows.groupby("person", sort=False).cumcount() < max_rows]
    keep = np.zeros(len(cells), dtype=bool)
    keep[kept_rows["row"].to_numpy()] = True
    return keep


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
