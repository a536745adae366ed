"""A statistics plan is never under-charged: what the ledger is told a plan costs is never
below an independent computation of what its releases really cost.

Oracles, each independent of `vocab.accounting`'s code:

* Gaussian: k components at noise multiplier sigma are k Gaussian mechanisms with L2
  sensitivity 1 and std sigma; together exactly mu-GDP with mu = sqrt(k) / sigma, i.e.
  rho-zCDP with rho = k / (2 sigma^2) (Bun & Steinke 2016, Lemmas 2.5 and 2.3). Their exact
  privacy curve is delta(eps) = Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2)
  (Balle & Wang, "Improving the Gaussian mechanism", ICML 2018, Theorem 8; Dong, Roth & Su
  2019, Corollary 2.13), inverted here with scipy. Also dp-accounting's RDP accountant.
* Laplace: k / scale at delta = 0 (Dwork & Roth 2014, Theorems 3.6 and 3.16), and at
  delta > 0 dp-accounting's PLD accountant (pessimistic, so within its grid of the truth).
"""

from __future__ import annotations

import math

import dp_accounting
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm

from vocab.accounting import DEFAULT_ORDERS, epsilon_spent, rdp_of
from vocab.jobs.statistics import Measure, NoiseKind, StatisticSpec, StatisticsSpec
from vocab.jobs.statistics_plan import plan_statistics
from vocab.privacy import GaussianEvent, LaplaceEvent

_STATISTICS = (
    StatisticSpec(Measure.COUNT),
    StatisticSpec(Measure.SUM, "a", 0.0, 1.0),
    StatisticSpec(Measure.MEAN, "a", 0.0, 1.0),
    StatisticSpec(Measure.VARIANCE, "b", -5.0, 5.0),
    StatisticSpec(Measure.HISTOGRAM, "c", edges=(0.0, 1.0, 2.0)),
    StatisticSpec(Measure.QUANTILE, "c", 0.0, 2.0, quantiles=(0.5,)),
    StatisticSpec(Measure.MEAN, "d", 0.0, 100.0),
    StatisticSpec(Measure.VARIANCE, "e", 0.0, 3.0),
)

statistics = st.lists(st.sampled_from(_STATISTICS), min_size=1, max_size=8, unique=True)
PLD_INTERVAL = 1e-3


def _gaussian_exact_epsilon(mu: float, delta: float) -> float:
    """Smallest eps with delta(eps) <= delta for mu-GDP (Balle & Wang 2018, Theorem 8)."""

    def excess(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))

    if excess(0.0) <= delta:
        return 0.0
    return float(brentq(lambda eps: excess(eps) - delta, 0.0, 10.0 * (mu + mu * mu) + 10.0))


@settings(max_examples=60, deadline=None)
@given(
    stats=statistics,
    epsilon=st.floats(0.05, 10.0),
    delta=st.floats(1e-10, 1e-3),
    contribution=st.integers(1, 50),
)
def test_gaussian_plans_are_never_undercharged(
    stats: list[StatisticSpec], epsilon: float, delta: float, contribution: int
) -> None:
    spec = StatisticsSpec(name="p", statistics=tuple(stats), epsilon=epsilon, delta=delta)
    plan = plan_statistics(spec, contribution)
    charged = epsilon_spent(plan.events(), delta)
    assert charged <= epsilon
    k, sigma = len(plan.components), plan.noise_multiplier
    # Every component is one Gaussian release of std sigma * Delta_c at sensitivity Delta_c.
    for c in plan.components:
        assert plan.noise_std(c) == sigma * c.sensitivity
    rho = k / (2.0 * sigma * sigma)
    (rdp,) = rdp_of(GaussianEvent(sigma, k), (2.0,))
    assert math.isclose(rdp, 2.0 * rho, rel_tol=1e-12)
    assert charged >= _gaussian_exact_epsilon(math.sqrt(2.0 * rho), delta) * (1 - 1e-9)
    accountant = dp_accounting.rdp.RdpAccountant(orders=list(DEFAULT_ORDERS))
    accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma), k))
    assert charged >= accountant.get_epsilon(delta)


@settings(max_examples=30, deadline=None)
@given(
    stats=statistics,
    epsilon=st.floats(0.05, 5.0),
    delta=st.one_of(st.just(0.0), st.floats(1e-10, 1e-3)),
    contribution=st.integers(1, 50),
)
def test_laplace_plans_are_pure_and_never_undercharged(
    stats: list[StatisticSpec], epsilon: float, delta: float, contribution: int
) -> None:
    spec = StatisticsSpec(
        name="p", statistics=tuple(stats), epsilon=epsilon, delta=delta, noise=NoiseKind.LAPLACE
    )
    plan = plan_statistics(spec, contribution)
    k, scale = len(plan.components), plan.noise_multiplier
    assert plan.events() == [LaplaceEvent(scale, k)]
    pure = epsilon_spent(plan.events(), 0.0)
    assert k / scale <= pure <= epsilon  # Dwork & Roth 2014, Theorems 3.6 and 3.16
    for c in plan.components:
        assert plan.noise_scale(c) == scale * c.sensitivity  # b_c = s * L1 sensitivity
    if delta > 0:
        charged = epsilon_spent(plan.events(), delta)
        accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_INTERVAL)
        accountant.compose(
            dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(scale), k)
        )
        assert charged >= accountant.get_epsilon(delta) - PLD_INTERVAL * k
