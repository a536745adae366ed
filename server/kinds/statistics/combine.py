"""The coordinator's combination of the nodes' noisy statistics into result cells.

Post-processing only: nothing here touches rows or draws noise that protects them, so it
costs no privacy. Per cell:

* counts, centred sums and squares, histogram bins: summed over nodes; noise variances add;
* sum = centred sum + midpoint * count;
* mean = midpoint + centred sum / count, variance = sumsq / count - (centred sum / count)^2
  (the population variance of the clamped values), each with a delta-method std, then
  clipped to what clamped values allow ([lower, upper]; [0, h^2]);
* quantiles read off the combined histogram (negative bins set to 0, the CDF interpolated
  linearly within bins), with a 95 % interval from a parametric bootstrap over the noise,
  widened to whole bins (interpolation cannot place a quantile within a bin);
* 95 % intervals: Gaussian noise, value +- 1.96 std; Laplace noise, the exact quantile of
  the sum of the nodes' Laplace noises for sums, and a conservative 2.118 std (one Laplace
  variable's) for means and variances. Counts and bins carry integer (discrete) noise: their
  half-width is the smallest whole number covering 95 % of the nodes' summed noise
  (`vocab.jobs.statistics_plan.noise_half_width`), which 1.96 std is not when noise is small.

With a privately chosen grouping the cells are the union of the partitions the nodes
released, in key order, and each sums only the nodes that released it (their noise
variances add): a node that did not release a partition had a small or zero noisy count
there, so such figures are biased down near the nodes' thresholds (`clamping_note` says so).

A cell is suppressed when its combined *noisy* count is below `spec.threshold`: deciding on
noisy figures is post-processing, deciding on a raw count would leak it. Every statistic of
a suppressed cell is suppressed. `Cell` keeps the computed figures (for tests and renderers
that need them), but `Cell.to_json_dict` blanks a suppressed cell's numbers to null, so an
analyst reading the result cannot use them by mistake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vocab.jobs.statistics import (
    Measure,
    NoiseKind,
    StatisticSpec,
    StatisticsSpec,
    bin_labels,
    format_number,
)
from vocab.jobs.statistics_plan import (
    COUNT,
    LAPLACE_Z95,
    Z95,
    ComponentKind,
    StatisticsPlan,
    noise_half_width,
    plan_statistics,
    quantile_edges,
    statistic_components,
)
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

__all__ = ["BOOTSTRAP_DRAWS", "Cell", "clamping_note", "combine"]

BOOTSTRAP_DRAWS = 1000
"""Parametric bootstrap replicates per quantile cell."""

_MIN_RATIO_COUNT = 1.0
"""Means and variances need a combined noisy count of at least one row."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Cell:
    """One figure of the result: a statistic in one group cell.

    Attributes:
        group: (column, label) per grouping; () without grouping.
        statistic: The measure ("count", "mean", ...).
        column: The measured column ("" for count).
        level: The histogram bin's label, the quantile (e.g. "0.5"), else "".
        value: The estimate (NaN when undefined, e.g. a mean over no rows).
        std: Its standard deviation from noise.
        lower: 95 % interval's lower end (noise only).
        upper: 95 % interval's upper end.
        suppressed: The cell's combined noisy count is below the job's threshold.
        count: The cell's combined noisy count.
    """

    group: tuple[tuple[str, str], ...]
    statistic: str
    column: str
    level: str
    value: float
    std: float
    lower: float
    upper: float
    suppressed: bool
    count: float

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; numbers of suppressed cells (and undefined ones) are null."""

        def number(x: float) -> float | None:
            return None if self.suppressed or not math.isfinite(x) else x

        return {
            "group": {column: label for column, label in self.group},
            "statistic": self.statistic,
            "column": self.column,
            "level": self.level,
            "value": number(self.value),
            "std": number(self.std),
            "lower": number(self.lower),
            "upper": number(self.upper),
            "suppressed": self.suppressed,
            "count": number(self.count),
        }


@dataclass(frozen=True)
class _Combined:
    """One component summed over nodes: values (cells x size) and per-node noise stds."""

    values: FloatArray
    stds: tuple[float, ...]

    @property
    def std(self) -> float:
        return math.sqrt(math.fsum(s * s for s in self.stds))


def _combine_components(
    plan: StatisticsPlan, releases: Sequence[NodeStatistics]
) -> dict[str, _Combined]:
    combined = {}
    for c in plan.components:
        parts = [r.by_name()[c.name] for r in releases]
        values = np.sum([np.asarray(p.values, dtype=np.float64) for p in parts], axis=0)
        combined[c.name] = _Combined(
            values.reshape(plan.cells, c.size), tuple(p.noise_std for p in parts)
        )
    return combined


def _interval(value: float, half: float) -> tuple[float, float]:
    return value - half, value + half


def _clip_interval(
    value: float, lower: float, upper: float, lo: float, hi: float
) -> tuple[float, float, float]:
    return float(np.clip(value, lo, hi)), max(lower, lo), min(upper, hi)


def _quantile_from(hist: FloatArray, edges: FloatArray, q: float) -> FloatArray:
    """q-quantile of histograms (rows of `hist`, negative bins as 0), linear within bins.

    NaN for a histogram with no positive mass.
    """
    counts = np.maximum(hist, 0.0)
    cdf = np.cumsum(counts, axis=-1)
    total = cdf[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        target = q * total
        # First bin whose cumulative count reaches the target.
        index = np.minimum((cdf < target).sum(axis=-1), counts.shape[-1] - 1)
        before = np.take_along_axis(cdf, index[..., None], -1) - np.take_along_axis(
            counts, index[..., None], -1
        )
        inside = np.take_along_axis(counts, index[..., None], -1)
        fraction = np.clip(np.where(inside > 0, (target - before) / inside, 0.5), 0.0, 1.0)
        x = edges[index] + fraction[..., 0] * (edges[index + 1] - edges[index])
    result: FloatArray = np.where(total[..., 0] > 0, x, np.nan)
    return result


def _quantile_cells(
    hist: FloatArray,
    stds: tuple[float, ...],
    edges: FloatArray,
    quantiles: tuple[float, ...],
    noise: NoiseKind,
    rng: np.random.Generator,
) -> list[tuple[float, float, float, float]]:
    """(value, std, lower, upper) of each quantile of one cell's combined histogram.

    The bootstrap redraws the nodes' noise around the combined histogram: each replicate
    adds independent noise of every node's std to every bin (normal, or Laplace of scale
    std / sqrt 2), and re-reads the quantile. The interval is the replicates' 2.5 % and
    97.5 % points, widened outward to the edges of the bins they fall in.
    """
    size = (BOOTSTRAP_DRAWS, hist.size)
    noise_draws = np.zeros(size)
    for std in stds:
        if noise is NoiseKind.GAUSSIAN:
            noise_draws += rng.normal(0.0, std, size)
        else:
            noise_draws += rng.laplace(0.0, std / math.sqrt(2.0), size)
    replicates = hist[None, :] + noise_draws
    found = []
    for q in quantiles:
        value = float(_quantile_from(hist, edges, q))
        draws = _quantile_from(replicates, edges, q)
        draws = draws[np.isfinite(draws)]
        if not math.isfinite(value) or draws.size < BOOTSTRAP_DRAWS // 2:
            found.append((value, math.nan, math.nan, math.nan))
            continue
        lo, hi = np.quantile(draws, [0.025, 0.975])
        lo_bin = min(int(np.searchsorted(edges, lo, side="right")) - 1, edges.size - 2)
        hi_bin = min(int(np.searchsorted(edges, hi, side="right")) - 1, edges.size - 2)
        found.append(
            (value, float(np.std(draws)), float(edges[max(lo_bin, 0)]), float(edges[hi_bin + 1]))
        )
    return found


def _ratio_half(std: float, noise: NoiseKind) -> float:
    return (Z95 if noise is NoiseKind.GAUSSIAN else LAPLACE_Z95) * std


def _statistic_cells(
    stat: StatisticSpec,
    cell: int,
    group: tuple[tuple[str, str], ...],
    parts: dict[str, _Combined],
    spec: StatisticsSpec,
    rng: np.random.Generator,
) -> list[Cell]:
    names = statistic_components(stat)
    count_part = parts[COUNT]
    n = float(count_part.values[cell, 0])
    suppressed = n < spec.threshold
    noise = spec.noise

    def make(level: str, value: float, std: float, lower: float, upper: float) -> Cell:
        return Cell(
            group, stat.measure.value, stat.column, level, value, std, lower, upper, suppressed, n
        )

    if stat.measure is Measure.COUNT:
        half = noise_half_width(count_part.stds, noise, integer=True)
        return [make("", n, count_part.std, *_interval(n, half))]
    if stat.measure is Measure.HISTOGRAM:
        hist = parts[names[ComponentKind.HISTOGRAM]]
        half = noise_half_width(hist.stds, noise, integer=True)
        return [
            make(label, float(v), hist.std, *_interval(float(v), half))
            for label, v in zip(bin_labels(stat.edges), hist.values[cell], strict=True)
        ]
    if stat.measure is Measure.QUANTILE:
        hist = parts[names[ComponentKind.HISTOGRAM]]
        edges = np.asarray(quantile_edges(stat))
        found = _quantile_cells(hist.values[cell], hist.stds, edges, stat.quantiles, noise, rng)
        return [
            make(format_number(q), *figures)
            for q, figures in zip(stat.quantiles, found, strict=True)
        ]
    sums = parts[names[ComponentKind.SUM]]
    s = float(sums.values[cell, 0])
    mid, h = (stat.lower + stat.upper) / 2.0, (stat.upper - stat.lower) / 2.0
    if stat.measure is Measure.SUM:
        value = s + mid * n
        std = math.sqrt(sums.std**2 + (mid * count_part.std) ** 2)
        scaled = [*sums.stds, *(abs(mid) * x for x in count_part.stds)]
        return [make("", value, std, *_interval(value, noise_half_width(scaled, noise)))]
    if n < _MIN_RATIO_COUNT:
        return [make("", math.nan, math.nan, math.nan, math.nan)]
    # The centred mean of clamped values lies in [-h, h]; the delta method is evaluated there.
    m = float(np.clip(s / n, -h, h))
    if stat.measure is Measure.MEAN:
        std = math.sqrt(sums.std**2 + (m * count_part.std) ** 2) / n
        value, lower, upper = _clip_interval(
            mid + m, *_interval(mid + m, _ratio_half(std, noise)), stat.lower, stat.upper
        )
        return [make("", value, std, lower, upper)]
    squares = parts[names[ComponentKind.SUMSQ]]
    q2 = float(np.clip(squares.values[cell, 0] / n, m * m, h * h))
    variance = q2 - m * m
    std = (
        math.sqrt(
            squares.std**2 + (2.0 * m * sums.std) ** 2 + ((q2 - 2.0 * m * m) * count_part.std) ** 2
        )
        / n
    )
    value, lower, upper = _clip_interval(
        variance, *_interval(variance, _ratio_half(std, noise)), 0.0, h * h
    )
    return [make("", value, std, lower, upper)]


def _private_cells(
    plan: StatisticsPlan, releases: Sequence[NodeStatistics]
) -> list[tuple[tuple[str, ...], dict[str, _Combined]]]:
    """Per partition any node released (in key order), its components summed over the
    nodes that released it, as one-cell parts."""
    found: dict[tuple[str, ...], list[tuple[dict[str, ComponentRelease], int]]] = {}
    for release in releases:
        named = release.by_name()
        for position, key in enumerate(release.keys):
            found.setdefault(key, []).append((named, position))
    cells = []
    for key in sorted(found):
        parts = {}
        for c in plan.components:
            slices = [
                (named[c.name], position * c.size, (position + 1) * c.size)
                for named, position in found[key]
            ]
            values = np.sum(
                [np.asarray(part.values[lo:hi], dtype=np.float64) for part, lo, hi in slices],
                axis=0,
            )
            parts[c.name] = _Combined(
                values.reshape(1, c.size), tuple(part.noise_std for part, _, _ in slices)
            )
        cells.append((key, parts))
    return cells


def combine(
    spec: StatisticsSpec,
    releases: Sequence[NodeStatistics],
    *,
    rng: np.random.Generator | None = None,
) -> list[Cell]:
    """The result cells of a statistics job from the nodes' releases.

    Cells come group cell by group cell (in `spec.cell_keys` order; with a privately chosen
    grouping, every partition any node released, in key order), and within one in the
    order the spec lists its statistics (a histogram's bins and a quantile's levels in
    order).

    Args:
        spec: The job.
        releases: One per answering node, each already parsed by `NodeStatistics.from_json`.
        rng: For the quantiles' bootstrap; by default seeded from `spec.seed`, so the same
            releases give the same result.

    Raises:
        ValueError: No release, or a release that does not have the job's layout.
    """
    if not releases:
        raise ValueError("no node released statistics for this job")
    plan: StatisticsPlan = plan_statistics(spec, 1)  # the layout is the same at any bound
    for release in releases:
        release.check_layout(plan)
    generator = rng if rng is not None else np.random.default_rng(spec.seed)
    cells: list[Cell] = []
    columns = tuple(g.column for g in spec.group_by)
    if spec.private:
        for labels, one in _private_cells(plan, releases):
            group = tuple(zip(columns, labels, strict=True))
            for stat in spec.statistics:
                cells.extend(_statistic_cells(stat, 0, group, one, spec, generator))
        return cells
    parts = _combine_components(plan, releases)
    for index, labels in enumerate(spec.cell_keys):
        group = tuple(zip(columns, labels, strict=True))
        for stat in spec.statistics:
            cells.extend(_statistic_cells(stat, index, group, parts, spec, generator))
    return cells


def clamping_note(spec: StatisticsSpec) -> str:
    """What an analyst must know to read the figures: clamping, bounding, what intervals mean."""
    bounds: dict[tuple[str, float, float], list[str]] = {}
    for stat in spec.statistics:
        if stat.measure is Measure.COUNT:
            continue
        lo, hi = (
            (stat.edges[0], stat.edges[-1])
            if stat.measure is Measure.HISTOGRAM
            else (stat.lower, stat.upper)
        )
        bounds.setdefault((stat.column, lo, hi), []).append(stat.measure.value)
    parts = []
    if bounds:
        parts.append(
            "Values were clamped to their declared bounds before aggregation: "
            + "; ".join(
                f"`{column}` to [{format_number(lo)}, {format_number(hi)}] ({', '.join(measures)})"
                for (column, lo, hi), measures in bounds.items()
            )
            + ". Clamping biases sums and means toward the bounds (and shrinks variances) "
            "whenever values lie outside them; quantiles outside the bounds are reported at "
            "the bounds."
        )
    parts.append(
        f"Each person contributed at most {spec.max_rows} row(s) in at most "
        f"{spec.max_groups} cell(s) where a node declares a person id (one row per person "
        "elsewhere); rows beyond that were dropped before aggregation."
    )
    if spec.private:
        private = ", ".join(f"`{g.column}`" for g in spec.group_by if g.private)
        parts.append(
            f"The groups of {private} were chosen privately at each node: a node released a "
            "group only where its noisy count passed that node's threshold (and at most "
            f"{spec.max_partitions} groups, those with the largest noisy counts). A group's "
            "figures combine only the nodes that released it; the others' counts there were "
            "small or zero and are left out, so counts and sums are biased down near the "
            "threshold (while one node's released count is biased up, having passed a noisy "
            "threshold), and groups small at every node are missing from the result."
        )
    parts.append(
        "The 95 % intervals cover the privacy noise only: not sampling error, clamping bias "
        "or rows dropped by contribution bounds. "
        f"Cells whose noisy count is below {format_number(spec.threshold)} are suppressed."
    )
    return " ".join(parts)
