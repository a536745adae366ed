"""Privately chosen partitions: the threshold event's accounting, the plan's pricing against
independent oracles, the threshold itself, and the node's release rate measured.

Oracles, each independent of `vocab.accounting`'s code: k Gaussian components at noise
multiplier sigma are exactly mu-GDP with mu = sqrt(k) / sigma, i.e. rho-zCDP with rho =
k / (2 sigma^2) (Bun & Steinke 2016, Lemmas 2.5 and 2.3), whose exact privacy curve is
delta(eps) = Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2) (Balle & Wang 2018,
Theorem 8); and dp-accounting's RDP accountant. Thresholding makes that approximate zCDP
with the selection's delta_T consumed (Bun & Steinke 2016, Section 8), so every oracle
converts at delta - delta_T.

The release-rate test draws OS noise through the node's real path, so it cannot be seeded;
its tolerances are six standard errors (SE), as in test_statistics_samplers.py.
"""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm

from clients.kinds.statistics.aggregate import private_release
from vocab.accounting import DEFAULT_ORDERS, epsilon_spent, gaussian_noise_multiplier, rdp_of
from vocab.errors import ConfigError
from vocab.jobs.statistics import (
    MAX_CELLS,
    Grouping,
    Measure,
    StatisticSpec,
    StatisticsSpec,
)
from vocab.jobs.statistics_plan import COUNT, plan_statistics, selection_threshold
from vocab.privacy import (
    DpSgdEvent,
    GaussianEvent,
    GaussianThresholdEvent,
    PrivacyEvent,
    event_from_params,
)

SE = 6.0
SECRET = bytes(range(32))
PAD = 2e-6
PAD_PER_RELEASE = 2e-12
SIGMA_STEP = 0.99

_STATISTICS = (
    StatisticSpec(Measure.COUNT),
    StatisticSpec(Measure.MEAN, "a", 0.0, 1.0),
    StatisticSpec(Measure.VARIANCE, "b", -5.0, 5.0),
    StatisticSpec(Measure.HISTOGRAM, "c", edges=(0.0, 1.0, 2.0)),
    StatisticSpec(Measure.QUANTILE, "c", 0.0, 2.0, quantiles=(0.5,)),
)


def _private(**job: object) -> StatisticsSpec:
    fields: dict[str, object] = {
        "name": "p",
        "statistics": (StatisticSpec(Measure.COUNT),),
        "group_by": (Grouping("g", private=True),),
        "max_partitions": 100,
        "epsilon": 1.0,
        "delta": 1e-6,
    }
    fields.update(job)
    return StatisticsSpec(**fields)  # type: ignore[arg-type]


def _gdp_epsilon(mu: float, delta: float) -> float:
    """Smallest eps with delta(eps) <= delta for mu-GDP (Balle & Wang 2018, Theorem 8)."""

    def excess(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))

    if excess(0.0) <= delta:
        return 0.0
    return float(brentq(lambda eps: excess(eps) - delta, 0.0, 10.0 * (mu + mu * mu) + 10.0))


def _rdp_oracle(sigma: float, count: int, delta: float) -> float:
    accountant = dp_accounting.rdp.RdpAccountant(orders=list(DEFAULT_ORDERS))
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma), count)
    )
    return float(accountant.get_epsilon(delta))


def _discrete_tail(std: float, m: int) -> float:
    """P[X >= m] for X discrete Gaussian with parameter std, summed exactly enough."""
    k = np.arange(-int(40 * std) - 50, int(40 * std) + 51)
    weights = np.exp(-(k * k) / (2.0 * std * std))
    return float(weights[k >= m].sum() / weights.sum())


def _release_probability(std: float, count: int, threshold: float) -> float:
    """P[count + X > threshold]: X integer, so X >= floor(threshold - count) + 1."""
    return _discrete_tail(std, math.floor(threshold - count) + 1)


# --- the event and its accounting ----------------------------------------------------------


