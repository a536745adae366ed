"""Gaussian and Laplace statistics in vocab.accounting: known values, oracles, properties.

Thresholded Gaussian releases (statistics over privately chosen partitions) join the
oracles and properties: the oracles convert at delta less the delta they consume (see
tests/privacy/test_partition_selection.py for their own known values).
"""

from __future__ import annotations

import math
from typing import Any

import dp_accounting
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.dp_oracle import consumed_delta, dp_event
from vocab.accounting import (
    DEFAULT_ORDERS,
    epsilon_spent,
    gaussian_noise_multiplier,
    laplace_scale,
    rdp_of,
)
from vocab.errors import ConfigError, InternalError
from vocab.privacy import (
    DpSgdEvent,
    GaussianEvent,
    GaussianThresholdEvent,
    LaplaceEvent,
    PrivacyEvent,
)

# epsilon_spent reports (computed + 1e-12 per release) * (1 + 1e-6), one float up; these
# bound how far above the exact value it may land.
PAD = 2e-6
PAD_PER_RELEASE = 2e-12
# dp-accounting's PLD accountant discretises every privacy loss onto a grid of this spacing,
# pessimistically (connect-the-dots, Doroshenko et al. 2022), so each separately discretised
# PLD it composes may overstate the loss by up to one interval: an upper bound that can sit
# slightly above the truth. Coarse for random mixes (a 1e-4 grid is 10x slower on wide
# losses), fine where our bound is meant to be tight.
PLD_INTERVAL = 1e-3
PLD_FINE_INTERVAL = 1e-5
# Gaussian calibration bisects to a relative 1e-3 and floors at 1e-3 * sqrt(count).
SIGMA_STEP = 0.99
STATISTIC_SIGMA_FLOOR = 1e-3

sgd_events = st.builds(
    DpSgdEvent,
    noise_multiplier=st.floats(0.8, 5.0),
    sample_rate=st.floats(1e-3, 0.05),
    steps=st.integers(1, 300),
)
gaussian_events = st.builds(
    GaussianEvent, noise_multiplier=st.floats(0.5, 50.0), count=st.integers(1, 10)
)
laplace_events = st.builds(LaplaceEvent, scale=st.floats(0.2, 50.0), count=st.integers(1, 10))
threshold_events = st.builds(
    GaussianThresholdEvent,
    noise_multiplier=st.floats(0.5, 50.0),
    count=st.integers(1, 10),
    delta=st.floats(1e-12, 1e-4),
)
any_events = st.one_of(sgd_events, gaussian_events, laplace_events, threshold_events)
# Releases a budget of about 10 or less can afford: PLD accounting of larger losses is slow.
affordable_events = st.one_of(
    st.builds(
        DpSgdEvent,
        noise_multiplier=st.floats(1.0, 5.0),
        sample_rate=st.floats(1e-3, 0.02),
        steps=st.integers(1, 200),
    ),
    st.builds(GaussianEvent, noise_multiplier=st.floats(1.0, 50.0), count=st.integers(1, 10)),
    st.builds(LaplaceEvent, scale=st.floats(0.5, 50.0), count=st.integers(1, 10)),
    st.builds(
        GaussianThresholdEvent,
        noise_multiplier=st.floats(1.0, 50.0),
        count=st.integers(1, 10),
        delta=st.floats(1e-12, 1e-9),
    ),
)
deltas = st.floats(1e-9, 1e-3)


def _releases(events: list[PrivacyEvent]) -> int:
    return sum(e.steps if isinstance(e, DpSgdEvent) else e.count for e in events)


def _oracle_rdp(events: list[PrivacyEvent], orders: tuple[float, ...]) -> Any:
    accountant = dp_accounting.rdp.RdpAccountant(orders=list(orders))
    accountant.compose(dp_accounting.ComposedDpEvent([dp_event(e) for e in events]))
    return accountant


def _oracle_epsilon(accountant: Any, events: list[PrivacyEvent], delta: float) -> float:
    """The accountant's epsilon at `delta` less what thresholded releases consume."""
    left = delta - consumed_delta(events)
    return float(accountant.get_epsilon(left)) if left > 0 else math.inf


def _oracle_pld(
    events: list[PrivacyEvent], delta: float, interval: float = PLD_INTERVAL
) -> tuple[float, float]:
    """dp-accounting's PLD epsilon and how far its discretisation may overstate it."""
    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=interval)
    accountant.compose(dp_accounting.ComposedDpEvent([dp_event(e) for e in events]))
    # Laplace and DP-SGD PLDs are discretised once and self-composed, so the rounding adds
    # up per release; a Gaussian event's `count` releases are discretised as one.
    discretised = sum(
        1 if isinstance(e, GaussianEvent | GaussianThresholdEvent) else _releases([e])
        for e in events
    )
    return _oracle_epsilon(accountant, events, delta), interval * discretised


