"""Plan and price a statistics job from public figures only: its noisy components, their
sensitivities, the noise calibrated to the job's (epsilon, delta), and what it buys.

A statistics job is answered through *components*, each one vector released once with
noise, over all cells (cell-major, `size` values per cell):

* `count`: rows per cell; always released (suppression and every mean need it).
* `sum` of a column: values clamped to [lower, upper] and centred on the midpoint, so each
  lies in [-h, h] with h = (upper - lower) / 2. Centring halves the sensitivity of a sum
  over [0, upper] and makes a mean's noise independent of where the bounds sit.
* `sumsq` of a column: squares of the centred clamped values, in [0, h^2] (variances).
* `histogram` of a column: counts per bin per cell, over a histogram's declared edges or a
  quantile's `bins` equal bins over [lower, upper]; values clamped into the end bins.

Components are deduplicated by name: a mean and a variance of one column with the same
bounds share its `sum` and the `count`.

Sensitivity (neighbouring datasets differ by adding or removing one person). The node
bounds every person to at most `contribution` rows overall (`spec.max_rows` when it
declares a person id, else 1: every row is a person). One row lands in one cell and, for a
histogram, one bin, and changes that one value by at most a (count, histogram: 1; sum: h;
sumsq: h^2). Removing a person changes the component vector v by d with ``||d||_1 <=
contribution * a``, and ``||d||_2 <= ||d||_1``, so both the L1 and the L2 sensitivity are
``contribution * a`` whichever cells and bins the rows fall in (all rows in one value is the
worst case for L2, where the two coincide). `max_groups` further limits how many cells a
person touches; it does not lower these worst cases.

Noise. Gaussian: every component gets i.i.d. N(0, (sigma * Delta_c)^2) per value, a
Gaussian mechanism with noise multiplier sigma whose RDP is alpha / (2 sigma^2) (I.
Mironov, "Renyi Differential Privacy", CSF 2017, Proposition 7); k components compose
additively (same paper, Proposition 1), which is `GaussianEvent(sigma, count=k)`. Laplace:
every value gets Laplace noise of scale b_c = s * Delta_c (L1), which is (1 / s)-DP per
component (C. Dwork and A. Roth, "The Algorithmic Foundations of Differential Privacy",
2014, Theorem 3.6) and k / s in total (Theorem 3.16): `LaplaceEvent(s, count=k)`, pure DP.
Integer components draw discrete Gaussian or Laplace noise at the same scale, whose privacy
loss is at most the continuous mechanism's (see `clients.secure_noise`).

Private partition selection (a grouping with `select = "private"`; Gaussian noise only).
The cells are then *partitions*: tuples of labels, one per grouping, a private column's
label being its value's text. A node computes the components for every partition its kept
rows make (after contribution bounding), adds the noise above to every one, and releases
a partition only if its noisy count exceeds

    tau = Delta_inf + 1 + sigma_count * z,   z = Phi^-1(1 - delta_T / L0)   (z >= 0),

keeping the `max_partitions` largest noisy counts when more pass (ties by label). Here
Delta_inf = contribution bounds a person's rows in one partition, L0 = `max_groups` bounds
the partitions a person's kept rows touch (at a node without a person id every row is a
person, touching one), sigma_count = sigma * contribution is the count's noise std, and
delta_T = `selection_share` * delta. This is
Gaussian thresholding (A. Korolova, K. Kenthapadi, N. Mishra and A. Ntoulas, "Releasing
search queries and clicks privately", WWW 2009; analysed exactly by J. Wilkins, D. Kifer,
D. Zhang and B. Karrer, "Exact privacy analysis of the Gaussian sparse histogram
mechanism", 2024), with one change: counts carry *discrete* Gaussian noise, whose tail at
an integer m is above the continuous one (sigma = 1: P[X >= 2] = 0.059 against 0.050 at
1.645 sigma), but at most the continuous tail at m - 1 (C. Canonne, G. Kamath and T.
Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, Proposition 25);
the "+ 1" pays for that.

Why it is delta_T-approximately the Gaussian mechanism. Let D hold one person more than D'
and U' be the partitions of D'. A partition only that person makes has a true count c in
[1, Delta_inf], so it passes with probability P[X > tau - c] <= P[X >= floor(tau - c) + 1]
<= P[Y >= floor(tau - c)] <= P[Y >= sigma_count z] = delta_T / L0 (Y continuous), and
there are at most L0 of them: the event E that none passes has P[E] >= 1 - delta_T, and
it depends only on the noise of those partitions. On E the node's output is f(G_U'(D)):
the Gaussian mechanism over the components of the partitions in U' (the same vector the
plan prices, with the same L2 sensitivities, since the person's rows in U' are bounded as
before), followed by thresholding and the top-k cut, which are post-processing (dropping
partitions outside the top k does not change the top k). At D' the output is exactly
f(G_U'(D')). So the release is within total variation delta_T of f(G_U'(D)), and at
least (1 - delta_T) times it as a measure; either way round the hockey-stick divergence
at e^eps grows by at most delta_T over the Gaussian's (this is approximate zCDP: M. Bun
and T. Steinke, "Concentrated Differential Privacy", TCC 2016, Definition 8.1). Across
releases the bad events add up (a union bound; ibid., Section 8), so the ledger converts
the composed RDP curves at delta less every delta_T (`vocab.accounting.epsilon_spent`).
The plan charges `GaussianThresholdEvent(sigma, count=k, delta=delta_T)`, sigma
calibrated so that it costs at most the job's epsilon at its delta.

Neighbouring datasets must leave everyone else's kept rows alone, so the contribution
bound ranks a person's partitions by a keyed hash of a number derived from the partition's
labels alone, never of an index that depends on which other partitions exist.
"""

