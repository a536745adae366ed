"""Pure privacy math: RDP of every release the node makes, composition, epsilon from it.

The node releases four kinds of noisy output (see `vocab.privacy`): DP-SGD training runs,
`count` releases of the Gaussian mechanism, `count` releases of the Laplace mechanism, and
`count` Gaussian releases over partitions chosen by thresholding (`GaussianThresholdEvent`).

* Renyi differential privacy (RDP) and its additive composition across mechanisms:
  I. Mironov, "Renyi Differential Privacy", CSF 2017, Proposition 1 (composition).
* RDP of the Gaussian mechanism with noise multiplier sigma: alpha / (2 sigma^2) at every
  order alpha (Mironov 2017, Proposition 7).
* RDP of the Laplace mechanism with scale lambda (Mironov 2017, Proposition 6 and Table II),
  for alpha > 1: ``log(alpha / (2 alpha - 1) exp((alpha - 1) / lambda) + (alpha - 1) /
  (2 alpha - 1) exp(-alpha / lambda)) / (alpha - 1)``.
* RDP of the sampled Gaussian mechanism (one DP-SGD step) at order alpha: I. Mironov,
  K. Talwar and L. Zhang, "Renyi Differential Privacy of the Sampled Gaussian Mechanism",
  arXiv:1908.10530, 2019, Section 3 (integer and fractional orders). The curve itself comes
  from Opacus' pure implementation of that paper, `opacus.accountants.analysis.rdp`, loaded
  on its own (`_opacus_rdp`): through its package it would import torch, seconds of start-up
  for every command that prices a release, for math that needs only numpy and scipy.
* RDP to (epsilon, delta): B. Balle, G. Barthe, M. Gaboardi, J. Hsu and T. Sato, "Hypothesis
  Testing Interpretations and Renyi Differential Privacy", AISTATS 2020, Theorem 21
  (arXiv:1905.09982): an (alpha, r)-RDP mechanism is (eps, delta)-DP with
  ``eps = r + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1)``.
  This is the conversion Opacus' `get_privacy_spent` uses; it is tighter than Mironov 2017,
  Proposition 3. We evaluate it here rather than call Opacus so that delta = 0 yields an
  infinite epsilon instead of a warning, and so that orders which cannot win are skipped.
* Consumed delta: a `GaussianThresholdEvent` is delta_T-approximately RDP with the Gaussian
  curve - outside an event of probability at most delta_T its output is post-processing of
  a Gaussian mechanism, and the event only concerns the person whose data differs (the
  argument is in `vocab.jobs.statistics_plan`). Such releases compose with all others by
  adding the curves and adding the deltas (M. Bun and T. Steinke, "Concentrated
  Differential Privacy: Simplifications, Extensions, and Lower Bounds", TCC 2016, Section
  8, approximate zCDP), and the composition is (eps, delta' + sum delta_T)-DP where eps is
  the conversion of the composed curve at delta'. So the epsilon at a target delta is the
  conversion at delta - sum delta_T, rounded down, and infinite when nothing is left.
* Pure DP: one Laplace release with scale lambda is (1 / lambda)-DP (C. Dwork and A. Roth,
  "The Algorithmic Foundations of Differential Privacy", 2014, Theorem 3.6) and pure-DP
  releases compose by adding their epsilons (same book, Theorem 3.16). When every release is
  a Laplace release, that sum is a second valid bound at any delta, and the only finite one
  at delta = 0; the smaller of the two is reported.

Every epsilon reported here is padded and rounded up (see `_PAD_PER_STEP`), so numerical
error can only ever overstate the privacy loss.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

from vocab.errors import ConfigError, InternalError
from vocab.privacy import (
    DpSgdEvent,
    GaussianEvent,
    GaussianThresholdEvent,
    LaplaceEvent,
    PrivacyEvent,
)

__all__ = [
    "DEFAULT_ORDERS",
    "calibrate_noise_multiplier",
    "epsilon_spent",
    "forget_cached_curves",
    "gaussian_noise_multiplier",
    "laplace_scale",
    "rdp_of",
]

DEFAULT_ORDERS: tuple[float, ...] = (
    *(1.1, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5),
    *(float(a) for a in range(6, 17)),
    *(18.0, 20.0, 22.0, 24.0, 28.0, 32.0, 40.0, 48.0, 56.0, 64.0),
    *(80.0, 96.0, 128.0, 160.0, 192.0, 256.0, 384.0, 512.0, 768.0, 1024.0),
)
"""RDP orders alpha to optimise over.

