"""The federated DP statistics job kind: its spec (payload of a job) and TOML parsing.

A statistics job asks every node for counts, sums, means, variances, histograms and
quantiles of public-bounded columns, optionally per group (declared keys of a categorical
column, bins of a numeric one, or the values of a column chosen privately at each node)
and over filtered rows. Everything the node needs to bound a person's influence - the
value bounds, the group keys, the bin edges, how many rows and groups a person may
contribute, how many partitions a node may release - is public and declared here, never
learned from the rows; a privately chosen grouping's labels are released only through DP
partition selection (`vocab.jobs.statistics_plan`). Pure: no pandas, numpy, torch or Flower.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from vocab.errors import InternalError, JobSpecError
from vocab.spec import ENVELOPE_KEYS, JobEnvelope, check_positive_int, job_table

__all__ = [
    "DEFAULT_QUANTILE_BINS",
    "DEFAULT_SELECTION_SHARE",
    "MAX_BINS",
    "MAX_CELLS",
    "MAX_LABEL_CHARS",
    "MAX_MAX_ROWS",
    "MAX_RELEASED_VALUES",
    "MAX_STATISTICS",
    "PRIVATE_SELECTION",
    "Grouping",
    "Measure",
    "NoiseKind",
    "RowFilter",
    "StatisticSpec",
    "StatisticsSpec",
    "bin_labels",
    "format_number",
    "parse_statistics_spec",
]

MAX_CELLS = 10_000
"""Most group cells (product of the groupings' key or bin counts) a job may ask for."""

MAX_STATISTICS = 32
"""Most statistics one job may list."""

MAX_LABEL_CHARS = 64
"""A privately chosen grouping's label is its value's text cut to this many characters."""

DEFAULT_SELECTION_SHARE = 0.5
"""Share of a job's delta spent on choosing partitions privately when the spec names none."""

PRIVATE_SELECTION = "private"
"""The `select` value of a grouping whose keys each node chooses privately."""

MAX_MAX_ROWS = 1000
"""Largest `max_rows` a job may declare: noise grows linearly with it."""

MIN_QUANTILE_BINS = 8
MAX_BINS = 1024
"""Most bins of a histogram or of a quantile's equal-width histogram."""

DEFAULT_QUANTILE_BINS = 64
"""Bins of a quantile's histogram when the spec gives none (`bins = 0`)."""

MAX_RELEASED_VALUES = 1_000_000
"""Most noisy values a node releases for one job (cells times values per cell, summed over
the job's released components): bounds a node's work and the size of its reply."""


class Measure(enum.Enum):
    """What a statistic measures in each cell."""

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    VARIANCE = "variance"
    HISTOGRAM = "histogram"
    QUANTILE = "quantile"


class NoiseKind(enum.Enum):
    """The noise a statistics job's releases carry."""

    GAUSSIAN = "gaussian"
    """(epsilon, delta)-DP, charged by its RDP curve; needs delta > 0."""
    LAPLACE = "laplace"
    """Pure epsilon-DP: valid at delta = 0."""


def format_number(value: float) -> str:
    """A number as labels spell it: integers without a decimal point, others exactly (repr).

    `repr` round-trips floats, so two different edges never share a label.
    """
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def bin_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    """Labels "lo-hi" of the bins between consecutive `edges`, e.g. "18-30"."""
    return tuple(f"{format_number(lo)}-{format_number(hi)}" for lo, hi in itertools.pairwise(edges))


@dataclass(frozen=True)
class StatisticSpec:
    """One statistic, computed in every cell.

    * `count`: rows in the cell; no column.
    * `sum`, `mean`, `variance`: of `column`'s values clamped to [`lower`, `upper`].
    * `histogram`: counts of `column`'s values in the bins between `edges` (half-open
      [lo, hi), the last closed); values outside are clamped into the first or last bin.
    * `quantile`: the `quantiles` of `column`, read off a noisy histogram of `bins` equal
      bins over [`lower`, `upper`] (values clamped into it). `bins = 0` means
      `DEFAULT_QUANTILE_BINS`.
    """

    measure: Measure
    column: str = ""
    lower: float = 0.0
    upper: float = 0.0
    edges: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    bins: int = 0

    def __post_init__(self) -> None:
        if self.measure is Measure.QUANTILE and self.bins == 0:
            object.__setattr__(self, "bins", DEFAULT_QUANTILE_BINS)

    @property
    def label(self) -> str:
        """How errors name the statistic, e.g. "mean of `earnings`"."""
        if self.measure is Measure.COUNT:
            return "count"
        return f"{self.measure.value} of `{self.column}`"


@dataclass(frozen=True)
class Grouping:
    """Cells along one column: its declared `keys` (matched on the value's `str`), bins
    between increasing `edges` labelled "lo-hi" (half-open [lo, hi), the last closed), or,
    when `private`, the column's values themselves (their `str`, cut to `MAX_LABEL_CHARS`),
    which each node chooses privately among those its rows hold.

    Rows whose value is not a key, or lies outside the edges, or is missing, are dropped.
    """

    column: str
    keys: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    private: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels of this grouping's cells, in declared order; () when `private`."""
        if self.private:
            return ()
        return self.keys if self.keys else bin_labels(self.edges)


@dataclass(frozen=True)
class RowFilter:
    """Which rows a job reads: those whose `str` value is one of `values` when any are
    listed, else those with `lower <= value <= upper`. Missing values never pass."""

    column: str
    values: tuple[str, ...] = ()
    lower: float = 0.0
    upper: float = 0.0


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _increasing(values: tuple[float, ...]) -> bool:
    return all(_finite(v) for v in values) and all(a < b for a, b in itertools.pairwise(values))


def _check_unused(stat: StatisticSpec, used: set[str]) -> None:
    defaults = StatisticSpec(stat.measure)
    for f in fields(StatisticSpec):
        if f.name in used or f.name == "measure":
            continue
        if getattr(stat, f.name) != getattr(defaults, f.name):
            raise JobSpecError(
                f"statistic {stat.label} sets `{f.name}`, which a {stat.measure.value} "
                "does not use",
                f"remove `{f.name}` from that [[statistics]] table",
            )


def _check_bounds(stat: StatisticSpec) -> None:
    if not (_finite(stat.lower) and _finite(stat.upper) and stat.lower < stat.upper):
        raise JobSpecError(
            f"statistic {stat.label} needs public bounds with lower < upper, got "
            f"[{stat.lower!r}, {stat.upper!r}]",
            "declare `lower` and `upper` in its [[statistics]] table: values are clamped to "
            "them, and they set the noise; a column without bounds cannot be summed",
        )


def _validate_statistic(stat: StatisticSpec) -> None:
    if not isinstance(stat.measure, Measure):
        raise JobSpecError(
            f"statistic measure {stat.measure!r} is unknown",
            f"use one of {', '.join(repr(m.value) for m in Measure)}",
        )
    if stat.measure is Measure.COUNT:
        _check_unused(stat, set())
        return
    if not isinstance(stat.column, str) or not stat.column:
        raise JobSpecError(
            f"statistic {stat.measure.value} needs a `column`",
            "name the column it measures in its [[statistics]] table",
        )
    if stat.measure in (Measure.SUM, Measure.MEAN, Measure.VARIANCE):
        _check_unused(stat, {"column", "lower", "upper"})
        _check_bounds(stat)
    elif stat.measure is Measure.HISTOGRAM:
        _check_unused(stat, {"column", "edges"})
        if not (2 <= len(stat.edges) <= MAX_BINS + 1 and _increasing(stat.edges)):
            raise JobSpecError(
                f"statistic {stat.label} needs 2 to {MAX_BINS + 1} increasing finite `edges`, "
                f"got {list(stat.edges)!r}",
                "e.g. edges = [0, 10, 20, 40, 60]; values outside are clamped into the end bins",
            )
    else:
        _check_unused(stat, {"column", "lower", "upper", "quantiles", "bins"})
        _check_bounds(stat)
        qs = stat.quantiles
        if not qs or not all(_finite(q) and 0 < q < 1 for q in qs) or not _increasing(qs):
            raise JobSpecError(
                f"statistic {stat.label} needs increasing `quantiles` strictly between 0 and "
                f"1, got {list(qs)!r}",
                "e.g. quantiles = [0.25, 0.5, 0.75]",
            )
        if (
            isinstance(stat.bins, bool)
            or not isinstance(stat.bins, int)
            or not MIN_QUANTILE_BINS <= stat.bins <= MAX_BINS
        ):
            raise JobSpecError(
                f"statistic {stat.label} has `bins` = {stat.bins!r}, not in "
                f"[{MIN_QUANTILE_BINS}, {MAX_BINS}]",
                f"leave `bins` out for {DEFAULT_QUANTILE_BINS} equal bins over [lower, upper]",
            )


def _validate_grouping(group: Grouping) -> None:
    where = f"[group_by.{group.column}]"
    if not isinstance(group.column, str) or not group.column:
        raise JobSpecError("a grouping has no column", "name it: [group_by.<column>]")
    if not isinstance(group.private, bool):
        raise JobSpecError(f"{where} `private` must be true or false, got {group.private!r}")
    if group.private:
        if group.keys or group.edges:
            raise JobSpecError(
                f'{where} sets select = "{PRIVATE_SELECTION}" and also `keys` or `edges`',
                "keep one: declared keys or edges, or keys chosen privately by each node",
            )
        return
    if bool(group.keys) == bool(group.edges):
        raise JobSpecError(
            f"{where} needs either `keys` or `edges`, not {'both' if group.keys else 'neither'}",
            'list the categories (keys = ["a", "b"]) or bin edges (edges = [0, 10, 20])',
        )
    if group.keys:
        if not all(isinstance(k, str) and k for k in group.keys):
            raise JobSpecError(f"{where} `keys` must be non-empty strings", 'e.g. keys = ["a"]')
        if len(set(group.keys)) != len(group.keys):
            raise JobSpecError(f"{where} lists a key twice", "make `keys` unique")
        if len(group.keys) > MAX_CELLS:
            raise JobSpecError(f"{where} has more than {MAX_CELLS} keys", "list fewer keys")
    elif not (2 <= len(group.edges) <= MAX_CELLS + 1 and _increasing(group.edges)):
        raise JobSpecError(
            f"{where} needs at least 2 increasing finite `edges`, got {list(group.edges)!r}",
            "e.g. edges = [21, 30, 40, 50, 65]; bins are [lo, hi), the last one closed",
        )


def _validate_filter(row_filter: RowFilter) -> None:
    where = f"[filters.{row_filter.column}]"
    if not isinstance(row_filter.column, str) or not row_filter.column:
        raise JobSpecError("a filter has no column", "name it: [filters.<column>]")
    if row_filter.values:
        if not all(isinstance(v, str) for v in row_filter.values):
            raise JobSpecError(f"{where} `values` must be strings", 'e.g. values = ["a", "b"]')
        if (row_filter.lower, row_filter.upper) != (0.0, 0.0):
            raise JobSpecError(
                f"{where} sets both `values` and `lower`/`upper`", "keep one of the two"
            )
        return
    lo, hi = row_filter.lower, row_filter.upper
    if not (_finite(lo) and _finite(hi) and lo <= hi):
        raise JobSpecError(
            f"{where} needs `values`, or finite `lower` <= `upper`, got [{lo!r}, {hi!r}]",
            'list the kept values (values = ["a"]) or the kept range (lower = 0, upper = 10)',
        )


def _statistic_values(stat: StatisticSpec) -> int:
    """Noisy values per cell the statistic needs beyond the count (an upper bound)."""
    if stat.measure is Measure.HISTOGRAM:
        return len(stat.edges) - 1
    if stat.measure is Measure.QUANTILE:
        return stat.bins
    return {Measure.COUNT: 0, Measure.SUM: 1, Measure.MEAN: 1, Measure.VARIANCE: 2}[stat.measure]


@dataclass(frozen=True, kw_only=True)
class StatisticsSpec(JobEnvelope):
    """A federated DP statistics job; `epsilon`/`delta` is each node's guarantee for it.

    Attributes:
        statistics: What to compute in every cell (1 to `MAX_STATISTICS`).
        group_by: Groupings whose cartesian product makes the cells (none: one cell).
        filters: Which rows count at all.
        max_rows: Most rows one person contributes when the node declares a person id
            (otherwise every row is its own person).
        max_groups: Most distinct cells one person contributes to.
        noise: Gaussian ((epsilon, delta)-DP) or Laplace (pure epsilon-DP).
        threshold: Cells whose combined noisy count is below it are suppressed.
        max_partitions: With a private grouping, the most partitions (full cell keys over
            all groupings) a node releases, 1 to `MAX_CELLS`; 0 otherwise.
        selection_share: With a private grouping, the share of `delta` spent on choosing
            partitions, in (0, 1); otherwise it stays at `DEFAULT_SELECTION_SHARE`.
    """

    KIND: ClassVar[str] = "statistics"

    statistics: tuple[StatisticSpec, ...]
    group_by: tuple[Grouping, ...] = ()
    filters: tuple[RowFilter, ...] = ()
    max_rows: int = 1
    max_groups: int = 1
    noise: NoiseKind = NoiseKind.GAUSSIAN
    threshold: float = 0.0
    max_partitions: int = 0
    selection_share: float = DEFAULT_SELECTION_SHARE

    def validate_payload(self) -> None:
        _validate(self)

    @property
    def private(self) -> bool:
        """Whether any grouping's keys are chosen privately at each node."""
        return any(g.private for g in self.group_by)

    @property
    def selection_delta(self) -> float:
        """The delta choosing partitions consumes (`selection_share` of `delta`); 0 when no
        grouping is private."""
        return self.selection_share * self.delta if self.private else 0.0

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column read: group-by, filter, then measured columns, each once."""
        read = (
            *(g.column for g in self.group_by),
            *(f.column for f in self.filters),
            *(s.column for s in self.statistics if s.column),
        )
        return tuple(dict.fromkeys(read))

    @property
    def open_only_columns(self) -> tuple[str, ...]:
        """Group-by and filter columns: a node requires class `open` for these, because
        which cells exist and which rows pass is visible in the output itself."""
        return tuple(dict.fromkeys((*(g.column for g in self.group_by), *self.filter_columns)))

    @property
    def filter_columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.filters)

    @property
    def cell_keys(self) -> tuple[tuple[str, ...], ...]:
        """Each cell's labels, one per grouping: the cartesian product in declared order
        (the first grouping varies slowest). Without grouping, the single cell `()`.

        Raises:
            InternalError: A grouping is private: each node chooses its own partitions.
        """
        if self.private:
            raise InternalError("bug: a privately chosen layout has no declared cell keys")
        return tuple(itertools.product(*(g.labels for g in self.group_by)))

    @property
    def cells(self) -> int:
        """Most cells a node releases: the product of the groupings' label counts (1
        without any), or `max_partitions` when a grouping is private."""
        if self.private:
            return self.max_partitions
        return math.prod(len(g.labels) for g in self.group_by)


def _validate(spec: StatisticsSpec) -> None:
    if not isinstance(spec.noise, NoiseKind):
        raise JobSpecError(
            f"job `noise` {spec.noise!r} is unknown", 'use noise = "gaussian" or "laplace"'
        )
    if spec.noise is NoiseKind.GAUSSIAN and spec.delta <= 0:
        raise JobSpecError(
            "job `delta` must be > 0 with Gaussian noise: it gives (epsilon, delta)-DP only",
            'use noise = "laplace" for pure DP with delta = 0, or a delta well below 1/rows',
        )
    if not 1 <= len(spec.statistics) <= MAX_STATISTICS:
        raise JobSpecError(
            f"job lists {len(spec.statistics)} statistics; 1 to {MAX_STATISTICS} are allowed",
            "add [[statistics]] tables (measure = ...), at most "
            f"{MAX_STATISTICS}, or split the job",
        )
    for stat in spec.statistics:
        _validate_statistic(stat)
    if len(set(spec.statistics)) != len(spec.statistics):
        raise JobSpecError("job lists the same statistic twice", "remove the duplicate")
    _validate_cells(spec)
    _validate_selection(spec)
    check_positive_int(spec.max_rows, "max_rows", MAX_MAX_ROWS)
    check_positive_int(spec.max_groups, "max_groups", spec.cells)
    t = spec.threshold
    if not (_finite(t) and t >= 0):
        raise JobSpecError(
            f"job `threshold` must be a finite number >= 0, got {t!r}",
            "cells whose noisy count falls below it are suppressed; 0 suppresses none "
            "but negative counts",
        )
    per_cell = 1 + sum(_statistic_values(s) for s in spec.statistics)
    if spec.cells * per_cell > MAX_RELEASED_VALUES:
        raise JobSpecError(
            f"job would release up to {spec.cells * per_cell} noisy values per node, above "
            f"{MAX_RELEASED_VALUES}",
            "group by fewer keys or bins, or ask for fewer histogram or quantile bins",
        )


_ONLY_PRIVATE_FIX = (
    f'remove it, or have the nodes choose a grouping\'s keys: select = "{PRIVATE_SELECTION}"'
)


def _validate_selection(spec: StatisticsSpec) -> None:
    share = spec.selection_share
    if not spec.private:
        if spec.max_partitions != 0:
            raise JobSpecError(
                "job sets `max_partitions`, which only a privately chosen grouping uses",
                _ONLY_PRIVATE_FIX,
            )
        if share != DEFAULT_SELECTION_SHARE:
            raise JobSpecError(
                "job sets `selection_share`, which only a privately chosen grouping uses",
                _ONLY_PRIVATE_FIX,
            )
        return
    private = ", ".join(f"`{g.column}`" for g in spec.group_by if g.private)
    if spec.noise is not NoiseKind.GAUSSIAN:
        raise JobSpecError(
            f"job chooses the keys of {private} privately, which needs Gaussian noise, not "
            f"{spec.noise.value}",
            'use noise = "gaussian" with a delta > 0 (partitions are chosen by thresholding '
            "Gaussian noisy counts), or declare the keys",
        )
    if isinstance(spec.max_partitions, bool) or not isinstance(spec.max_partitions, int):
        raise JobSpecError(
            f"job `max_partitions` must be an integer, got {spec.max_partitions!r}",
            f"set max_partitions to 1 to {MAX_CELLS} in [job]",
        )
    if not 1 <= spec.max_partitions <= MAX_CELLS:
        raise JobSpecError(
            f"job chooses the keys of {private} privately and needs `max_partitions` from 1 "
            f"to {MAX_CELLS}, got {spec.max_partitions!r}",
            "set max_partitions in [job]: the most groups (full cell keys over every "
            "grouping) a node may release; those with the largest noisy counts are kept",
        )
    if not (_finite(share) and 0.0 < share < 1.0):
        raise JobSpecError(
            f"job `selection_share` must lie strictly between 0 and 1, got {share!r}",
            f"it is the share of `delta` spent on choosing groups; leave it out for "
            f"{DEFAULT_SELECTION_SHARE}",
        )


def _validate_cells(spec: StatisticsSpec) -> None:
    seen: set[str] = set()
    for group in spec.group_by:
        _validate_grouping(group)
        if group.column in seen:
            raise JobSpecError(
                f"job groups by `{group.column}` twice", "list each grouping column once"
            )
        seen.add(group.column)
    if not spec.private and spec.cells > MAX_CELLS:
        sizes = " x ".join(str(len(g.labels)) for g in spec.group_by)
        raise JobSpecError(
            f"job groups into {spec.cells} cells ({sizes}), above {MAX_CELLS}",
            "group by fewer columns, keys or bins",
        )
    filtered: set[str] = set()
    for row_filter in spec.filters:
        _validate_filter(row_filter)
        if row_filter.column in filtered:
            raise JobSpecError(
                f"job filters on `{row_filter.column}` twice", "merge the two filters"
            )
        filtered.add(row_filter.column)


_JOB_KEYS = ENVELOPE_KEYS | {
    "max_rows",
    "max_groups",
    "noise",
    "threshold",
    "max_partitions",
    "selection_share",
}
_STATISTIC_KEYS = {f.name for f in fields(StatisticSpec)}
_GROUP_KEYS = {"keys", "edges", "select"}
_FILTER_KEYS = {"values", "lower", "upper"}
_TABLES = {"job", "statistics", "group_by", "filters"}


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise JobSpecError(f"{where} must be a number, got {raw!r}", "write it as e.g. 0 or 60.0")
    return float(raw)


def _numbers(raw: Any, where: str) -> tuple[float, ...]:
    if not isinstance(raw, list):
        raise JobSpecError(f"{where} must be a list of numbers, got {raw!r}", "e.g. [0, 10, 20]")
    return tuple(_number(v, where) for v in raw)


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise JobSpecError(
            f"{where} must be a list of strings, got {raw!r}",
            'quote every entry, numbers too: ["1", "2"] (values are matched as text)',
        )
    return tuple(raw)


def _table(raw: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise JobSpecError(f"{where} must be a table", "see docs/job-spec.md")
    unknown = set(raw) - allowed
    if unknown:
        raise JobSpecError(
            f"{where} has unknown key(s) {sorted(unknown)}", f"allowed keys: {sorted(allowed)}"
        )
    return raw


def _enum_value(enum_type: type[enum.Enum], where: str, raw: Any) -> Any:
    try:
        return enum_type(raw)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise JobSpecError(f"{where} = {raw!r} is not allowed", f"use one of {allowed}") from None


def _parse_statistic(index: int, raw: Any) -> StatisticSpec:
    where = f"[[statistics]] #{index + 1}"
    table = _table(raw, where, _STATISTIC_KEYS)
    if "measure" not in table:
        raise JobSpecError(
            f"{where} has no `measure`", f"set measure to one of {[m.value for m in Measure]}"
        )
    measure = _enum_value(Measure, f"{where} `measure`", table["measure"])
    column = table.get("column", "")
    if not isinstance(column, str):
        raise JobSpecError(
            f"{where} `column` must be a string, got {column!r}", 'e.g. column = "earnings"'
        )
    bins = table.get("bins", 0)
    if isinstance(bins, bool) or not isinstance(bins, int):
        raise JobSpecError(
            f"{where} `bins` must be an integer, got {bins!r}",
            f"use {MIN_QUANTILE_BINS} to {MAX_BINS}, or leave it out",
        )
    return StatisticSpec(
        measure=measure,
        column=column,
        lower=_number(table.get("lower", 0.0), f"{where} `lower`"),
        upper=_number(table.get("upper", 0.0), f"{where} `upper`"),
        edges=_numbers(table.get("edges", []), f"{where} `edges`"),
        quantiles=_numbers(table.get("quantiles", []), f"{where} `quantiles`"),
        bins=bins,
    )


def _parse_grouping(column: str, raw: Any) -> Grouping:
    where = f"[group_by.{column}]"
    table = _table(raw, where, _GROUP_KEYS)
    select = table.get("select")
    if select is not None and select != PRIVATE_SELECTION:
        raise JobSpecError(
            f"{where} `select` = {select!r} is not allowed",
            f'use select = "{PRIVATE_SELECTION}" to have each node choose the keys '
            "privately, or list `keys` or `edges` instead",
        )
    return Grouping(
        column=column,
        keys=_strings(table.get("keys", []), f"{where} `keys`"),
        edges=_numbers(table.get("edges", []), f"{where} `edges`"),
        private=select == PRIVATE_SELECTION,
    )


def _parse_filter(column: str, raw: Any) -> RowFilter:
    where = f"[filters.{column}]"
    table = _table(raw, where, _FILTER_KEYS)
    return RowFilter(
        column=column,
        values=_strings(table.get("values", []), f"{where} `values`"),
        lower=_number(table.get("lower", 0.0), f"{where} `lower`"),
        upper=_number(table.get("upper", 0.0), f"{where} `upper`"),
    )


def parse_statistics_spec(doc: dict[str, Any], *, source: str = "job spec") -> StatisticsSpec:
    """Build a validated `StatisticsSpec` from a parsed TOML document.

    The document has a `[job]` table (the envelope keys, `kind = "statistics"`, and
    `max_rows`, `max_groups`, `noise`, `threshold`, and with a private grouping
    `max_partitions` and `selection_share`), an array `[[statistics]]`, and optional
    `[group_by.<column>]` (`keys`, `edges` or `select = "private"`) and
    `[filters.<column>]` (`values`, or `lower`/`upper`) tables, grouped in the order they
    are written.

    Raises:
        JobSpecError: naming the bad table or key and how to fix it.
    """
    job = job_table(doc, source=source, kind=StatisticsSpec.KIND, tables=_TABLES, keys=_JOB_KEYS)
    statistics = doc.get("statistics")
    if not isinstance(statistics, list) or not statistics:
        raise JobSpecError(
            f"{source}: no [[statistics]] tables",
            'add at least one, e.g. [[statistics]] with measure = "count"',
        )
    kwargs: dict[str, Any] = {k: v for k, v in job.items() if k != "kind"}
    if "noise" in kwargs:
        kwargs["noise"] = _enum_value(NoiseKind, "[job] `noise`", kwargs["noise"])
    if "threshold" in kwargs:
        kwargs["threshold"] = _number(kwargs["threshold"], "[job] `threshold`")
    if "selection_share" in kwargs:
        kwargs["selection_share"] = _number(kwargs["selection_share"], "[job] `selection_share`")
    kwargs["statistics"] = tuple(_parse_statistic(i, s) for i, s in enumerate(statistics))
    for name, parse, field_name in (
        ("group_by", _parse_grouping, "group_by"),
        ("filters", _parse_filter, "filters"),
    ):
        tables = doc.get(name, {})
        if not isinstance(tables, dict):
            raise JobSpecError(
                f"{source}: `{name}` must be tables [{name}.<column>]", "see docs/job-spec.md"
            )
        kwargs[field_name] = tuple(parse(column, raw) for column, raw in tables.items())
    if "selection_share" in job and not any(g.private for g in kwargs["group_by"]):
        raise JobSpecError(
            "[job] sets `selection_share`, which only a privately chosen grouping uses",
            _ONLY_PRIVATE_FIX,
        )
    try:
        return StatisticsSpec(**kwargs)
    except TypeError as err:
        raise JobSpecError(f"{source}: {err}", "see docs/job-spec.md") from err
