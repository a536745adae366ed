"""Pure privacy math: RDP of DP-SGD releases, their composition, and (epsilon, delta) from it.

A DP-SGD release is `steps` compositions of the Poisson-subsampled Gaussian mechanism.

* Renyi differential privacy (RDP) and its additive composition across mechanisms:
  I. Mironov, "Renyi Differential Privacy", CSF 2017, Proposition 1 (composition).
* RDP of the sampled Gaussian mechanism at order alpha: I. Mironov, K. Talwar and L. Zhang,
  "Renyi Differential Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530, 2019,
  Section 3 (integer and fractional orders). The curve itself comes from Opacus' pure
  implementation of that paper, `opacus.accountants.analysis.rdp`.
* RDP to (epsilon, delta): B. Balle, G. Barthe, M. Gaboardi, J. Hsu and T. Sato, "Hypothesis
  Testing Interpretations and Renyi Differential Privacy", AISTATS 2020, Theorem 21
  (arXiv:1905.09982): an (alpha, r)-RDP mechanism is (eps, delta)-DP with
  ``eps = r + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1)``.
  This is the conversion Opacus' `get_privacy_spent` uses; it is tighter than Mironov 2017,
  Proposition 3. We evaluate it here rather than call Opacus so that delta = 0 yields an
  infinite epsilon instead of a warning, and so that orders which cannot win are skipped.

Every epsilon reported here is padded and rounded up (see `_PAD_PER_STEP`), so numerical
error can only ever overstate the privacy loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from opacus.accountants.analysis.rdp import compute_rdp

from vocab.errors import ConfigError
from vocab.privacy import DpSgdEvent

__all__ = ["DEFAULT_ORDERS", "calibrate_noise_multiplier", "epsilon_spent", "rdp_of"]

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
"""Reported epsilon = (computed + 1e-12 per composed step) * (1 + 1e-6), then one float up.

Opacus evaluates fractional orders with an alternating series summed in log space. Against
30-digit quadrature (tests/privacy check a sample) its per-step RDP was off by under 1e-12
absolute, under 3e-8 relative wherever the RDP is large enough to matter; composition
multiplies that error by the number of steps. The pad covers it and float rounding with
room to spare while changing no decision a privacy officer could notice.
"""

_SIGMA_MIN = 0.1
"""Smallest noise multiplier calibration returns.