Dense where the optimum lies for the epsilons departments use (about 0.1 to 10), and up to
1024 so that heavily noised releases (sigma in the hundreds) still get a tight bound. Opacus
evaluates integer orders with binomial coefficients, which overflow a float beyond 1029.
"""

_RELATIVE_PAD = 1e-6
_PAD_PER_STEP = 1e-12
"""Reported epsilon = (computed + 1e-12 per composed release) * (1 + 1e-6), then one float up.

Opacus evaluates fractional orders with an alternating series summed in log space. Against
30-digit quadrature (tests/privacy check a sample) its per-step RDP was off by under 1e-12
absolute, under 3e-8 relative wherever the RDP is large enough to matter; composition
multiplies that error by the number of steps. The Gaussian and Laplace curves are closed
forms off by a few ulps of 1 / lambda or alpha / sigma^2. The pad covers all of it and float
rounding with room to spare while changing no decision a privacy officer could notice. A
release here is one DP-SGD step or one Gaussian or Laplace release (`count` of them per event).
"""

_SIGMA_MIN = 0.1
"""Smallest noise multiplier DP-SGD calibration returns.

Noise a tenth of the clipping norm is already far outside useful DP-SGD; when even this
meets the target, calibration returns it, which spends less than the target allows.
"""

_SIGMA_MAX = 1e4
"""Largest noise multiplier DP-SGD calibration searches; a target not met here is refused."""

_STATISTIC_SIGMA_RANGE = (1e-3, 1e4)
"""Range of sigma / sqrt(count) Gaussian calibration searches.