from __future__ import annotations

import enum
import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vocab.accounting import epsilon_spent, gaussian_noise_multiplier, laplace_scale
from vocab.errors import ConfigError, InternalError, JobSpecError
from vocab.jobs.statistics import (
    Measure,
    NoiseKind,
    StatisticSpec,
    StatisticsSpec,
    format_number,
)
from vocab.privacy import GaussianEvent, GaussianThresholdEvent, LaplaceEvent, PrivacyEvent

__all__ = [
    "COUNT",
    "LAPLACE_Z95",
    "REFERENCE_COUNT",
    "Z95",
    "Component",
    "ComponentKind",
    "PartitionSelection",
    "StatisticsPlan",
    "laplace_sum_half_width",
    "noise_half_width",
    "plan_statistics",
    "quantile_edges",
    "selection_threshold",
    "statistic_components",
]

Z95 = 1.959963984540054
"""The standard normal's 97.5 % quantile: a Gaussian's 95 % half-width in stds."""

LAPLACE_Z95 = math.log(20.0) / math.sqrt(2.0)
"""One Laplace variable's 95 % half-width in stds (b ln 20 over sqrt(2) b), about 2.118.

A sum of independent Laplace variables is closer to Gaussian and needs fewer stds; this is
the conservative factor where the exact one is too costly to compute (ratios per cell)."""

REFERENCE_COUNT = 1000.0
"""Cell count at which `expected_half_widths` states the half-width of means and variances."""

COUNT = "count"
"""Name of the count component, which every plan releases."""


class ComponentKind(enum.StrEnum):
    """What a component's values are."""

    COUNT = "count"
    SUM = "sum"
    SUMSQ = "sumsq"
    HISTOGRAM = "histogram"

    @property
    def is_integer(self) -> bool:
        """Whether the exact values are integers (noised with discrete samplers)."""
        return self in (ComponentKind.COUNT, ComponentKind.HISTOGRAM)


