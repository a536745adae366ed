"""The statistics kind's noise, statistically: each OpenDP sampler has the stated mean, std
and shape, and the coordinator's 95 % intervals cover the truth 95 % of the time.

The noise comes from the OS, so nothing here can be seeded; every tolerance is at least six
standard errors of its estimate (two-sided failure probability about 2e-9 per check, under
1e-6 for the whole file), while each wrong alternative named in a test sits many standard
errors beyond it. Only the simulated data use a fixed numpy seed.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from clients.kinds.statistics.aggregate import exact_aggregates, noisy_release
from clients.secure_noise import (
    discrete_gaussian,
    discrete_laplace,
    gaussian_floats,
    laplace_floats,
)
from server.kinds.statistics.combine import combine
from vocab.jobs.statistics import Grouping, Measure, NoiseKind, StatisticSpec, StatisticsSpec
from vocab.jobs.statistics_plan import COUNT, StatisticsPlan, plan_statistics
from vocab.jobs.statistics_release import ComponentRelease, NodeStatistics

SE = 6.0
"""Tolerances in standard errors."""

SECRET = bytes(32)


def _check_moments(
    noise: npt.NDArray[np.float64], std: float, kurtosis: float, mean_abs: float
) -> None:
    """Mean 0, the stated std and E|noise| / std, each within SE standard errors.

    Standard errors: std / sqrt(n) for the mean; std * sqrt((kurtosis - 1) / (4 n)) for
    the sample std (delta method); sqrt(Var|X|) / sqrt(n) for the mean absolute value.
    """
    n = noise.size
    assert abs(noise.mean()) <= SE * std / math.sqrt(n)
    assert abs(noise.std() - std) <= SE * std * math.sqrt((kurtosis - 1.0) / (4.0 * n))
    abs_sd = math.sqrt(std * std - (mean_abs * std) ** 2)
    assert abs(np.abs(noise).mean() - mean_abs * std) <= SE * abs_sd / math.sqrt(n)


def test_gaussian_floats_have_the_stated_std_and_a_gaussian_shape() -> None:
    n, std = 20_000, 3.0
    noise = np.asarray(gaussian_floats([5.0] * n, std)) - 5.0
    # E|X| / std = sqrt(2 / pi) = 0.798; a Laplace of that std has 0.707 (21 SE away).
    # A std of 3 sqrt(2) or sqrt(3) would be 80 or more SE off.
    _check_moments(noise, std, kurtosis=3.0, mean_abs=math.sqrt(2.0 / math.pi))


def test_laplace_floats_have_std_sqrt2_scale_and_a_laplace_shape() -> None:
    n, scale = 40_000, 2.0
    noise = np.asarray(laplace_floats([5.0] * n, scale)) - 5.0
    # Laplace(b): std sqrt(2) b, kurtosis 6, E|X| = b = std / sqrt(2). Taking b for the std
    # (29 % off) or a Gaussian shape (E|X| / std 0.798) is beyond 25 SE.
    _check_moments(noise, math.sqrt(2.0) * scale, kurtosis=6.0, mean_abs=1.0 / math.sqrt(2.0))


def test_discrete_gaussian_has_the_stated_std_on_integers() -> None:
    n, scale = 50_000, 3.0
    draws = discrete_gaussian([5] * n, scale)
    assert all(isinstance(v, int) for v in draws[:100])
    noise = np.asarray(draws, dtype=np.float64) - 5.0
    # At scale 3 the discrete Gaussian's variance equals scale^2 to within e^(-2 pi^2 9).
    _check_moments(noise, scale, kurtosis=3.0, mean_abs=math.sqrt(2.0 / math.pi))
    # P(0) = 1 / sum_k exp(-k^2 / 18) = 0.13298 (theta function, to 1e-30).
    p0 = 1.0 / sum(math.exp(-(k * k) / (2 * scale * scale)) for k in range(-60, 61))
    assert abs(np.mean(noise == 0) - p0) <= SE * math.sqrt(p0 * (1 - p0) / n)


def test_discrete_laplace_has_the_discrete_std_and_shape() -> None:
    n, scale = 100_000, 0.7
    draws = discrete_laplace([5] * n, scale)
    noise = np.asarray(draws, dtype=np.float64) - 5.0
    # P(k) proportional to q^|k|, q = e^(-1/b): variance 2q / (1 - q)^2 (0.8291, std 0.9105),
    # P(0) = tanh(1 / 2b) = 0.6134, kurtosis 7.21 and E|X| = 2q / (1 - q^2) (exact sums).
    # The continuous Laplace's std, sqrt(2) b = 0.990, is 16 SE beyond the tolerance, and
    # rounding continuous noise would give P(0) = 0.51 (66 SE).
    q = math.exp(-1.0 / scale)
    std = math.sqrt(2 * q) / (1 - q)
    _check_moments(noise, std, kurtosis=7.2062, mean_abs=2 * q / (1 - q * q) / std)
    p0 = math.tanh(1.0 / (2.0 * scale))
    assert abs(np.mean(noise == 0) - p0) <= SE * math.sqrt(p0 * (1 - p0) / n)


@pytest.mark.parametrize(
    "sampler", [gaussian_floats, laplace_floats, discrete_gaussian, discrete_laplace]
)
@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_samplers_refuse_bad_scales(sampler: object, scale: float) -> None:
    with pytest.raises(ValueError):
        sampler([1], scale)  # type: ignore[operator]


def test_float_samplers_refuse_non_finite_values() -> None:
    with pytest.raises(ValueError):
        gaussian_floats([math.nan], 1.0)
    with pytest.raises(ValueError):
        laplace_floats([math.inf], 1.0)
    assert gaussian_floats([], 1.0) == [] and discrete_laplace([], 1.0) == []


# --- coverage of the combined 95 % intervals ----------------------------------------------

RUNS = 3000
KEYS = ("a", "b", "c")
STAT_MEAN = StatisticSpec(Measure.MEAN, "x", 0.0, 10.0)


def _node_frames(nodes: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(20260101)  # the data only; the noise is the OS's
    return [
        pd.DataFrame(
            {
                "g": rng.choice(KEYS, 1000 + 200 * i),
                "x": rng.normal(4.0 + i, 3.0, 1000 + 200 * i),  # some values clamped
            }
        )
        for i in range(nodes)
    ]


def _runs(
    plan: StatisticsPlan, exact: dict[str, npt.NDArray[np.float64]], noise: NoiseKind
) -> list[NodeStatistics]:
    """RUNS releases of one node, noised by the samplers `noisy_release` uses, drawn in
    one batch per component (one OpenDP measurement instead of one per run)."""
    noisy = {}
    for c in plan.components:
        tiled = np.tile(exact[c.name], RUNS)
        scale = plan.noise_scale(c)
        if c.kind.is_integer:
            sampler = discrete_gaussian if noise is NoiseKind.GAUSSIAN else discrete_laplace
            drawn = sampler([int(v) for v in tiled], scale)
        else:
            float_sampler = gaussian_floats if noise is NoiseKind.GAUSSIAN else laplace_floats
            drawn = float_sampler(tiled.tolist(), scale)
        noisy[c.name] = np.asarray(drawn, dtype=np.float64).reshape(RUNS, -1)
    return [
        NodeStatistics(
            tuple(
                ComponentRelease(c.name, tuple(noisy[c.name][run].tolist()), plan.noise_std(c))
                for c in plan.components
            ),
            plan.cells,
        )
        for run in range(RUNS)
    ]


def _coverage(spec: StatisticsSpec, nodes: int) -> dict[str, float]:
    frames = _node_frames(nodes)
    plan = plan_statistics(spec, 1)
    exact = [exact_aggregates(f, spec, plan, person_keys=None, secret=SECRET) for f in frames]
    # One run end to end through noisy_release, to tie the batch draws to the real path.
    assert combine(spec, [noisy_release(e, plan) for e in exact])
    truth_count = sum(e[COUNT] for e in exact)
    truth = {"count": truth_count}
    if any(s.measure is Measure.MEAN for s in spec.statistics):
        clamped_sum = sum(e["sum:x:0:10"] for e in exact)
        truth["mean"] = 5.0 + clamped_sum / truth_count
    per_node = [_runs(plan, e, spec.noise) for e in exact]
    hits = {name: 0 for name in truth}
    for run in range(RUNS):
        for cell in combine(spec, [releases[run] for releases in per_node]):
            index = KEYS.index(cell.group[0][1])
            hits[cell.statistic] += cell.lower <= truth[cell.statistic][index] <= cell.upper
    return {name: hits[name] / (RUNS * len(KEYS)) for name in hits}


def _assert_covers(coverage: float) -> None:
    # 9000 intervals (3000 runs x 3 cells; the cells' noises are independent): a proportion
    # of 0.95 has a standard error of 0.0023, so [0.93, 0.97] is about 8 of them each way
    # (the lattice can lift a count's coverage to at most 0.9525 at these noise levels).
    assert 0.93 <= coverage <= 0.97


def test_gaussian_count_and_mean_intervals_cover_95_percent() -> None:
    spec = StatisticsSpec(
        name="coverage",
        statistics=(StatisticSpec(Measure.COUNT), STAT_MEAN),
        group_by=(Grouping("g", keys=KEYS),),
        epsilon=0.2,
        delta=1e-6,
    )
    coverage = _coverage(spec, nodes=3)
    _assert_covers(coverage["count"])
    _assert_covers(coverage["mean"])


@pytest.mark.parametrize("nodes", [1, 3])
def test_laplace_count_intervals_cover_95_percent(nodes: int) -> None:
    # One node is where a normal approximation fails: +- 1.96 std covers 93.7 % of Laplace.
    spec = StatisticsSpec(
        name="coverage",
        statistics=(StatisticSpec(Measure.COUNT),),
        group_by=(Grouping("g", keys=KEYS),),
        epsilon=0.1,
        delta=0.0,
        noise=NoiseKind.LAPLACE,
    )
    _assert_covers(_coverage(spec, nodes)["count"])