`count` releases at sigma cost exactly what one release at sigma / sqrt(count) costs (their
RDP curves coincide, Mironov 2017, Propositions 1 and 7), so the bracket scales with
sqrt(count). At 1e-3 the loss is in the tens of thousands, beyond any budget; at 1e4 the
largest default order, 1024, has long been the optimum, so more noise barely helps.
"""

_SIGMA_RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class _Composition:
    """Releases reduced to what their composed RDP depends on, in a canonical order.

    Events that share parameters are merged (RDP of k releases is k times that of one,
    Mironov 2017, Proposition 1) and sorted, so float sums depend neither on the order the
    events were recorded in nor on whether k releases came as one event or k.

    Attributes:
        sgd: (sigma, sample rate, steps) per distinct DP-SGD setting.
        rho: Sum of count / (2 sigma^2) over Gaussian releases (thresholded ones too);
            their RDP is alpha * rho.
        laplace: (scale, count) per distinct Laplace scale.
        releases: Number of composed releases, for the pad.
        pure: Whether every release is a Laplace release (and there is at least one).
        consumed: Sum of the deltas thresholded releases consume (0 without any).
    """

    sgd: tuple[tuple[float, float, int], ...]
    rho: float
    laplace: tuple[tuple[float, int], ...]
    releases: int
    pure: bool
    consumed: float = 0.0


def _compose(events: Sequence[PrivacyEvent]) -> _Composition:
    sgd: dict[tuple[float, float], int] = {}
    gaussian: dict[float, int] = {}
    laplace: dict[float, int] = {}
    consumed: list[float] = []
    for e in events:
        if isinstance(e, DpSgdEvent):
            key = (e.noise_multiplier, e.sample_rate)
            sgd[key] = sgd.get(key, 0) + e.steps
        elif isinstance(e, GaussianEvent | GaussianThresholdEvent):
            gaussian[e.noise_multiplier] = gaussian.get(e.noise_multiplier, 0) + e.count
            if isinstance(e, GaussianThresholdEvent):
                consumed.append(e.delta)
        elif isinstance(e, LaplaceEvent):
            laplace[e.scale] = laplace.get(e.scale, 0) + e.count
        else:
            raise InternalError(f"no accounting for {type(e).__name__}, not a PrivacyEvent")
    return _Composition(
        sgd=tuple((sigma, q, n) for (sigma, q), n in sorted(sgd.items())),
        # fsum is exactly rounded, hence independent of the order of its terms.
        rho=math.fsum(n / (2.0 * sigma * sigma) for sigma, n in sorted(gaussian.items())),
        laplace=tuple(sorted(laplace.items())),
        releases=sum(sgd.values()) + sum(gaussian.values()) + sum(laplace.values()),
        pure=bool(laplace) and not sgd and not gaussian,
        consumed=math.fsum(consumed),
    )


def _check_orders(orders: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(float(a) for a in orders)
    if not checked:
        raise ConfigError("RDP orders must not be empty", "pass e.g. DEFAULT_ORDERS")
    for alpha in checked:
        if not (math.isfinite(alpha) and alpha > 1):
            raise ConfigError(
                f"RDP orders must be finite and > 1, got {alpha!r}", "pass e.g. DEFAULT_ORDERS"
            )
    return checked


def _check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        raise ConfigError(f"delta must be a number, got {delta!r}", "use e.g. 1e-5")
    d = float(delta)
    if not (0 <= d < 1):
        raise ConfigError(f"delta must be in [0, 1), got {delta!r}", "use e.g. 1e-5")
    return d


def _check_target(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}", "set a positive epsilon")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be finite and > 0, got {value!r}", "set a positive epsilon")
    return float(value)


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(
            f"count must be a positive integer, got {count!r}",
            "pass the number of statistics released with this noise, e.g. 1",
        )
    return count


def _laplace_rdp(scale: float, alpha: float) -> float:
    """RDP at order alpha > 1 of one Laplace release with scale `scale` (Mironov 2017, Prop. 6).

    The proposition's log of a sum of two exponentials is a logsumexp; factoring out the
    larger term, exp((alpha - 1) / scale), leaves ``1 / scale + log1p((alpha - 1) /
    (2 alpha - 1) * expm1(-(2 alpha - 1) / scale)) / (alpha - 1)``, whose log1p argument
    lies in (-1/2, 0]: no overflow or nan for any order or scale, and no blow-up as alpha
    approaches 1. The result is `inf` only when 1 / scale itself overflows. When alpha /
    scale is small the two terms nearly cancel, leaving an absolute error of a few ulps of
    1 / scale (tests/privacy compare with 60-digit arithmetic), which the pad covers.
    """
    eps = 1.0 / scale
    shrink = (alpha - 1.0) / (2.0 * alpha - 1.0) * math.expm1(-(2.0 * alpha - 1.0) * eps)
    return eps + math.log1p(shrink) / (alpha - 1.0)


_RDP_MODULE = "opacus.accountants.analysis.rdp"


@functools.cache
def _opacus_rdp() -> ModuleType:
    """Opacus' RDP analysis module (numpy and scipy only), without Opacus' package init.

    The module imported the usual way when Opacus is loaded already (a training process),
    else the same file executed on its own under a private name.
    """
    if _RDP_MODULE in sys.modules:
        return sys.modules[_RDP_MODULE]
    package = importlib.util.find_spec("opacus")
    if package is None or not package.submodule_search_locations:
        raise InternalError("Opacus is not installed: it computes the DP-SGD privacy curve")
    path = Path(package.submodule_search_locations[0]) / "accountants" / "analysis" / "rdp.py"
    spec = importlib.util.spec_from_file_location("_silobridge_opacus_rdp", path)
    if spec is None or spec.loader is None:
        raise InternalError(f"cannot load Opacus' RDP analysis from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1 << 16)
def _sgd_rdp(q: float, sigma: float, steps: int, alpha: float) -> float:
    """RDP of `steps` subsampled-Gaussian steps at one order, remembered.

    A node prices one history several times per round (the whole job, the rest of it, the
    reservation's check, the figures it reports); the curve of a stored release never
    changes, so it is computed once per process.
    """
    rdp = _opacus_rdp().compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=alpha)
    return float(rdp)


def forget_cached_curves() -> None:
    """Drops the remembered RDP values, as a fresh ClientApp process starts (benchmarks)."""
    _sgd_rdp.cache_clear()


def _rdp_at(composition: _Composition, alpha: float) -> float:
    """Composed RDP at one order: the sum of every release's (Mironov 2017, Prop. 1)."""
    total = alpha * composition.rho
    for sigma, q, steps in composition.sgd:
        total += _sgd_rdp(q, sigma, steps, alpha)
    for scale, count in composition.laplace:
        total += count * _laplace_rdp(scale, alpha)
    return total


def _conversion_term(alpha: float, delta: float) -> float:
    """What Balle et al. 2020, Theorem 21 adds to the RDP value at order alpha to get epsilon."""
    return math.log1p(-1.0 / alpha) - (math.log(delta) + math.log(alpha)) / (alpha - 1.0)


def _residual_delta(delta: float, consumed: float) -> float:
    """The delta left for the RDP conversion once thresholded releases took theirs.

    Rounded down (a relative 1e-12 below the float difference), so float error can only
    raise the epsilon; 0 when nothing is left, where only pure-DP releases are finite.
    """
    if consumed == 0.0:
        return delta
    return max(0.0, (delta - consumed) * (1.0 - 1e-12))


def _round_up(epsilon: float, releases: int) -> float:
    if math.isinf(epsilon):
        return epsilon
    padded = (epsilon + _PAD_PER_STEP * releases) * (1.0 + _RELATIVE_PAD)
    return math.nextafter(padded, math.inf)


def _epsilon(composition: _Composition, delta: float, orders: tuple[float, ...]) -> float:
    """Smallest valid epsilon at `delta` before rounding up.

    The candidates are the Balle et al. conversion at each order and, when every release is
    a Laplace release, the pure-DP sum of 1 / scale (Dwork & Roth 2014, Theorem 3.16).

    Orders that cannot win are not evaluated, because evaluating RDP is the costly part and
    calibration evaluates epsilon dozens of times. RDP is non-negative and nondecreasing in
    the order for any one pair of distributions (T. van Erven and P. Harremoes, "Renyi
    Divergence and Kullback-Leibler Divergence", IEEE Trans. Inf. Theory 2014, Theorem 3).
    Every curve here is the divergence of one fixed pair, whatever the order: Gaussian or
    Laplace noise around 0 and around the sensitivity (Mironov 2017, Props. 6 and 7), and for
    a DP-SGD step the Gaussian and the sampled mixture (Mironov, Talwar & Zhang 2019,
    Sec. 3); so each curve, and their sum, is nondecreasing. Hence the RDP at the largest
    order already evaluated below alpha, plus alpha's conversion term, is a lower bound on the
    epsilon at alpha; when it is no better than the best epsilon so far, alpha is skipped.
    Integer orders go first, smallest up: they are cheap and give the fractional orders -
    slow for DP-SGD, and optimal only for large epsilons - a bound to be skipped by.
    Skipping an order can only raise the minimum, so this never understates the loss.
    """
    best = math.inf
    if composition.pure:
        best = math.fsum(count / scale for scale, count in composition.laplace)
    if delta == 0.0:
        # RDP gives no finite epsilon at delta = 0; Gaussian noise gives no pure epsilon-DP.
        return best
    integers = sorted(a for a in orders if a.is_integer())
    fractional = sorted(a for a in orders if not a.is_integer())
    evaluated: list[tuple[float, float]] = []
    for alpha in integers + fractional:
        rdp_below = max((r for a, r in evaluated if a < alpha), default=0.0)
        term = _conversion_term(alpha, delta)
        if rdp_below + term >= best:
            continue
        rdp = _rdp_at(composition, alpha)
        if math.isnan(rdp):
            continue
        evaluated.append((alpha, rdp))
        best = min(best, rdp + term)
    return max(best, 0.0)


def _smallest_sigma(fits: Callable[[float], bool], low: float, high: float) -> float:
    """Bisects log(sigma) between `low` (which must not fit) and `high` (which must).

    Keeps that invariant until the bracket is narrower than a relative 1e-3 and returns the
    upper end, so the result fits and the true minimum is at most 0.1% below it.
    """
    while high > low * (1.0 + _SIGMA_RELATIVE_TOLERANCE):
        mid = math.sqrt(low * high)
        if fits(mid):
            high = mid
        else:
            low = mid
    return high


def rdp_of(
    event: PrivacyEvent, orders: Sequence[float] = DEFAULT_ORDERS
) -> npt.NDArray[np.float64]:
    """RDP curve of one release.

    * `DpSgdEvent`: `steps` compositions of the Poisson-subsampled Gaussian mechanism with
      rate `sample_rate` and noise multiplier `noise_multiplier` (Mironov, Talwar & Zhang
      2019, Section 3).
    * `GaussianEvent`: `count` * alpha / (2 sigma^2) (Mironov 2017, Proposition 7).
    * `LaplaceEvent`: `count` times the Laplace curve of Mironov 2017, Proposition 6.
    * `GaussianThresholdEvent`: the Gaussian curve of its `count` releases; the delta it
      consumes is not part of a curve (see `epsilon_spent`).

    Composition is by Mironov 2017, Proposition 1.

    Args:
        event: The release.
        orders: RDP orders alpha, each finite and > 1.

    Returns:
        The RDP value at each order, in the order given; may contain `inf`.

    Raises:
        ConfigError: If `orders` is empty or holds an order that is not finite and > 1.
    """
    checked = _check_orders(orders)
    composition = _compose([event])
    return np.asarray([_rdp_at(composition, alpha) for alpha in checked], dtype=np.float64)


def epsilon_spent(
    events: Sequence[PrivacyEvent], delta: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> float:
    """Epsilon at `delta` of all `events` composed, rounded up.

    The RDP curves of the events are summed (Mironov 2017, Proposition 1) and converted with
    Balle et al. 2020, Theorem 21, minimising over `orders`. When every event is a
    `LaplaceEvent`, the pure-DP sum of count / scale (Dwork & Roth 2014, Theorem 3.16) is a
    bound too, and the smaller one is returned. Every `GaussianThresholdEvent` consumes its
    `delta`: the curves are converted at `delta` less the sum of those (Bun & Steinke 2016,
    Section 8; see the module docstring), and the epsilon is `inf` when that is not
    positive. The computed value is padded (by 1e-12 per composed release, then a relative
    1e-6) and moved one float up, so the result never understates the loss.

    Args:
        events: The releases to compose; their order does not matter.
        delta: Target delta in [0, 1). At delta = 0 only Laplace releases have a finite
            epsilon; any DP-SGD or Gaussian release makes it `inf`.
        orders: RDP orders alpha, each finite and > 1.

    Returns:
        The epsilon; 0.0 when `events` is empty.

    Raises:
        ConfigError: If `delta` or `orders` is invalid.
    """
    d = _check_delta(delta)
    checked = _check_orders(orders)
    if not events:
        return 0.0
    composition = _compose(events)
    residual = _residual_delta(d, composition.consumed)
    return _round_up(_epsilon(composition, residual, checked), composition.releases)


def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    alongside: Sequence[PrivacyEvent] = (),
) -> float:
    """Smallest noise multiplier whose DP-SGD release stays within `target_epsilon`.

    With `alongside`, the DP-SGD release composed with those releases (a job's charged
    evaluations) stays within the target.

    Bisects log(sigma) over [0.1, 1e4] until the bracket is narrower than a relative 1e-3,
    keeping the invariant that the upper end meets the target, and returns that upper end:
    `epsilon_spent([DpSgdEvent(sigma, sample_rate, steps)], delta) <= target_epsilon` holds
    for the returned sigma, and the true minimum is at most 0.1% below it. When sigma = 0.1
    already meets the target, 0.1 is returned.

    Args:
        target_epsilon: The epsilon the release may cost, finite and > 0.
        delta: Target delta in (0, 1).
        sample_rate: Poisson sampling rate in (0, 1].
        steps: Number of DP-SGD steps, >= 1.

    Returns:
        The noise multiplier.

    Raises:
        ConfigError: If an argument is invalid, or no sigma up to 1e4 reaches the target.
    """
    target = _check_target("target epsilon", target_epsilon)
    d = _check_delta(delta)
    if d == 0.0:
        raise ConfigError(
            "DP-SGD cannot meet delta = 0: Gaussian noise gives no pure epsilon-DP",
            "use a delta > 0, e.g. below 1 / number of records",
        )

    others = list(alongside)

    def fits(sigma: float) -> bool:
        event = DpSgdEvent(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps)
        return epsilon_spent([event, *others], d) <= target

    if not fits(_SIGMA_MAX):
        raise ConfigError(
            f"no noise multiplier up to {_SIGMA_MAX:g} keeps {steps} steps at sample rate "
            f"{sample_rate:g} within epsilon {target:g} at delta {d:g}",
            "raise the epsilon, or lower the number of rounds, local epochs or sample rate",
        )
    if fits(_SIGMA_MIN):
        return _SIGMA_MIN
    return _smallest_sigma(fits, _SIGMA_MIN, _SIGMA_MAX)


def gaussian_noise_multiplier(
    epsilon: float, delta: float, count: int = 1, *, selection_delta: float = 0.0
) -> float:
    """Smallest Gaussian noise multiplier for `count` releases within (epsilon, delta).

    Bisects log(sigma) over [1e-3, 1e4] * sqrt(count) on this module's own accounting, like
    `calibrate_noise_multiplier`: `epsilon_spent([GaussianEvent(sigma, count)], delta) <=
    epsilon` holds for the returned sigma (with `selection_delta`, the same for
    `GaussianThresholdEvent(sigma, count, selection_delta)`), and the true minimum is at
    most 0.1% below it. When the lower end already meets the target, it is returned.

    Args:
        epsilon: The epsilon all `count` releases together may cost, finite and > 0.
        delta: Target delta in (0, 1).
        count: Number of statistics released, each with L2 sensitivity 1 after scaling.
        selection_delta: The delta a thresholded release consumes, in [0, delta); 0 for
            plain Gaussian releases.

    Returns:
        The noise multiplier: noise std divided by each statistic's L2 sensitivity.

    Raises:
        ConfigError: If an argument is invalid, or the target needs more noise than the
            search range holds. Orders up to 1024 cannot certify an epsilon much below
            (ln(1 / delta) - 7) / 1023 at any noise (about 0.0035 at delta = 1e-5, 0.015 at
            delta = 1e-10), so such targets are refused.
    """
    target = _check_target("epsilon", epsilon)
    d = _check_delta(delta)
    n = _check_count(count)
    if d == 0.0:
        raise ConfigError(
            "the Gaussian mechanism cannot meet delta = 0: it gives no pure epsilon-DP",
            "use a delta > 0, e.g. below 1 / number of records, or Laplace noise",
        )
    consumed = _check_delta(selection_delta)
    if not consumed < d:
        raise ConfigError(
            f"selection delta {consumed!r} leaves nothing of delta {d!r}",
            "spend a smaller share of the delta on choosing partitions",
        )
    low, high = (bound * math.sqrt(n) for bound in _STATISTIC_SIGMA_RANGE)

    def event(sigma: float) -> PrivacyEvent:
        if consumed > 0.0:
            return GaussianThresholdEvent(sigma, n, consumed)
        return GaussianEvent(sigma, n)

    def fits(sigma: float) -> bool:
        return epsilon_spent([event(sigma)], d) <= target

    if not fits(high):
        raise ConfigError(
            f"no noise multiplier up to {high:g} keeps {n} Gaussian release(s) within "
            f"epsilon {target:g} at delta {d:g}",
            "raise the epsilon or delta, or release fewer statistics",
        )
    if fits(low):
        return low
    return _smallest_sigma(fits, low, high)


def laplace_scale(epsilon: float, count: int = 1) -> float:
    """Laplace scale for `count` releases within pure `epsilon`-DP.

    By Dwork & Roth 2014, Theorems 3.6 and 3.16 the scale is count / epsilon. It is raised
    just enough to absorb the pad `epsilon_spent` adds (a relative 1e-6 and 1e-12 per
    release) so that this module's own accounting charges at most `epsilon`:
    `epsilon_spent([LaplaceEvent(scale, count)], delta) <= epsilon` at every delta, and at
    delta = 0 a scale smaller by a relative 1e-9 would be charged more.

    Args:
        epsilon: The epsilon all `count` releases together may cost, finite and > 0.
        count: Number of statistics released.

    Returns:
        The scale: Laplace b divided by each statistic's L1 sensitivity.

    Raises:
        ConfigError: If an argument is invalid or `epsilon` is too small to account for.
    """
    target = _check_target("epsilon", epsilon)
    n = _check_count(count)
    # The inverse of _round_up, less a relative 1e-12 for the float rounding of the handful
    # of operations between the scale and the reported epsilon (each within 1.2e-16).
    headroom = target / (1.0 + _RELATIVE_PAD) * (1.0 - 1e-12) - _PAD_PER_STEP * n
    if headroom <= 0.0:
        raise ConfigError(
            f"epsilon {target:g} is below the accounting precision for {n} release(s)",
            f"use an epsilon above {2.0 * _PAD_PER_STEP * n:g}",
        )
    scale = n / headroom
    if epsilon_spent([LaplaceEvent(scale, n)], 0.0) > target:
        raise InternalError(f"Laplace scale {scale!r} for epsilon {target!r} overshoots")
    return scale
