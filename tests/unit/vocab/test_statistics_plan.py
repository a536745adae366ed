"""Statistics planning: components, sensitivities, pricing, and the quoted half-widths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vocab.accounting import epsilon_spent, gaussian_noise_multiplier, laplace_scale
from vocab.errors import JobSpecError
from vocab.jobs.statistics import Grouping, Measure, NoiseKind, StatisticSpec, StatisticsSpec
from vocab.jobs.statistics_plan import (
    COUNT,
    LAPLACE_Z95,
    Z95,
    ComponentKind,
    laplace_sum_half_width,
    noise_half_width,
    plan_statistics,
    statistic_components,
)
from vocab.privacy import GaussianEvent, LaplaceEvent

MEAN = StatisticSpec(Measure.MEAN, "x", 10.0, 30.0)
VARIANCE = StatisticSpec(Measure.VARIANCE, "x", 10.0, 30.0)
HISTOGRAM = StatisticSpec(Measure.HISTOGRAM, "x", edges=(0.0, 5.0, 10.0))
QUANTILE = StatisticSpec(Measure.QUANTILE, "x", 0.0, 10.0, quantiles=(0.5,), bins=10)


def _spec(*stats: StatisticSpec, **kwargs: object) -> StatisticsSpec:
    return StatisticsSpec(name="s", statistics=stats, **kwargs)  # type: ignore[arg-type]


def test_mean_and_variance_share_the_count_and_sum() -> None:
    plan = plan_statistics(_spec(MEAN, VARIANCE, StatisticSpec(Measure.COUNT)), 1)
    assert [c.name for c in plan.components] == [COUNT, "sum:x:10:30", "sumsq:x:10:30"]
    assert [c.kind for c in plan.components] == [
        ComponentKind.COUNT,
        ComponentKind.SUM,
        ComponentKind.SUMSQ,
    ]
    assert plan.events() == [GaussianEvent(plan.noise_multiplier, count=3)]


def test_different_bounds_or_bins_are_different_components() -> None:
    other = StatisticSpec(Measure.MEAN, "x", 0.0, 30.0)
    quantile_over_histogram_range = StatisticSpec(
        Measure.QUANTILE, "x", 0.0, 10.0, quantiles=(0.5,), bins=8
    )
    plan = plan_statistics(
        _spec(MEAN, other, HISTOGRAM, QUANTILE, quantile_over_histogram_range), 1
    )
    names = [c.name for c in plan.components]
    assert names == [
        COUNT,
        "sum:x:10:30",
        "sum:x:0:30",
        "histogram:x:0|5|10",
        "histogram:x:0:10/10",
        "histogram:x:0:10/8",
    ]
    assert len(set(names)) == len(names)
    assert plan.component("histogram:x:0:10/10").edges == tuple(float(e) for e in range(11))


def test_statistic_components_name_what_each_statistic_reads() -> None:
    assert statistic_components(StatisticSpec(Measure.COUNT)) == {ComponentKind.COUNT: COUNT}
    assert set(statistic_components(VARIANCE)) == {
        ComponentKind.COUNT,
        ComponentKind.SUM,
        ComponentKind.SUMSQ,
    }
    assert statistic_components(QUANTILE)[ComponentKind.HISTOGRAM] == "histogram:x:0:10/10"


@pytest.mark.parametrize("contribution", [1, 3, 1000])
def test_sensitivity_is_contribution_times_one_rows_reach(contribution: int) -> None:
    # One row moves one value of one cell by at most 1 (count, bin), h (centred sum) or h^2
    # (centred square), h = (30 - 10) / 2; a person has at most `contribution` rows.
    plan = plan_statistics(_spec(VARIANCE, HISTOGRAM), contribution)
    sensitivity = {c.kind: c.sensitivity for c in plan.components}
    assert sensitivity == {
        ComponentKind.COUNT: contribution,
        ComponentKind.SUM: contribution * 10.0,
        ComponentKind.SUMSQ: contribution * 100.0,
        ComponentKind.HISTOGRAM: contribution,
    }
    # The multiplier is per unit of sensitivity: it does not depend on the contribution.
    assert plan.noise_multiplier == plan_statistics(_spec(VARIANCE, HISTOGRAM), 1).noise_multiplier


def test_sizes_and_cells() -> None:
    spec = _spec(HISTOGRAM, QUANTILE, group_by=(Grouping("g", keys=("a", "b", "c")),))
    plan = plan_statistics(spec, 1)
    assert plan.cells == 3
    assert [c.size for c in plan.components] == [1, 2, 10]


@pytest.mark.parametrize("epsilon", [0.05, 0.3, 1.0, 8.0])
@pytest.mark.parametrize("delta", [1e-9, 1e-5])
def test_gaussian_plan_costs_at_most_epsilon(epsilon: float, delta: float) -> None:
    spec = _spec(MEAN, VARIANCE, HISTOGRAM, QUANTILE, epsilon=epsilon, delta=delta)
    plan = plan_statistics(spec, 2)
    k = len(plan.components)
    assert plan.noise_multiplier == gaussian_noise_multiplier(epsilon, delta, k)
    assert epsilon_spent(plan.events(), delta) <= epsilon
    # Tight: 1 % less noise would overspend (calibration stops within 0.1 %).
    assert epsilon_spent([GaussianEvent(plan.noise_multiplier * 0.99, k)], delta) > epsilon


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 5.0])
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_laplace_plan_is_pure_dp_within_epsilon(epsilon: float, delta: float) -> None:
    spec = _spec(MEAN, HISTOGRAM, noise=NoiseKind.LAPLACE, epsilon=epsilon, delta=delta)
    plan = plan_statistics(spec, 1)
    k = len(plan.components)
    assert plan.events() == [LaplaceEvent(laplace_scale(epsilon, k), count=k)]
    pure = epsilon_spent(plan.events(), 0.0)
    assert math.isfinite(pure) and pure <= epsilon
    assert pure >= k / plan.noise_multiplier  # Dwork & Roth 2014, Theorems 3.6 and 3.16
    assert epsilon_spent(plan.events(), delta) <= epsilon


def test_noise_std_per_component() -> None:
    gaussian = plan_statistics(_spec(MEAN), 4)
    sum_x = gaussian.component("sum:x:10:30")
    assert gaussian.noise_std(sum_x) == pytest.approx(gaussian.noise_multiplier * 40.0)
    laplace = plan_statistics(_spec(MEAN, noise=NoiseKind.LAPLACE), 4)
    b = laplace.noise_multiplier * 40.0
    assert laplace.noise_scale(laplace.component("sum:x:10:30")) == pytest.approx(b)
    assert laplace.noise_std(laplace.component("sum:x:10:30")) == pytest.approx(math.sqrt(2) * b)


def test_an_unaffordable_epsilon_is_a_spec_error() -> None:
    with pytest.raises(JobSpecError, match="epsilon"):
        plan_statistics(_spec(MEAN, epsilon=1e-3, delta=1e-5), 1)


def test_laplace_sum_half_width_known_values() -> None:
    # One Laplace(b): P(|L| > x) = exp(-x / b). Two of scale 1: the sum has density
    # (1 + |s|) e^-|s| / 4, so P(|S| > x) = e^-x (2 + x) / 2 = 0.05 at x = 4.11300328.
    assert laplace_sum_half_width([3.0]) == pytest.approx(3.0 * math.log(20.0), rel=1e-12)
    assert laplace_sum_half_width([1.0, 1.0]) == pytest.approx(4.11300328, rel=2e-4)
    assert laplace_sum_half_width([1.0, 1.0]) >= 4.11300328
    assert laplace_sum_half_width([]) == 0.0
    # Between the Gaussian's and one Laplace's factor at the same std, for any mix.
    for scales in ([1.0, 1.0], [1.0, 5.0], [0.1] * 40, [2.0, 0.5, 0.01]):
        std = math.sqrt(2 * sum(b * b for b in scales))
        assert Z95 * std < laplace_sum_half_width(scales) <= LAPLACE_Z95 * std


def _discrete(
    rng: np.random.Generator, noise: NoiseKind, scale: float, shape: tuple[int, int]
) -> np.ndarray:
    """Discrete Gaussian (by its PMF) or discrete Laplace (a difference of geometrics)."""
    if noise is NoiseKind.LAPLACE:
        p = -math.expm1(-1.0 / scale)
        return np.asarray(rng.geometric(p, shape) - rng.geometric(p, shape), dtype=float)
    support = np.arange(-math.ceil(15 * scale), math.ceil(15 * scale) + 1)
    weights = np.exp(-(support**2) / (2 * scale**2))
    return np.asarray(rng.choice(support, shape, p=weights / weights.sum()), dtype=float)


def _simulated_half_width(draws: np.ndarray) -> float:
    return float(np.quantile(np.abs(draws), 0.95))


@pytest.mark.parametrize("noise", [NoiseKind.GAUSSIAN, NoiseKind.LAPLACE])
@pytest.mark.parametrize("nodes", [1, 3])
def test_expected_half_widths_match_simulation(noise: NoiseKind, nodes: int) -> None:
    delta = 1e-6 if noise is NoiseKind.GAUSSIAN else 0.0
    spec = _spec(MEAN, VARIANCE, HISTOGRAM, noise=noise, epsilon=2.0, delta=delta)
    plan = plan_statistics(spec, 1)
    widths = plan.expected_half_widths(nodes, reference_count=2000.0)
    rng = np.random.default_rng(7)
    draws = 200_000

    def noise_of(name: str) -> np.ndarray:
        c = plan.component(name)
        shape = (draws, nodes)
        scale = plan.noise_scale(c)
        if c.kind.is_integer:
            values = _discrete(rng, noise, scale, shape)
        elif noise is NoiseKind.GAUSSIAN:
            values = rng.normal(0.0, scale, shape)
        else:
            values = rng.laplace(0.0, scale, shape)
        return np.asarray(values.sum(axis=1))

    e_n, e_s, e_q = noise_of(COUNT), noise_of("sum:x:10:30"), noise_of("sumsq:x:10:30")
    # Integer noise: the half-width is the smallest whole k covering 95 %; with 2e5 draws a
    # proportion's standard error is 5e-4, so 3e-3 is six of them.
    for name in (COUNT, "histogram:x:0|5|10"):
        e = np.abs(noise_of(name))
        k = widths[name]
        assert k == int(k) and np.mean(e <= k) >= 0.95 - 3e-3 > np.mean(e <= k - 1) - 6e-3
    # Worst case the quote assumes: every value at the upper bound (centred mean m = h).
    n, h = 2000.0, 10.0
    mean_error = (n * h + e_s) / (n + e_n) - h
    variance_error = (n * h * h + e_q) / (n + e_n) - ((n * h + e_s) / (n + e_n)) ** 2
    simulated = {
        "sum:x:10:30": _simulated_half_width(e_s + 20.0 * e_n),  # midpoint 20
        "mean:x:10:30": _simulated_half_width(mean_error),
        "variance:x:10:30": _simulated_half_width(variance_error),
    }
    assert widths["reference_count"] == 2000.0
    for key, value in simulated.items():
        # The quantile of 2e5 draws is within ~0.5 % of the truth; the delta method's
        # neglect of second-order terms is of order std_N / n, here well below 1 %.
        assert widths[key] == pytest.approx(value, rel=0.02), key


def test_half_widths_scale_with_nodes_and_reference() -> None:
    plan = plan_statistics(_spec(MEAN), 1)
    one, four = plan.expected_half_widths(1), plan.expected_half_widths(4)
    assert four["sum:x:10:30"] == pytest.approx(2 * one["sum:x:10:30"])
    count_std = plan.noise_std(plan.component(COUNT))
    assert one[COUNT] == int(one[COUNT]) and abs(one[COUNT] - Z95 * count_std) <= 1.0
    assert abs(four[COUNT] - 2 * Z95 * count_std) <= 1.0
    tenfold = plan.expected_half_widths(1, reference_count=10_000.0)
    assert tenfold["mean:x:10:30"] == pytest.approx(one["mean:x:10:30"] / 10)
    with pytest.raises(ValueError):
        plan.expected_half_widths(0)


def test_noise_half_width_adds_in_squares_for_gaussian() -> None:
    assert noise_half_width([3.0, 4.0], NoiseKind.GAUSSIAN) == pytest.approx(Z95 * 5.0)
    assert noise_half_width([math.sqrt(2.0)], NoiseKind.LAPLACE) == pytest.approx(math.log(20))


@pytest.mark.parametrize(
    ("stds", "noise", "expected"),
    [
        # One discrete Gaussian of sigma 0.5: P(0) = 1 / (1 + 2e^-2 + 2e^-8 + ...) = 0.787,
        # so 1.96 sigma = 0.98 would cover 79 %; k = 1 covers 99.9 %.
        ([0.5], NoiseKind.GAUSSIAN, 1.0),
        # Discrete Laplace of b = 1 (std sqrt 2): P(|K| >= k) = 2 e^-k / (1 + e^-1), which is
        # 0.0728 at k = 3 and 0.0268 at k = 4.
        ([math.sqrt(2.0)], NoiseKind.LAPLACE, 3.0),
        # Wide noise: the continuous 1.96 * 100 = 196.0 is the lattice's answer too.
        ([100.0], NoiseKind.GAUSSIAN, 196.0),
    ],
)
def test_integer_noise_half_width_is_the_covering_whole_number(
    stds: list[float], noise: NoiseKind, expected: float
) -> None:
    assert noise_half_width(stds, noise, integer=True) == expected


def test_integer_noise_too_wide_to_convolve_is_read_as_continuous() -> None:
    stds = [2000.0, 2000.0]
    assert noise_half_width(stds, NoiseKind.GAUSSIAN, integer=True) == pytest.approx(
        Z95 * 2000.0 * math.sqrt(2.0)
    )