def test_event_round_trips_through_its_stored_params() -> None:
    event = GaussianThresholdEvent(3.5, 4, 2e-7)
    assert event.mechanism.value == "gaussian_threshold"
    assert event.params() == {"noise_multiplier": 3.5, "count": 4, "delta": 2e-7}
    assert event_from_params("gaussian_threshold", event.params()) == event
    assert event_from_params("gaussian_threshold", {**event.params(), "count": 4.0}) == event


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 1, 1e-7), "noise multiplier"),
        ((1.0, 0, 1e-7), "count"),
        ((1.0, 1, 0.0), "delta"),
        ((1.0, 1, 1.0), "delta"),
        ((1.0, 1, math.nan), "delta"),
    ],
)
def test_invalid_events_are_refused(args: tuple[float, int, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GaussianThresholdEvent(*args)


def test_missing_parameter_is_refused() -> None:
    with pytest.raises(ConfigError, match="delta"):
        event_from_params("gaussian_threshold", {"noise_multiplier": 1.0, "count": 1})


@pytest.mark.parametrize("sigma", [0.7, 4.0, 60.0])
@pytest.mark.parametrize("count", [1, 9])
def test_curve_is_the_gaussians_and_the_delta_is_consumed(sigma: float, count: int) -> None:
    # Mironov 2017, Prop. 7: the curve is the Gaussian's; the conversion runs at delta less
    # delta_T, up to the residual's rounding down by a relative 1e-12.
    event = GaussianThresholdEvent(sigma, count, 4e-6)
    np.testing.assert_array_equal(rdp_of(event), rdp_of(GaussianEvent(sigma, count)))
    ours = epsilon_spent([event], 1e-5)
    plain = epsilon_spent([GaussianEvent(sigma, count)], 6e-6)
    assert plain <= ours <= plain * (1 + 1e-9)
    assert ours > epsilon_spent([GaussianEvent(sigma, count)], 1e-5)


@pytest.mark.parametrize("delta", [0.0, 1e-6, 2e-6])
def test_nothing_left_of_delta_costs_infinity(delta: float) -> None:
    events: list[PrivacyEvent] = [GaussianThresholdEvent(5.0, 1, 1e-6), GaussianEvent(50.0)]
    assert epsilon_spent([*events, GaussianThresholdEvent(5.0, 1, 1e-6)], delta) == math.inf


def test_consumed_deltas_add_up_across_releases() -> None:
    events: list[PrivacyEvent] = [
        GaussianThresholdEvent(5.0, 2, 1e-6),
        GaussianThresholdEvent(8.0, 1, 3e-6),
        DpSgdEvent(1.5, 0.01, 100),
    ]
    together = [GaussianEvent(5.0, 2), GaussianEvent(8.0), DpSgdEvent(1.5, 0.01, 100)]
    assert epsilon_spent(together, 6e-6) <= epsilon_spent(events, 1e-5)
    assert epsilon_spent(events, 1e-5) <= epsilon_spent(together, 6e-6) * (1 + 1e-9)


def test_calibration_refuses_a_selection_taking_all_of_delta() -> None:
    with pytest.raises(ConfigError, match="selection delta"):
        gaussian_noise_multiplier(1.0, 1e-6, 1, selection_delta=1e-6)


# --- the plan's price against independent oracles ----------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    stats=st.lists(st.sampled_from(_STATISTICS), min_size=1, max_size=5, unique=True),
    epsilon=st.floats(0.05, 10.0),
    delta=st.floats(1e-10, 1e-3),
    share=st.floats(0.01, 0.99),
    contribution=st.integers(1, 20),
)
def test_private_plans_are_never_undercharged_nor_over_target(
    stats: list[StatisticSpec], epsilon: float, delta: float, share: float, contribution: int
) -> None:
    spec = _private(statistics=tuple(stats), epsilon=epsilon, delta=delta, selection_share=share)
    plan = plan_statistics(spec, contribution)
    k, sigma = len(plan.components), plan.noise_multiplier
    delta_t = share * delta
    assert plan.events() == [GaussianThresholdEvent(sigma, k, delta_t)]
    charged = epsilon_spent(plan.events(), delta)
    assert charged <= epsilon
    left = delta - delta_t
    rho = k / (2.0 * sigma * sigma)
    assert charged >= _gdp_epsilon(math.sqrt(2.0 * rho), left) * (1 - 1e-9)
    oracle = _rdp_oracle(sigma, k, left)
    assert oracle <= charged <= (oracle + PAD_PER_RELEASE * k) * (1 + PAD) + 1e-9
    # Nearly minimal: 1 % less noise would overshoot (unless calibration hit its floor).
    if sigma > 1e-3 * math.sqrt(k) * 1.001:
        cheaper = GaussianThresholdEvent(sigma * SIGMA_STEP, k, delta_t)
        assert epsilon_spent([cheaper], delta) > epsilon


def test_selection_costs_noise_against_declared_keys() -> None:
    # The same query over declared keys spends all of delta on the Gaussian; choosing the
    # keys privately leaves it half, so needs more noise - but not much more.
    declared = plan_statistics(
        _private(group_by=(Grouping("g", keys=("a",)),), max_partitions=0), 1
    )
    chosen = plan_statistics(_private(), 1)
    assert declared.selection is None and chosen.selection is not None
    assert declared.noise_multiplier < chosen.noise_multiplier < 1.1 * declared.noise_multiplier


# --- the threshold --------------------------------------------------------------------------


@pytest.mark.parametrize("std", [0.3, 1.0, 2.5, 7.0, 40.0])
@pytest.mark.parametrize("contribution", [1, 3])
@pytest.mark.parametrize(("delta", "max_groups"), [(0.05, 1), (0.05, 4), (1e-6, 2), (1e-9, 10)])
def test_a_partition_only_one_person_makes_passes_at_most_delta_over_l0(
    std: float, contribution: int, delta: float, max_groups: int
) -> None:
    # Exact discrete Gaussian tails for every count the person can give the partition.
    tau = selection_threshold(std, contribution, delta, max_groups)
    z = norm.isf(delta / max_groups)
    assert tau == pytest.approx(contribution + 1 + std * z, rel=1e-8)
    for count in range(1, contribution + 1):
        assert _release_probability(std, count, tau) <= delta / max_groups


def test_the_continuous_threshold_is_not_enough_for_discrete_noise() -> None:
    # Why tau has "+ 1": at std 1 the discrete Gaussian passes Delta + 1.645 std with
    # probability 0.059 > 0.05 (Canonne, Kamath & Steinke 2020 bound it one unit later).
    continuous_tau = 1 + norm.isf(0.05)
    assert _release_probability(1.0, 1, continuous_tau) == pytest.approx(0.0586, abs=1e-4)
    assert _release_probability(1.0, 1, selection_threshold(1.0, 1, 0.05, 1)) <= 0.05


@pytest.mark.parametrize("std", [0.2, 0.5, 1.0, 1.7, 3.0, 10.0, 33.0])
def test_discrete_tail_is_below_the_continuous_one_a_unit_earlier(std: float) -> None:
    # Canonne, Kamath & Steinke 2020, Proposition 25, which the threshold relies on.
    for m in range(1, int(8 * std) + 3):
        assert _discrete_tail(std, m) <= norm.sf((m - 1) / std)


# --- the node's release, measured ------------------------------------------------------------


def test_node_releases_single_person_partitions_at_the_rate_the_threshold_allows() -> None:
    # A large delta_T (0.05 over L0 = 2 partitions) makes the rate measurable. Persons of
    # kind A put both their rows (Delta_inf = 2, the worst case) in a partition of their
    # own; persons of kind B one row in each of two partitions of their own; 300 persons
    # share partition "big". Every partition but "big" is one only one person makes.
    n_a, n_b, runs = 3000, 1500, 6
    spec = _private(epsilon=1.0, delta=0.1, max_rows=2, max_groups=2, max_partitions=MAX_CELLS)
    plan = plan_statistics(spec, 2)
    selection = plan.selection
    assert selection is not None and selection.delta == pytest.approx(0.05)
    bound = selection.delta / selection.max_groups
    std = plan.noise_std(plan.component(COUNT))
    p_a = _release_probability(std, 2, selection.threshold)
    p_b = _release_probability(std, 1, selection.threshold)
    assert p_a <= bound and 1 - (1 - p_b) ** 2 <= selection.delta
    assert p_a > bound / 10  # measurable: thousands of trials see it hundreds of times
    groups = [f"a{i}" for i in range(n_a) for _ in range(2)]
    groups += [f"b{i}-{j}" for i in range(n_b) for j in range(2)]
    groups += ["big"] * 300
    people = [i for i in range(n_a) for _ in range(2)]
    people += [n_a + i for i in range(n_b) for _ in range(2)]
    people += list(range(n_a + n_b, n_a + n_b + 300))
    frame = pd.DataFrame({"g": groups, "pid": people})
    a_released = b_persons = 0
    for _ in range(runs):
        release = private_release(frame, spec, plan, person_keys=people, secret=SECRET)
        labels = [key[0] for key in release.keys]
        assert "big" in labels  # 300 rows: always far above tau
        counts = dict(zip(labels, release.by_name()[COUNT].values, strict=True))
        assert abs(counts["big"] - 300) <= SE * std
        a_released += sum(label.startswith("a") for label in labels)
        b_persons += len({label.split("-")[0] for label in labels if label.startswith("b")})
    trials_a, trials_b = n_a * runs, n_b * runs
    p_b_person = 1 - (1 - p_b) ** 2
    for seen, trials, p in ((a_released, trials_a, p_a), (b_persons, trials_b, p_b_person)):
        assert abs(seen - trials * p) <= SE * math.sqrt(trials * p * (1 - p)), (seen, trials, p)
    # And directly against what the guarantee allows.
    assert a_released <= trials_a * bound
    assert b_persons <= trials_b * selection.delta


def test_the_largest_noisy_counts_are_kept_beyond_max_partitions() -> None:
    # 20 partitions far above tau, 5 kept: always the 5 largest (counts 1000 apart).
    sizes = {f"g{i:02d}": 200 + 1000 * i for i in range(20)}
    frame = pd.DataFrame({"g": [g for g, n in sizes.items() for _ in range(n)]})
    spec = _private(max_partitions=5, epsilon=2.0)
    plan = plan_statistics(spec, 1)
    release = private_release(frame, spec, plan, person_keys=None, secret=SECRET)
    assert release.keys == tuple((f"g{i:02d}",) for i in range(15, 20))