Noise a tenth of the clipping norm is already far outside useful DP-SGD; when even this
meets the target, calibration returns it, which spends less than the target allows.
"""

_SIGMA_MAX = 1e4
"""Largest noise multiplier calibration searches; a target not met here is refused."""

_SIGMA_RELATIVE_TOLERANCE = 1e-3


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


def _conversion_term(alpha: float, delta: float) -> float:
    """What Balle et al. 2020, Theorem 21 adds to the RDP value at order alpha to get epsilon."""
    return math.log1p(-1.0 / alpha) - (math.log(delta) + math.log(alpha)) / (alpha - 1.0)


def _rdp_at(groups: Iterable[tuple[float, float, int]], alpha: float) -> float:
    """Composed RDP at one order of several (sigma, q, steps) groups (Mironov 2017, Prop. 1)."""
    total = 0.0
    for sigma, q, steps in groups:
        total += float(compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=alpha))
    return total


def _group(events: Sequence[DpSgdEvent]) -> list[tuple[float, float, int]]:
    """Merges events that share (sigma, q): RDP of k steps is k times that of one step.

    Sorted, so the float sum does not depend on the order the events were recorded in.
    """
    steps: dict[tuple[float, float], int] = {}
    for e in events:
        key = (e.noise_multiplier, e.sample_rate)
        steps[key] = steps.get(key, 0) + e.steps
    return [(sigma, q, n) for (sigma, q), n in sorted(steps.items())]


def _round_up(epsilon: float, steps: int) -> float:
    if math.isinf(epsilon):
        return epsilon
    padded = (epsilon + _PAD_PER_STEP * steps) * (1.0 + _RELATIVE_PAD)
    return math.nextafter(padded, math.inf)


def _epsilon_from_groups(
    groups: list[tuple[float, float, int]], delta: float, orders: tuple[float, ...]
) -> float:
    """Minimum over orders of the Balle et al. conversion, before rounding up.

    Orders that cannot win are not evaluated, because evaluating RDP is the costly part and
    calibration evaluates epsilon dozens of times. RDP is non-negative and nondecreasing in
    the order (T. van Erven and P. Harremoes, "Renyi Divergence and Kullback-Leibler
    Divergence", IEEE Trans. Inf. Theory 2014, Theorem 3), so the RDP at the largest order
    already evaluated below alpha, plus alpha's conversion term, is a lower bound on the
    epsilon at alpha; when it is no better than the best epsilon so far, alpha is skipped.
    Integer orders go first, smallest up: they are cheap and give the fractional orders -
    slow, and optimal only for large epsilons - a bound to be skipped by. Skipping an order
    can only raise the minimum, so this never understates the loss.
    """
    if delta == 0.0:
        # A Gaussian release has no finite epsilon at delta = 0.
        return math.inf
    integers = sorted(a for a in orders if a.is_integer())
    fractional = sorted(a for a in orders if not a.is_integer())
    evaluated: list[tuple[float, float]] = []
    best = math.inf
    for alpha in integers + fractional:
        rdp_below = max((r for a, r in evaluated if a < alpha), default=0.0)
        term = _conversion_term(alpha, delta)
        if rdp_below + term >= best:
            continue
        rdp = _rdp_at(groups, alpha)
        if math.isnan(rdp):
            continue
        evaluated.append((alpha, rdp))
        best = min(best, rdp + term)
    return max(best, 0.0)


def rdp_of(event: DpSgdEvent, orders: Sequence[float] = DEFAULT_ORDERS) -> npt.NDArray[np.float64]:
    """RDP curve of one DP-SGD release.

    The release is `event.steps` compositions of the Poisson-subsampled Gaussian mechanism
    with rate `event.sample_rate` and noise multiplier `event.noise_multiplier` (Mironov,
    Talwar & Zhang 2019, Section 3; composition by Mironov 2017, Proposition 1).

    Args:
        event: The release.
        orders: RDP orders alpha, each finite and > 1.

    Returns:
        The RDP value at each order, in the order given; may contain `inf`.

    Raises:
        ConfigError: If `orders` is empty or holds an order that is not finite and > 1.
    """
    checked = _check_orders(orders)
    curve = compute_rdp(
        q=event.sample_rate,
        noise_multiplier=event.noise_multiplier,
        steps=event.steps,
        orders=list(checked),
    )
    return np.asarray(curve, dtype=np.float64)


def epsilon_spent(
    events: Sequence[DpSgdEvent], delta: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> float:
    """Epsilon at `delta` of all `events` composed, rounded up.

    The RDP curves of the events are summed (Mironov 2017, Proposition 1) and converted with
    Balle et al. 2020, Theorem 21, minimising over `orders`. The computed value is padded (by
    1e-12 per step, then a relative 1e-6) and moved one float up, so the result never
    understates the loss.

    Args:
        events: The releases to compose; their order does not matter.
        delta: Target delta in [0, 1); delta = 0 gives `inf` (no Gaussian release is pure DP).
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
    groups = _group(events)
    total_steps = sum(steps for _, _, steps in groups)
    return _round_up(_epsilon_from_groups(groups, d, checked), total_steps)


def calibrate_noise_multiplier(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int
) -> float:
    """Smallest noise multiplier whose release stays within `target_epsilon`.

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
    if isinstance(target_epsilon, bool) or not isinstance(target_epsilon, int | float):
        raise ConfigError(f"target epsilon must be a number, got {target_epsilon!r}")
    if not (math.isfinite(target_epsilon) and target_epsilon > 0):
        raise ConfigError(
            f"target epsilon must be finite and > 0, got {target_epsilon!r}",
            "set a positive epsilon",
        )
    d = _check_delta(delta)
    if d == 0.0:
        raise ConfigError(
            "DP-SGD cannot meet delta = 0: Gaussian noise gives no pure epsilon-DP",
            "use a delta > 0, e.g. below 1 / number of records",
        )

    def fits(sigma: float) -> bool:
        event = DpSgdEvent(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps)
        return epsilon_spent([event], d) <= target_epsilon

    if not fits(_SIGMA_MAX):
        raise ConfigError(
            f"no noise multiplier up to {_SIGMA_MAX:g} keeps {steps} steps at sample rate "
            f"{sample_rate:g} within epsilon {target_epsilon:g} at delta {d:g}",
            "raise the epsilon, or lower the number of rounds, local epochs or sample rate",
        )
    if fits(_SIGMA_MIN):
        return _SIGMA_MIN
    low, high = _SIGMA_MIN, _SIGMA_MAX  # fits(low) is False, fits(high) is True
    while high > low * (1.0 + _SIGMA_RELATIVE_TOLERANCE):
        mid = math.sqrt(low * high)
        if fits(mid):
            high = mid
        else:
            low = mid
    return high