def _laplace_rdp_exact(scale: float, alpha: float) -> float:
    """Mironov 2017, Prop. 6 as printed, evaluated with 60 significant digits."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(60):
        lam, a = mp.mpf(scale), mp.mpf(alpha)
        inner = a / (2 * a - 1) * mp.exp((a - 1) / lam) + (a - 1) / (2 * a - 1) * mp.exp(-a / lam)
        return float(mp.log(inner) / (a - 1))


# --- known values --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.1, 0.7, 1.0, 3.0, 1234.5])
@pytest.mark.parametrize("count", [1, 4])
def test_laplace_releases_at_delta_zero_cost_count_over_scale(scale: float, count: int) -> None:
    # Dwork & Roth 2014, Theorem 3.6: one Laplace release with scale b / sensitivity = scale
    # is exactly (1 / scale)-DP; Theorem 3.16: pure-DP epsilons of releases add up.
    exact = count / scale
    ours = epsilon_spent([LaplaceEvent(scale, count)], 0.0)
    assert exact < ours <= (exact + PAD_PER_RELEASE * count) * (1 + PAD)


def test_mixed_laplace_releases_at_delta_zero_add_up() -> None:
    events: list[PrivacyEvent] = [LaplaceEvent(2.0, 3), LaplaceEvent(5.0), LaplaceEvent(0.5, 2)]
    exact = 3 / 2.0 + 1 / 5.0 + 2 / 0.5  # Dwork & Roth 2014, Theorem 3.16
    ours = epsilon_spent(events, 0.0)
    assert exact < ours <= (exact + PAD_PER_RELEASE * 6) * (1 + PAD)


@pytest.mark.parametrize(
    "events",
    [
        [GaussianEvent(5.0)],
        [LaplaceEvent(1.0), GaussianEvent(100.0, 3)],
        [LaplaceEvent(1.0), DpSgdEvent(10.0, 0.01, 1)],
    ],
)
def test_any_gaussian_noise_has_no_pure_epsilon(events: list[PrivacyEvent]) -> None:
    assert epsilon_spent(events, 0.0) == math.inf


@pytest.mark.parametrize("delta", [1e-9, 1e-5, 1e-2])
@pytest.mark.parametrize("scale", [0.2, 1.0, 10.0])
def test_laplace_at_positive_delta_never_exceeds_the_pure_sum(delta: float, scale: float) -> None:
    # Both bounds hold at any delta; the smaller one is reported, so the pure-DP sum caps it.
    pure = epsilon_spent([LaplaceEvent(scale, 5)], 0.0)
    assert epsilon_spent([LaplaceEvent(scale, 5)], delta) <= pure


@pytest.mark.parametrize("sigma", [0.3, 1.0, 7.5, 400.0])
@pytest.mark.parametrize("count", [1, 3, 1000])
def test_gaussian_rdp_is_alpha_over_two_sigma_squared(sigma: float, count: int) -> None:
    # Mironov 2017, Proposition 7 (and Proposition 1 for `count` releases).
    expected = count * np.asarray(DEFAULT_ORDERS) / (2 * sigma**2)
    np.testing.assert_allclose(rdp_of(GaussianEvent(sigma, count)), expected, rtol=1e-14)


@settings(max_examples=200, deadline=None)
@given(scale=st.floats(1e-3, 1e6), alpha=st.floats(1.0001, 1e6))
def test_laplace_rdp_matches_high_precision_formula(scale: float, alpha: float) -> None:
    # Mironov 2017, Proposition 6. Near alpha = 1 or for large scales the curve is 1 / scale
    # minus nearly 1 / scale, so a few ulps of 1 / scale is the best any float evaluation
    # can promise; epsilon_spent's pad (1e-12 per release) covers that many times over.
    (ours,) = rdp_of(LaplaceEvent(scale), (alpha,))
    exact = _laplace_rdp_exact(scale, alpha)
    assert abs(ours - exact) <= 1e-15 / scale + 1e-12 * exact


@pytest.mark.parametrize(
    ("scale", "alpha"),
    [(1e-3, 1e6), (1e-6, 1024.0), (1e-3, 1e300), (1e-300, 2.0), (10.0, 1e300), (1e6, 1.0000001)],
)
def test_laplace_rdp_does_not_overflow(scale: float, alpha: float) -> None:
    # Evaluated as written, the proposition overflows exp((alpha - 1) / scale) here; the RDP
    # lies in (0, 1 / scale] (Mironov 2017, Table II), which is finite for all these scales.
    (ours,) = rdp_of(LaplaceEvent(scale), (alpha,))
    assert 0.0 < ours <= (1.0 / scale) * (1 + 1e-15)


@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("delta", [1e-10, 1e-6, 1e-3, 0.05])
def test_calibrated_sigma_is_below_the_classic_gaussian_mechanism(
    epsilon: float, delta: float
) -> None:
    # Dwork & Roth 2014, Theorem A.1: for epsilon < 1, sigma = sqrt(2 ln(1.25 / delta)) /
    # epsilon gives (epsilon, delta)-DP. Our RDP accounting must certify that sigma too, and
    # the sigma our calibration finds must be no larger (RDP + Balle et al. is tighter).
    classic = math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    assert epsilon_spent([GaussianEvent(classic)], delta) <= epsilon
    assert gaussian_noise_multiplier(epsilon, delta) <= classic


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("count", [1, 7])
def test_laplace_scale_is_count_over_epsilon_with_more_noise(epsilon: float, count: int) -> None:
    # Dwork & Roth 2014, Theorems 3.6 and 3.16; raised by at most the accountant's pad.
    scale = laplace_scale(epsilon, count)
    assert count / epsilon < scale <= count / epsilon * (1 + PAD) + 1e-9


# --- independent oracle: dp-accounting ------------------------------------------------------

ORACLE_ORDERS = (1.01, 1.05, *DEFAULT_ORDERS)  # 1.01 and 1.05 hit its Taylor branch for Laplace


@settings(max_examples=50, deadline=None)
@given(event=st.one_of(gaussian_events, laplace_events, threshold_events))
def test_rdp_curve_matches_dp_accounting(event: PrivacyEvent) -> None:
    theirs = _oracle_rdp([event], ORACLE_ORDERS).rdp
    ours = rdp_of(event, ORACLE_ORDERS)
    finite = np.isfinite(theirs) & np.isfinite(ours)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-9, atol=0)


@settings(max_examples=30, deadline=None)
@given(
    events=st.lists(
        st.one_of(gaussian_events, laplace_events, threshold_events), min_size=1, max_size=4
    ),
    delta=deltas,
)
def test_statistics_equal_dp_accounting_rdp_up_to_the_pad(
    events: list[PrivacyEvent], delta: float
) -> None:
    # Same closed-form curves and the same conversion (Balle et al. 2020, Thm 21), so the
    # epsilons agree up to our pad - except that for Laplace-only releases the pure-DP sum
    # (Dwork & Roth 2014, Thm 3.16) may undercut RDP, and dp-accounting may report 0 via a
    # KL-divergence bound for tiny losses. Thresholded releases: both convert at delta less
    # what they consume (ours rounds that down by a relative 1e-12, so sits above).
    ours = epsilon_spent(events, delta)
    theirs = _oracle_epsilon(_oracle_rdp(events, DEFAULT_ORDERS), events, delta)
    if all(isinstance(e, LaplaceEvent) for e in events):
        theirs = min(theirs, math.fsum(e.count / e.scale for e in events))  # type: ignore[union-attr]
    assert ours >= theirs
    if theirs > 0:
        assert ours <= (theirs + PAD_PER_RELEASE * _releases(events)) * (1 + PAD)


@pytest.mark.parametrize("delta", [1e-9, 1e-3])
@pytest.mark.parametrize("scale", [1.0, 3.0, 20.0])
def test_one_laplace_release_is_as_tight_as_pld(scale: float, delta: float) -> None:
    # One release: the pure-DP value 1 / scale (or, at large delta, RDP) is within a grid step
    # of the near-exact PLD epsilon - on either side, as the PLD itself may be a step high.
    pld, slack = _oracle_pld([LaplaceEvent(scale)], delta, PLD_FINE_INTERVAL)
    assert abs(epsilon_spent([LaplaceEvent(scale)], delta) - pld) <= slack


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=20, deadline=None)
@given(events=st.lists(affordable_events, min_size=1, max_size=3), delta=deltas)
def test_mixed_releases_bracketed_by_dp_accounting(
    events: list[PrivacyEvent], delta: float
) -> None:
    # PLD accounting is tighter than RDP, so ours may not be below its epsilon - beyond the
    # amount its own discretisation overstates by. Against dp-accounting's RDP accountant on
    # the same orders, ours is a sane bound: it may be lower (pure-DP sum; dp-accounting
    # over-approximates fractional orders of DP-SGD) but never far above.
    ours = epsilon_spent(events, delta)
    pld, slack = _oracle_pld(events, delta)
    rdp = _oracle_epsilon(_oracle_rdp(events, DEFAULT_ORDERS), events, delta)
    assert ours >= pld - slack
    if rdp > 0:
        # dp-accounting reports 0 when delta^2 > 1 - exp(-RDP), a total-variation bound we
        # do not use: one DP-SGD step at q = 1e-3 and delta = 1e-3 is 0 there, 0.25 here.
        assert ours <= 1.5 * rdp + 0.05


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(any_events, max_size=4),
    extra=any_events,
    delta=st.one_of(st.just(0.0), deltas),
)
def test_adding_a_release_never_lowers_epsilon(
    events: list[PrivacyEvent], extra: PrivacyEvent, delta: float
) -> None:
    assert epsilon_spent([*events, extra], delta) >= epsilon_spent(events, delta)


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(any_events, min_size=1, max_size=5),
    delta=st.one_of(st.just(0.0), deltas),
    data=st.data(),
)
def test_order_of_releases_does_not_matter(
    events: list[PrivacyEvent], delta: float, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    assert epsilon_spent(shuffled, delta) == epsilon_spent(events, delta)


@settings(max_examples=40, deadline=None)
@given(
    event=st.one_of(gaussian_events, laplace_events),
    others=st.lists(any_events, max_size=2),
    delta=st.one_of(st.just(0.0), deltas),
)
def test_count_k_costs_the_same_as_k_releases(
    event: GaussianEvent | LaplaceEvent, others: list[PrivacyEvent], delta: float
) -> None:
    single: PrivacyEvent = (
        GaussianEvent(event.noise_multiplier)
        if isinstance(event, GaussianEvent)
        else LaplaceEvent(event.scale)
    )
    apart: list[PrivacyEvent] = [single] * event.count
    assert epsilon_spent([event, *others], delta) == epsilon_spent([*apart, *others], delta)


@settings(max_examples=40, deadline=None)
@given(epsilon=st.floats(0.05, 20.0), delta=st.floats(1e-10, 0.1), count=st.integers(1, 500))
def test_calibrated_gaussian_never_overshoots_and_is_nearly_minimal(
    epsilon: float, delta: float, count: int
) -> None:
    sigma = gaussian_noise_multiplier(epsilon, delta, count)
    assert epsilon_spent([GaussianEvent(sigma, count)], delta) <= epsilon
    if sigma > STATISTIC_SIGMA_FLOOR * math.sqrt(count):
        assert epsilon_spent([GaussianEvent(sigma * SIGMA_STEP, count)], delta) > epsilon


@settings(max_examples=60, deadline=None)
@given(
    epsilon=st.floats(1e-6, 1e3),
    count=st.integers(1, 10**4),
    delta=st.one_of(st.just(0.0), deltas),
)
def test_calibrated_laplace_never_overshoots_and_is_nearly_minimal(
    epsilon: float, count: int, delta: float
) -> None:
    scale = laplace_scale(epsilon, count)
    assert epsilon_spent([LaplaceEvent(scale, count)], delta) <= epsilon
    # Minimal in pure DP; at delta > 0 the RDP bound may allow less noise still.
    assert epsilon_spent([LaplaceEvent(scale * (1 - 1e-6), count)], 0.0) > epsilon


def test_large_gaussian_target_returns_the_floor() -> None:
    assert gaussian_noise_multiplier(1e6, 1e-5, 4) == STATISTIC_SIGMA_FLOOR * 2


# --- validation ----------------------------------------------------------------------------


def test_unreachable_gaussian_target_is_refused() -> None:
    # With orders up to 1024 the conversion alone costs about ln(1 / delta) / 1023.
    with pytest.raises(ConfigError, match="no noise multiplier"):
        gaussian_noise_multiplier(0.01, 1e-10)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 1e-5), "epsilon"),
        ((-1.0, 1e-5), "epsilon"),
        ((math.inf, 1e-5), "epsilon"),
        ((math.nan, 1e-5), "epsilon"),
        ((True, 1e-5), "epsilon"),
        ((1.0, 0.0), "delta = 0"),
        ((1.0, 1.0), "delta"),
        ((1.0, -1e-5), "delta"),
        ((1.0, 1e-5, 0), "count"),
        ((1.0, 1e-5, 2.0), "count"),
        ((1.0, 1e-5, True), "count"),
    ],
)
def test_invalid_gaussian_calibration_is_refused(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as refusal:
        gaussian_noise_multiplier(*args)
    assert refusal.value.hint


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0,), "epsilon"),
        ((math.inf,), "epsilon"),
        ((math.nan,), "epsilon"),
        (("1",), "epsilon"),
        ((1.0, 0), "count"),
        ((1.0, -3), "count"),
        ((1e-13, 1), "precision"),
    ],
)
def test_invalid_laplace_calibration_is_refused(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as refusal:
        laplace_scale(*args)
    assert refusal.value.hint


def test_unknown_event_is_a_bug() -> None:
    with pytest.raises(InternalError, match="bug"):
        epsilon_spent([object()], 1e-5)  # type: ignore[list-item]