@dataclass(frozen=True)
class Component:
    """One noisy vector a node releases: `size` values per cell, over all cells.

    Attributes:
        name: Unique within a plan; encodes the column and its bounds or edges.
        kind: What the values are.
        column: The measured column ("" for the count).
        size: Values per cell: 1, or the number of histogram bins.
        sensitivity: L1 (Laplace) and L2 (Gaussian) sensitivity of the whole vector at
            the plan's contribution; the two coincide here.
        lower: Clamping lower bound (sum, sumsq; a quantile's histogram range).
        upper: Clamping upper bound.
        edges: Histogram bin edges (declared, or equal bins over [lower, upper]).
    """

    name: str
    kind: ComponentKind
    column: str
    size: int
    sensitivity: float
    lower: float = 0.0
    upper: float = 0.0
    edges: tuple[float, ...] = ()

    @property
    def midpoint(self) -> float:
        """Where sums and squares are centred."""
        return (self.lower + self.upper) / 2.0

    @property
    def half_range(self) -> float:
        """h: a centred clamped value lies in [-h, h]."""
        return (self.upper - self.lower) / 2.0


def quantile_edges(stat: StatisticSpec) -> tuple[float, ...]:
    """The `bins` equal bins' edges over [lower, upper] of a quantile statistic."""
    return tuple(float(e) for e in np.linspace(stat.lower, stat.upper, stat.bins + 1))


def _bounds_name(kind: ComponentKind, column: str, lower: float, upper: float) -> str:
    return f"{kind.value}:{column}:{format_number(lower)}:{format_number(upper)}"


def _histogram_name(stat: StatisticSpec) -> str:
    if stat.measure is Measure.QUANTILE:
        # Equal bins are named by range and bin count: 1024 edges would make a long name.
        bounds = _bounds_name(ComponentKind.HISTOGRAM, stat.column, stat.lower, stat.upper)
        return f"{bounds}/{stat.bins}"
    return f"histogram:{stat.column}:{'|'.join(format_number(e) for e in stat.edges)}"


def statistic_components(stat: StatisticSpec) -> dict[ComponentKind, str]:
    """The names of the components `stat` is computed from, by kind (count always)."""
    names = {ComponentKind.COUNT: COUNT}
    if stat.measure in (Measure.SUM, Measure.MEAN, Measure.VARIANCE):
        names[ComponentKind.SUM] = _bounds_name(
            ComponentKind.SUM, stat.column, stat.lower, stat.upper
        )
    if stat.measure is Measure.VARIANCE:
        names[ComponentKind.SUMSQ] = _bounds_name(
            ComponentKind.SUMSQ, stat.column, stat.lower, stat.upper
        )
    if stat.measure in (Measure.HISTOGRAM, Measure.QUANTILE):
        names[ComponentKind.HISTOGRAM] = _histogram_name(stat)
    return names


def _components_of(stat: StatisticSpec, contribution: int) -> list[Component]:
    h = (stat.upper - stat.lower) / 2.0
    found = []
    for kind, name in statistic_components(stat).items():
        if kind is ComponentKind.COUNT:
            found.append(Component(name, kind, "", 1, float(contribution)))
        elif kind is ComponentKind.SUM:
            found.append(
                Component(name, kind, stat.column, 1, contribution * h, stat.lower, stat.upper)
            )
        elif kind is ComponentKind.SUMSQ:
            found.append(
                Component(name, kind, stat.column, 1, contribution * h * h, stat.lower, stat.upper)
            )
        else:
            edges = quantile_edges(stat) if stat.measure is Measure.QUANTILE else stat.edges
            found.append(
                Component(
                    name,
                    kind,
                    stat.column,
                    len(edges) - 1,
                    float(contribution),
                    edges[0],
                    edges[-1],
                    edges,
                )
            )
    return found


def _gil_pelaez_mass(
    x: float, t: npt.NDArray[np.float64], kernel: npt.NDArray[np.float64], origin: float
) -> float:
    """P(|S| <= x) = (2 / pi) * integral_0^inf sin(t x) phi(t) / t dt, by Simpson's rule.

    `kernel` holds the rule's weights times phi(t) / t times 2 / pi, and 0 at t = 0, where
    the integrand's limit is x: that point enters as x times `origin`, its own weight.
    """
    return float(np.sum(np.sin(t * x) * kernel)) + x * origin


