"""A regression's encoding and releases, planned from the spec alone: what a node charges.

Encoding (public: declared bounds and levels only, nothing learned from rows). The design
row is x = (1, x_1, ..., x_k): the intercept, then per numeric feature its value clipped
to [lower, upper] (log1p of it when `log`) and mapped affinely onto [-1, 1], per
categorical feature one 0/1 input per declared level except the first (the reference).
The target is clipped to [target_lower, target_upper] and mapped onto [-1, 1] as well. So
|x_j| <= 1, a categorical block holds at most one 1, and with F features

    ||x||^2 <= 1 + F =: B    and    |y| <= 1.

Linear family: sufficient statistics perturbation (SSP). O. Sheffet, "Differentially
Private Ordinary Least Squares", ICML 2017 (Section 3) releases a noisy X'X and X'y and
solves the normal equations; Y.-X. Wang, "Revisiting differentially private linear
regression: optimal and adaptive prediction & estimation in unbounded domain", UAI 2018
(Algorithm 2, AdaSSP) adds a ridge that keeps the noisy X'X invertible. A node releases,
once, the upper triangle (diagonal included, row-major) of the Gram matrix of z = (x, y):

    G = Z'Z = [[X'X, X'y], [y'X, y'y]],

that is the upper triangle of X'X, then X'y, then y'y. The count of rows is not released
on its own: it is X'X's intercept entry.

Sensitivity (add or remove one person, the unit the ledger charges for). One row adds
u(z) = triu(z z'), and

    ||u(z)||^2 = sum_{i <= j} z_i^2 z_j^2 = (||z||^4 + sum_i z_i^4) / 2
               <= ((B + 1)^2 + (B + 1)) / 2 = (B + 1)(B + 2) / 2,

using ||z||^2 <= B + 1 and sum_i z_i^4 <= sum_i z_i^2 (every |z_i| <= 1). Equality holds for
a row at its bounds with every categorical at a non-reference level and |y| = 1, so the
bound is tight. Split by block, this is ||triu(x x')||^2 <= (B^2 + B) / 2, ||x y||^2 <= B,
y^4 <= 1. A person with at most c rows moves G by at most c times that (triangle
inequality): the L2 sensitivity is c * sqrt((B + 1)(B + 2) / 2). Gaussian noise of std
sigma * sensitivity on every entry is one `GaussianEvent(sigma)` (Mironov 2017, Prop. 7).

Poisson family: DP-SGD over rounds with per-sample clipping, planned like the risk kind
(`plan_poisson`); its sensitivity is the clipping norm. Then, unless `refine_share` is 0,
one refinement release at the coordinator's final model b (a one-step Newton estimator,
Le Cam; the coordinator's side is `server.kinds.regression.poisson_refine`). With the
target y clipped to [0, W] (W = `target_upper`, raw counts), mu = exp(x'b + offset) and
m = min(mu, W), a node releases once, with Gaussian noise, the sums over its rows of

    (m / W) triu(x x')        (d (d + 1) / 2 entries: the Fisher information over W),
    ((y - m) / W) x           (d entries: the score over W),
    ((y - m) / W)^2           (1 entry: for the dispersion),

in that order, the same shape as the linear release. Both m / W and |y - m| / W lie in
[0, 1], so a row moves the vector by at most

    ||triu(x x')||^2 + ||x||^2 + 1 <= (B^2 + B) / 2 + B + 1 = (B + 1)(B + 2) / 2,

the linear Gram's bound (reached at y = 0, m = W, a row at its bounds). DP-SGD bounds a
person to one row, so the L2 sensitivity is `gram_sensitivity(spec, 1)`. The release is
one `GaussianEvent`; its noise multiplier is calibrated for `refine_share` of epsilon on
its own, and DP-SGD's is then the smallest whose rounds composed with it stay within the
job's epsilon (`calibrate_noise_multiplier(..., alongside=...)`), so the whole job costs at
most epsilon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vocab.accounting import (
    calibrate_noise_multiplier,
    epsilon_spent,
    gaussian_noise_multiplier,
)
from vocab.errors import ConfigError, InternalError
from vocab.jobs.regression import Family, RegressionSpec
from vocab.privacy import DpSgdEvent, GaussianEvent, PrivacyEvent

__all__ = [
    "DesignScaling",
    "LinearPlan",
    "PoissonPlan",
    "design_scaling",
    "gram_sensitivity",
    "gram_size",
    "plan_linear",
    "plan_poisson",
    "plan_refinement",
    "row_norm_bound",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DesignScaling:
    """The affine maps from raw values to the encoded ones: encoded = slope * raw + offset.

    `slopes`/`offsets` cover the design columns after the intercept (for a logged feature
    "raw" is log1p of the value; for a level's 0/1 input slope 1 and offset 0); the target's
    map is `target_slope`/`target_offset`.
    """

    slopes: tuple[float, ...]
    offsets: tuple[float, ...]
    target_slope: float
    target_offset: float

    def to_original_units(self) -> tuple[FloatArray, FloatArray]:
        """(M, m) with beta = M @ b + m: coefficients b fitted on encoded data, in raw units.

        From y_enc = b_0 + sum_j b_j (a_j t_j + c_j) and y = (y_enc - c_y) / a_y:
        beta_j = b_j a_j / a_y and beta_0 = (b_0 + sum_j b_j c_j - c_y) / a_y. A covariance
        maps as M @ cov @ M.T.
        """
        d = len(self.slopes) + 1
        matrix = np.zeros((d, d))
        matrix[0, 0] = 1.0
        matrix[0, 1:] = self.offsets
        matrix[np.arange(1, d), np.arange(1, d)] = self.slopes
        matrix /= self.target_slope
        shift = np.zeros(d)
        shift[0] = -self.target_offset / self.target_slope
        return matrix, shift


def _onto_unit(lower: float, upper: float) -> tuple[float, float]:
    """Slope and offset of the affine map of [lower, upper] onto [-1, 1]."""
    span = upper - lower
    return 2.0 / span, -(upper + lower) / span


def design_scaling(spec: RegressionSpec) -> DesignScaling:
    """The encoding's affine maps for `spec`, in design-column order."""
    slopes: list[float] = []
    offsets: list[float] = []
    for f in spec.features:
        if f.is_categorical:
            slopes.extend([1.0] * (len(f.categories) - 1))
            offsets.extend([0.0] * (len(f.categories) - 1))
            continue
        lo, hi = (math.log1p(f.lower), math.log1p(f.upper)) if f.log else (f.lower, f.upper)
        slope, offset = _onto_unit(lo, hi)
        slopes.append(slope)
        offsets.append(offset)
    target_slope, target_offset = _onto_unit(spec.target_lower, spec.target_upper)
    return DesignScaling(tuple(slopes), tuple(offsets), target_slope, target_offset)


def row_norm_bound(spec: RegressionSpec) -> int:
    """B: the largest squared norm of an encoded design row, intercept included.

    The intercept and each numeric feature add at most 1; a categorical block holds at most
    one 1 whatever its number of levels.
    """
    return 1 + len(spec.features)


def gram_size(dims: int) -> int:
    """Entries in the upper triangle of the Gram of (x, y) for `dims` design columns."""
    return (dims + 1) * (dims + 2) // 2


def gram_sensitivity(spec: RegressionSpec, contribution: int) -> float:
    """L2 sensitivity of the released Gram triangle when a person adds `contribution` rows.

    `contribution` * sqrt((B + 1)(B + 2) / 2), derived in the module docstring; moved one
    float up so that rounding never shrinks the noise.
    """
    if isinstance(contribution, bool) or not isinstance(contribution, int) or contribution < 1:
        raise InternalError(f"contribution must be a positive row count, got {contribution!r}")
    b = row_norm_bound(spec)
    return math.nextafter(contribution * math.sqrt((b + 1) * (b + 2) / 2.0), math.inf)


@dataclass(frozen=True)
class LinearPlan:
    """One Gaussian release of the Gram triangle of a `dims`-column design.

    `noise_multiplier` is the noise std over the release's L2 `sensitivity`.
    """

    noise_multiplier: float
    sensitivity: float
    dims: int

    def __post_init__(self) -> None:
        for name in ("noise_multiplier", "sensitivity"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InternalError(f"linear plan {name} must be positive, got {value!r}")
        if self.dims < 1:
            raise InternalError(f"linear plan dims must be >= 1, got {self.dims!r}")

    @property
    def noise_std(self) -> float:
        """The std of the noise on every released entry (rounded up)."""
        return math.nextafter(self.noise_multiplier * self.sensitivity, math.inf)

    @property
    def size(self) -> int:
        """Number of noisy entries released."""
        return gram_size(self.dims)

    def events(self) -> list[PrivacyEvent]:
        """What the node charges: one Gaussian release of the whole vector."""
        return [GaussianEvent(self.noise_multiplier)]


def plan_linear(spec: RegressionSpec, contribution: int) -> LinearPlan:
    """Calibrate a linear job's one release so that it costs at most the job's epsilon.

    Args:
        spec: A linear regression spec.
        contribution: Rows one person may contribute at this node: `spec.max_rows` where
            the node declares a person id, else 1.

    Raises:
        ConfigError: The job's (epsilon, delta) cannot be met by any noise in range.
    """
    if spec.family is not Family.LINEAR:
        raise InternalError(f"plan_linear called for a {spec.family.value} regression")
    sensitivity = gram_sensitivity(spec, contribution)
    sigma = gaussian_noise_multiplier(spec.epsilon, spec.delta, 1)
    plan = LinearPlan(sigma, sensitivity, spec.n_coefficients)
    if epsilon_spent(plan.events(), spec.delta) > spec.epsilon:
        raise InternalError(f"linear plan sigma {sigma!r} overshoots epsilon {spec.epsilon!r}")
    return plan


@dataclass(frozen=True)
class PoissonPlan:
    """How a node runs a poisson job: the same DP-SGD round `rounds` times, then the
    refinement release when `refine` is set.

    The noise std of each step is `noise_multiplier` times the spec's `max_grad_norm`.
    """

    sample_rate: float
    steps_per_round: int
    noise_multiplier: float
    rounds: int
    refine: LinearPlan | None = None
    """The refinement release: one Gaussian release of a `dims`-column Gram-shaped vector
    (see the module docstring); None when the job does not refine."""

    def round_event(self) -> DpSgdEvent:
        """One round's release."""
        return DpSgdEvent(self.noise_multiplier, self.sample_rate, self.steps_per_round)

    def refine_event(self) -> GaussianEvent:
        """The refinement's release.

        Raises:
            InternalError: The plan has no refinement.
        """
        if self.refine is None:
            raise InternalError("this poisson plan makes no refinement release")
        return GaussianEvent(self.refine.noise_multiplier)

    def events_from(self, first_round: int) -> list[PrivacyEvent]:
        """The releases from message round `first_round` on (refinement: round `rounds + 1`)."""
        rounds_left = max(0, self.rounds - first_round + 1)
        events: list[PrivacyEvent] = [self.round_event()] * rounds_left
        if self.refine is not None and first_round <= self.rounds + 1:
            events.append(self.refine_event())
        return events

    def events(self) -> list[PrivacyEvent]:
        """Every release of the whole job: its training rounds, then the refinement."""
        return self.events_from(1)


def plan_refinement(spec: RegressionSpec) -> LinearPlan | None:
    """A poisson job's refinement release (None when it does not refine): the same at
    every node, since it depends on the spec alone (one row per person, see above)."""
    if not spec.refines:
        return None
    sigma = gaussian_noise_multiplier(spec.epsilon * spec.refine_share, spec.delta, 1)
    return LinearPlan(sigma, gram_sensitivity(spec, 1), spec.n_coefficients)


def plan_poisson(spec: RegressionSpec, public_rows: int) -> PoissonPlan:
    """Calibrate a poisson job's DP-SGD for `spec.rounds` rounds on `public_rows` rows.

    As `clients.kinds.risk.plan.plan_dp` does for the risk kind: the Poisson rate is the
    batch size over the officer's public size figure (never the true row count), one local
    epoch is 1 / rate expected batches, and the noise multiplier is the smallest whose
    composed rounds (with the refinement release, when the job refines) cost at most the
    job's epsilon at its delta.

    Raises:
        ConfigError: The job's epsilon cannot pay for its rounds.
    """
    if spec.family is not Family.POISSON:
        raise InternalError(f"plan_poisson called for a {spec.family.value} regression")
    if isinstance(public_rows, bool) or not isinstance(public_rows, int) or public_rows < 1:
        raise ConfigError(f"public row figure must be a positive integer, got {public_rows!r}")
    sample_rate = min(1.0, spec.batch_size / public_rows)
    steps_per_round = max(1, round(spec.local_epochs / sample_rate))
    refine = plan_refinement(spec)
    sigma = calibrate_noise_multiplier(
        target_epsilon=spec.epsilon,
        delta=spec.delta,
        sample_rate=sample_rate,
        steps=steps_per_round * spec.rounds,
        alongside=refine.events() if refine is not None else (),
    )
    plan = PoissonPlan(sample_rate, steps_per_round, sigma, spec.rounds, refine)
    if epsilon_spent(plan.events(), spec.delta) > spec.epsilon:
        raise InternalError(f"poisson plan overshoots epsilon {spec.epsilon!r}")
    return plan