def _simpson_weights(n: int, step: float) -> npt.NDArray[np.float64]:
    weights = np.full(n + 1, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return weights * step / 3.0


@functools.lru_cache(maxsize=256)
def _laplace_sum_half_width(scales: tuple[float, ...], level: float) -> float:
    b = np.asarray(scales, dtype=np.float64)
    bmax = float(b[-1])
    std = math.sqrt(2.0 * float(np.sum(b * b)))
    # The sum's quantile lies between the Gaussian's and one Laplace's at the same std
    # (bracketed generously); checked below rather than trusted.
    low, high = 0.5 * std, 4.0 * std
    # Cut where the rest of the integral is below 5e-7: with |sin| <= 1 and phi(t) <=
    # 1 / (b_max t)^2, or <= 1 / (b_max b_2 t^2)^2 using the second largest scale too.
    t_max = min(1000.0 / bmax, (2.5e6) ** 0.25 / math.sqrt(bmax * float(b[-2])))
    step = min(0.05 / bmax, 0.2 / high)
    n = math.ceil(t_max / step)
    n += n % 2  # Simpson's rule needs an even number of intervals
    t = np.linspace(0.0, n * step, n + 1)
    phi = np.ones_like(t)
    for scale, times in zip(*np.unique(b, return_counts=True), strict=True):
        phi *= (1.0 + (scale * t) ** 2) ** -float(times)
    weights = _simpson_weights(n, step) * (2.0 / math.pi)
    kernel = np.zeros_like(t)
    kernel[1:] = weights[1:] * phi[1:] / t[1:]
    origin = float(weights[0])
    if not (
        _gil_pelaez_mass(low, t, kernel, origin) < level < _gil_pelaez_mass(high, t, kernel, origin)
    ):
        raise InternalError(f"Laplace-sum quantile of scales {scales} outside its bracket")
    while high - low > 1e-6 * high:
        mid = (low + high) / 2.0
        if _gil_pelaez_mass(mid, t, kernel, origin) < level:
            low = mid
        else:
            high = mid
    return high * (1.0 + 1e-4)


def laplace_sum_half_width(scales: Sequence[float], level: float = 0.95) -> float:
    """x with P(|L_1 + ... + L_n| <= x) = `level` for independent Laplace(0, scales[i]).

    One variable: b ln(1 / (1 - level)). Several: the sum S is symmetric with
    characteristic function phi(t) = prod 1 / (1 + b_i^2 t^2), and by the Gil-Pelaez
    inversion formula (J. Gil-Pelaez, "Note on the inversion theorem", Biometrika 1951)
    P(|S| <= x) = (2 / pi) int_0^inf sin(t x) phi(t) / t dt. The integral is cut where the
    rest is below 5e-7 and evaluated with Simpson's rule at ~30 points per period of
    sin(t x); x is bisected to a relative 1e-6 and returned padded by a relative 1e-4, so
    an interval never comes out narrower than stated. Remembered per set of scales.

    Raises:
        ValueError: `level` is not in (0, 1) or a scale is not finite.
    """
    positive = tuple(sorted(float(s) for s in scales if s > 0.0))
    if not 0.0 < level < 1.0 or not all(math.isfinite(s) for s in positive):
        raise ValueError(f"level {level!r} must be in (0, 1) and scales finite")
    if not positive:
        return 0.0
    if len(positive) == 1:
        return positive[0] * -math.log1p(-level)
    return _laplace_sum_half_width(positive, float(level))


_LATTICE_SUPPORT = 20_001
"""Most integers the exact lattice computation of `noise_half_width` convolves over.

Beyond it the combined integer noise has a std in the hundreds, where reading it as
continuous moves a 95 % interval's coverage by well under 0.1 %."""


def _discrete_pmf(std: float, noise: NoiseKind) -> npt.NDArray[np.float64]:
    """PMF on -m..m of the discrete noise whose stated (continuous) std is `std`.

    Discrete Gaussian: P(k) proportional to exp(-k^2 / (2 std^2)), cut at 13 std.
    Discrete Laplace of scale b = std / sqrt(2): P(k) proportional to exp(-|k| / b), cut at
    40 b. What is cut has mass below 1e-17.
    """
    if noise is NoiseKind.GAUSSIAN:
        m = math.ceil(13.0 * std) + 1
        k = np.arange(-m, m + 1, dtype=np.float64)
        weights = np.exp(-(k * k) / (2.0 * std * std))
    else:
        b = std / math.sqrt(2.0)
        m = math.ceil(40.0 * b) + 1
        k = np.arange(-m, m + 1, dtype=np.float64)
        weights = np.exp(-np.abs(k) / b)
    pmf: npt.NDArray[np.float64] = weights / weights.sum()
    return pmf


@functools.lru_cache(maxsize=256)
def _lattice_half_width(stds: tuple[float, ...], noise: NoiseKind) -> float | None:
    """Smallest integer k with P(|S| <= k) >= 95 % for S the sum of the nodes' discrete
    noises, or None when the support is too wide to convolve."""
    pmfs = [_discrete_pmf(s, noise) for s in stds]
    if sum(p.size for p in pmfs) > _LATTICE_SUPPORT:
        return None
    total = np.ones(1)
    for pmf in pmfs:
        total = np.convolve(total, pmf)
    centre = (total.size - 1) // 2
    # P(|S| <= k) for k = 0, 1, ...: the centre plus both (symmetric) tails' inner parts.
    within = total[centre] + 2.0 * np.concatenate(([0.0], np.cumsum(total[centre + 1 :])))
    return float(np.argmax(within >= 0.95))


def noise_half_width(stds: Sequence[float], noise: NoiseKind, *, integer: bool = False) -> float:
    """95 % half-width of a sum of independent noises with these stds.

    Gaussian: 1.96 times the root sum of squares. Laplace: the exact quantile of the sum of
    Laplace variables of scale std / sqrt(2) (`laplace_sum_half_width`).

    `integer`: the noises are the discrete Gaussian or Laplace noises of integer
    components, given by their stated (continuous) stds. Added to an integer, a sum of them
    lands on integers, so the interval covers the truth exactly when |noise| <= the
    half-width's integer part; the continuous figure can then cover well under 95 % (one
    discrete Gaussian of sigma 0.5 covers 79 % at 1.96 sigma). So the half-width is the
    smallest integer k with P(|noise| <= k) >= 95 %, from the exact convolution of the
    nodes' PMFs, unless that support is too wide to matter (`_LATTICE_SUPPORT`).
    """
    positive = tuple(float(s) for s in stds if s > 0.0)
    if integer and positive:
        exact = _lattice_half_width(positive, noise)
        if exact is not None:
            return exact
    if noise is NoiseKind.GAUSSIAN:
        return Z95 * math.sqrt(math.fsum(s * s for s in positive))
    return laplace_sum_half_width([s / math.sqrt(2.0) for s in positive])


_THRESHOLD_PAD = 1e-9
"""Relative pad on the threshold's normal quantile: float error may only raise tau."""


def selection_threshold(
    count_std: float, contribution: int, delta: float, max_groups: int
) -> float:
    """tau = contribution + 1 + count_std * Phi^-1(1 - delta / max_groups), the quantile
    floored at 0 and padded up by a relative 1e-9 (see the module docstring).

    A partition only one person makes passes `noisy count > tau` with probability at most
    delta / max_groups, under discrete Gaussian noise of that std.

    Raises:
        InternalError: An argument is out of range (the plan checked them all).
    """
    if not (
        math.isfinite(count_std)
        and count_std > 0
        and 0.0 < delta < 1.0
        and contribution >= 1
        and max_groups >= 1
    ):
        raise InternalError(
            f"bug: selection threshold of std {count_std!r}, contribution {contribution!r}, "
            f"delta {delta!r}, max_groups {max_groups!r}"
        )
    z = max(0.0, -statistics.NormalDist().inv_cdf(delta / max_groups))
    return contribution + 1.0 + count_std * z * (1.0 + _THRESHOLD_PAD)


@dataclass(frozen=True)
class PartitionSelection:
    """How a node chooses the partitions it releases when a grouping is private.

    Attributes:
        max_partitions: Most partitions released; the largest noisy counts are kept.
        delta: delta_T, the delta the selection consumes (its share of the job's delta).
        max_groups: L0, the most partitions one person's kept rows touch.
        threshold: tau: a partition is released only if its noisy count exceeds it.
        labels: Per grouping, its declared labels, or None where they are chosen privately.
    """

    max_partitions: int
    delta: float
    max_groups: int
    threshold: float
    labels: tuple[tuple[str, ...] | None, ...]


@dataclass(frozen=True)
class StatisticsPlan:
    """The components a node releases for a statistics job and their noise.

    Attributes:
        components: In release order, names unique; `count` first.
        noise: Gaussian or Laplace.
        noise_multiplier: Gaussian: noise std over L2 sensitivity (sigma). Laplace: scale
            over L1 sensitivity (s); one component is then (1 / s)-DP.
        cells: Number of cells every component spans; with `selection`, the most a node
            releases.
        selection: With a private grouping, how partitions are chosen; else None.
    """

    components: tuple[Component, ...]
    noise: NoiseKind
    noise_multiplier: float
    cells: int
    selection: PartitionSelection | None = None

    def component(self, name: str) -> Component:
        """The component called `name`.

        Raises:
            KeyError: No component has that name.
        """
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def noise_scale(self, component: Component) -> float:
        """The sampler's parameter: Gaussian std sigma * Delta, or Laplace scale s * Delta."""
        return self.noise_multiplier * component.sensitivity

    def noise_std(self, component: Component) -> float:
        """Std of the noise on each value: sigma * Delta (Gaussian), sqrt(2) s Delta (Laplace).

        For integer components (discrete samplers) this is the continuous mechanism's std,
        which bounds the discrete one's from above.
        """
        scale = self.noise_scale(component)
        return scale if self.noise is NoiseKind.GAUSSIAN else math.sqrt(2.0) * scale

    def events(self) -> list[PrivacyEvent]:
        """What the ledger charges: one release per component at the plan's multiplier,
        and with private selection the delta it consumes."""
        k = len(self.components)
        if self.selection is not None:
            return [GaussianThresholdEvent(self.noise_multiplier, k, self.selection.delta)]
        if self.noise is NoiseKind.GAUSSIAN:
            return [GaussianEvent(self.noise_multiplier, count=k)]
        return [LaplaceEvent(self.noise_multiplier, count=k)]

    def expected_half_widths(
        self, nodes: int = 1, *, reference_count: float = REFERENCE_COUNT
    ) -> dict[str, float]:
        """Expected 95 % half-width from noise alone of combined cells over `nodes` nodes
        that each release with this plan (nodes noise independently; stds add in squares).

        Keys:
            * `count`, each `histogram:...` component: one combined cell's value or bin.
            * each `sum:<column>:<lo>:<hi>`: the *sum statistic* of the column, centred sum
              plus midpoint times count, whose noise is sqrt(std_S^2 + mid^2 std_N^2).
            * `mean:<column>:<lo>:<hi>` (for each sum component) and
              `variance:<column>:<lo>:<hi>` (for each sumsq component): at a combined cell
              count of `reference_count` and the worst true mean within the bounds. The
              delta method gives std_mean = sqrt(std_S^2 + m^2 std_N^2) / n, at most
              sqrt(std_S^2 + h^2 std_N^2) / n for |m| <= h; and std_var = sqrt(std_Q^2 +
              4 m^2 std_S^2 + (q - 2 m^2)^2 std_N^2) / n, at most sqrt(std_Q^2 + 4 h^2
              std_S^2 + h^4 std_N^2) / n for m^2 <= q <= h^2. Both scale as 1 / n, so at
              count n a quote shows value * reference_count / n; a fixed reference keeps
              the figure a property of the plan, not of rows nobody may look at.
            * `reference_count`: that reference.

        Laplace half-widths are exact quantiles of the sum of the Laplace noises (of the
        delta method's linear combination for means and variances). Counts and bins get
        the whole-number half-widths of their discrete noise (`noise_half_width`).
        """
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
        if not (math.isfinite(reference_count) and reference_count > 0):
            raise ValueError(f"reference_count must be positive, got {reference_count!r}")
        count = self.component(COUNT)
        std_n = self.noise_std(count)
        widths: dict[str, float] = {}

        def width(*stds: float, integer: bool = False) -> float:
            spread = [s for s in stds for _ in range(nodes)]
            return noise_half_width(spread, self.noise, integer=integer)

        widths[COUNT] = width(std_n, integer=True)
        by_name = {c.name: c for c in self.components}
        for c in self.components:
            std = self.noise_std(c)
            h, n = c.half_range, reference_count
            tail = c.name.partition(":")[2]
            if c.kind is ComponentKind.HISTOGRAM:
                widths[c.name] = width(std, integer=True)
            elif c.kind is ComponentKind.SUM:
                widths[c.name] = width(std, abs(c.midpoint) * std_n)
                widths[f"mean:{tail}"] = width(std / n, h * std_n / n)
            elif c.kind is ComponentKind.SUMSQ:
                std_s = self.noise_std(by_name[f"sum:{tail}"])
                widths[f"variance:{tail}"] = width(std / n, 2 * h * std_s / n, h * h * std_n / n)
        widths["reference_count"] = float(reference_count)
        return widths


@functools.lru_cache(maxsize=1024)
def _calibrated(
    noise: NoiseKind, epsilon: float, delta: float, count: int, selection_delta: float
) -> float:
    """The multiplier for `count` components; remembered, as the node plans a job several
    times (quote, admission, release) and the coordinator reads every reply with its plan."""
    if noise is NoiseKind.GAUSSIAN:
        return gaussian_noise_multiplier(epsilon, delta, count, selection_delta=selection_delta)
    return laplace_scale(epsilon, count)


def plan_statistics(spec: StatisticsSpec, contribution: int) -> StatisticsPlan:
    """The components `spec` needs and the noise that keeps them within its budget.

    Args:
        spec: The job.
        contribution: Most rows one person contributes at this node (`spec.max_rows` when
            the node declares a person id, else 1).

    Returns:
        A plan with `epsilon_spent(plan.events(), spec.delta) <= spec.epsilon`; with Laplace
        noise also at delta = 0 (pure DP). With a private grouping its events consume
        `spec.selection_delta` and it carries the `PartitionSelection` nodes apply.

    Raises:
        JobSpecError: The epsilon is too small to account for this many components.
    """
    if isinstance(contribution, bool) or not isinstance(contribution, int) or contribution < 1:
        raise InternalError(f"contribution must be a positive integer, got {contribution!r}")
    components: dict[str, Component] = {}
    for stat in spec.statistics:
        for c in _components_of(stat, contribution):
            components.setdefault(c.name, c)
    if COUNT not in components:
        raise InternalError("a statistics plan without its count component")
    ordered = (components.pop(COUNT), *components.values())
    k = len(ordered)
    try:
        multiplier = _calibrated(spec.noise, spec.epsilon, spec.delta, k, spec.selection_delta)
    except ConfigError as err:
        raise JobSpecError(
            f"job cannot release {k} noisy components within epsilon {spec.epsilon:g}: "
            f"{err.message}",
            "raise `epsilon`, or ask for fewer statistics",
        ) from err
    selection = None
    if spec.private:
        selection = PartitionSelection(
            max_partitions=spec.max_partitions,
            delta=spec.selection_delta,
            max_groups=spec.max_groups,
            threshold=selection_threshold(
                multiplier * contribution, contribution, spec.selection_delta, spec.max_groups
            ),
            labels=tuple(None if g.private else g.labels for g in spec.group_by),
        )
    plan = StatisticsPlan(ordered, spec.noise, multiplier, spec.cells, selection)
    charged = epsilon_spent(plan.events(), spec.delta)
    if charged > spec.epsilon or (
        spec.noise is NoiseKind.LAPLACE and epsilon_spent(plan.events(), 0.0) > spec.epsilon
    ):
        raise InternalError(f"statistics plan charges {charged!r} > epsilon {spec.epsilon!r}")
    return plan
